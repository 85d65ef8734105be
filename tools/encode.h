// tools/encode.h
//
// Turns a workload Batch into the wire requests the tools send: vigil.v1
// Ingest.Write, and Prometheus remote-write 1.0 (protobuf, snappy block format).
// Stateless; thread-safe.
#ifndef VIGIL_TOOLS_ENCODE_H_
#define VIGIL_TOOLS_ENCODE_H_

#include <string>

#include "proto/prometheus/remote.pb.h"
#include "proto/vigil/v1/vigil.pb.h"
#include "tools/workload.h"

namespace vigil::tools {

// Replaces the contents of `out` with the batch.
void ToVigilWriteRequest(const Batch& batch, vigil::v1::WriteRequest& out);
void ToRemoteWriteRequest(const Batch& batch, prometheus::WriteRequest& out);

// The body of a remote-write POST: the serialized request, snappy-compressed.
std::string EncodeRemoteWrite(const Batch& batch);

}  // namespace vigil::tools

#endif  // VIGIL_TOOLS_ENCODE_H_
