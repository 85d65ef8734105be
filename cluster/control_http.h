// cluster/control_http.h
//
// The control plane's HTTP routes, registered on vigild's httplib server:
//   GET  /api/v1/status/cluster                raft fields + ClusterState::ToJson()
//   GET  /debug/raft                           {"term","role","leader","commit_index","committed"}
//   GET  /api/v1/admin/registers/KEY           200 {"value": "v" | null, "version": n}
//   PUT  /api/v1/admin/registers/KEY           {"value": "v"} -> 200 {"version": n}
//   POST /api/v1/admin/registers/KEY/cas       {"expected_value","value"}
//                                              -> 200 {"ok": true, "version": n}
//                                              |  409 {"ok": false, "value", "version"}
//   POST /api/v1/admin/cluster/add-node        {"id", "grpc_address", "http_address"?}
//   POST /api/v1/admin/cluster/remove-node     {"id", "force"?}
//   POST /api/v1/admin/cluster/transfer-leader {"target"?} -> {"leader": n}
// Errors: {"error": "..."} with 400 (bad input), 404, 409, 503 (no leader or
// unknown outcome: retry), 500. Every route works on every node. Until the
// control plane started (ControlPlane::started()), the two status routes answer
// 503 {"error": ...} rather than an empty Raft status (term 0, no leader).
#ifndef VIGIL_CLUSTER_CONTROL_HTTP_H_
#define VIGIL_CLUSTER_CONTROL_HTTP_H_

#include "cluster/control_plane.h"
#include "httplib.h"

namespace vigil::cluster {

// `cp` must outlive the server's use of the routes.
void RegisterControlRoutes(httplib::Server* server, ControlPlane* cp);

}  // namespace vigil::cluster

#endif  // VIGIL_CLUSTER_CONTROL_HTTP_H_
