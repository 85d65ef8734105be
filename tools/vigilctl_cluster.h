// tools/vigilctl_cluster.h
//
// `vigilctl cluster ...`: the ClusterAdmin gRPC client (proto/vigil/v1/cluster.proto).
//   cluster status                                 members, leader, term, commit, shards
//   cluster add-node ID=GRPC_ADDR[,http=HTTP_ADDR]
//   cluster remove-node ID
//   cluster transfer-leader [ID]
// Any node answers; membership calls are forwarded to the Raft leader.
#ifndef VIGIL_TOOLS_VIGILCTL_CLUSTER_H_
#define VIGIL_TOOLS_VIGILCTL_CLUSTER_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace vigil::tools {

// Runs `vigilctl cluster args...` against `addr`, printing to stdout. kInvalidArgument
// on bad arguments; otherwise the RPC's status.
absl::Status RunClusterCommand(const std::string& addr, absl::Duration timeout, bool json,
                               const std::vector<std::string>& args);

}  // namespace vigil::tools

#endif  // VIGIL_TOOLS_VIGILCTL_CLUSTER_H_
