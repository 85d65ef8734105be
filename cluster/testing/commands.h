// cluster/testing/commands.h
//
// Builders of the membership commands (v1::Command) that tests apply to a
// ClusterState, so each test does not hand-build the protos.
#ifndef VIGIL_CLUSTER_TESTING_COMMANDS_H_
#define VIGIL_CLUSTER_TESTING_COMMANDS_H_

#include <string>
#include <vector>

#include "cluster/cluster_state.h"
#include "proto/vigil/cluster/v1/cluster.pb.h"

namespace vigil::cluster {

// Bootstrap with `ids` as the founding members, each with grpc address
// "n<id>" if `named`.
inline v1::Command BootstrapCommand(const std::vector<NodeId>& ids, bool named = false) {
  v1::Command c;
  for (NodeId id : ids) {
    v1::Member* m = c.mutable_bootstrap()->add_members();
    m->set_id(id);
    if (named) m->set_grpc_address("n" + std::to_string(id));
  }
  return c;
}

// AddMember of `id` in `state` (ACTIVE by default: a member that takes shards at once).
inline v1::Command AddMemberCommand(NodeId id, v1::MemberState state = v1::ACTIVE) {
  v1::Command c;
  c.mutable_add_member()->mutable_member()->set_id(id);
  c.mutable_add_member()->mutable_member()->set_state(state);
  return c;
}

inline v1::Command MarkMemberStateCommand(NodeId id, v1::MemberState state) {
  v1::Command c;
  c.mutable_mark_member_state()->set_id(id);
  c.mutable_mark_member_state()->set_state(state);
  return c;
}

}  // namespace vigil::cluster

#endif  // VIGIL_CLUSTER_TESTING_COMMANDS_H_
