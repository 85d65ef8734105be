// cluster/replica_codec.h
//
// Conversions between the data plane's C++ types (replica_client.h) and the
// internal Replica gRPC messages (proto/vigil/internal/v1/replica.proto), shared
// by the service (replica_service.h) and the client (grpc_replica_client.h).
#ifndef VIGIL_CLUSTER_REPLICA_CODEC_H_
#define VIGIL_CLUSTER_REPLICA_CODEC_H_

#include <vector>

#include "absl/status/statusor.h"
#include "cluster/replica_client.h"
#include "proto/vigil/internal/v1/replica.pb.h"

namespace vigil::cluster {

void SeriesToProto(const Series& s, vigil::v1::TimeSeries* out);
// Labels are canonicalized (sorted, empty values dropped); not validated.
Series SeriesFromProto(const vigil::v1::TimeSeries& ts);
std::vector<Series> SeriesFromProto(
    const google::protobuf::RepeatedPtrField<vigil::v1::TimeSeries>& ts);

void MatchersToProto(const std::vector<LabelMatcher>& m,
                     google::protobuf::RepeatedPtrField<vigil::v1::LabelMatcher>* out);
// kInvalidArgument for an unknown type or a bad regex.
absl::StatusOr<std::vector<LabelMatcher>> MatchersFromProto(
    const google::protobuf::RepeatedPtrField<vigil::v1::LabelMatcher>& m);

void WriteToProto(const ReplicaWriteRequest& req, internal::v1::ReplicaWriteRequest* out);
ReplicaWriteRequest WriteFromProto(const internal::v1::ReplicaWriteRequest& req);
void AppendResultToProto(const storage::AppendResult& r, internal::v1::AppendResult* out);
storage::AppendResult AppendResultFromProto(const internal::v1::AppendResult& r);

void ReadToProto(const ReplicaReadRequest& req, internal::v1::ReplicaReadRequest* out);
absl::StatusOr<ReplicaReadRequest> ReadFromProto(ReplicaReadRequest::Kind kind,
                                                 const internal::v1::ReplicaReadRequest& req);
void ReadReplyToProto(const ReplicaReadReply& r, internal::v1::ReplicaReadResponse* out);
ReplicaReadReply ReadReplyFromProto(const internal::v1::ReplicaReadResponse& r);

}  // namespace vigil::cluster

#endif  // VIGIL_CLUSTER_REPLICA_CODEC_H_
