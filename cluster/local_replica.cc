#include "cluster/local_replica.h"

#include <algorithm>
#include <utility>

#include "common/status_macros.h"
#include "glog/logging.h"

namespace vigil::cluster {

std::vector<storage::SeriesAppend> ToSeriesAppends(const std::vector<Series>& series) {
  std::vector<storage::SeriesAppend> out;
  out.reserve(series.size());
  for (const Series& s : series) {
    storage::SeriesAppend a;
    a.labels.reserve(s.labels.size());
    for (const Label& l : s.labels) a.labels.push_back({l.name, l.value});
    a.samples = s.samples;
    out.push_back(std::move(a));
  }
  return out;
}

LocalReplica::LocalReplica(AppendFn append, query::SeriesSource* source, ShardOfFn shard_of,
                           uint32_t num_shards)
    : append_(std::move(append)), source_(source), shard_of_(shard_of), num_shards_(num_shards) {
  CHECK(shard_of_ != nullptr);
}

absl::StatusOr<ReplicaWriteReply> LocalReplica::WriteNow(const ReplicaWriteRequest& req) {
  ReplicaWriteReply reply;
  for (const ShardWrite& w : req.shards) {
    ASSIGN_OR_RETURN(storage::AppendResult r, append_(ToSeriesAppends(*w.series)));
    reply.shards.push_back(std::move(r));
  }
  return reply;
}

void LocalReplica::Write(NodeId node, ReplicaWriteRequest req, absl::Time deadline,
                         WriteCallback done) {
  done(WriteNow(req));
}

absl::StatusOr<ReplicaReadReply> LocalReplica::ReadNow(const ReplicaReadRequest& req) {
  CHECK(source_ != nullptr);
  ReplicaReadReply reply;
  switch (req.kind) {
    case ReplicaReadRequest::Kind::kSelect: {
      ASSIGN_OR_RETURN(query::SelectResult r,
                       source_->Select(query::SelectHints{req.mint, req.maxt}, req.matchers));
      for (Series& s : r.series) {
        const uint32_t shard = shard_of_(s.labels.Hash(), num_shards_);
        if (std::binary_search(req.shards.begin(), req.shards.end(), shard)) {
          reply.series.push_back(std::move(s));
        }
      }
      reply.warnings = std::move(r.warnings);
      break;
    }
    case ReplicaReadRequest::Kind::kLabelNames: {
      ASSIGN_OR_RETURN(reply.strings, source_->LabelNames(req.matchers, req.mint, req.maxt));
      break;
    }
    case ReplicaReadRequest::Kind::kLabelValues: {
      ASSIGN_OR_RETURN(reply.strings, source_->LabelValues(req.label_name, req.matchers,
                                                           req.mint, req.maxt));
      break;
    }
  }
  return reply;
}

void LocalReplica::Read(NodeId node, const ReplicaReadRequest& req, absl::Time deadline,
                        ReadCallback done) {
  done(ReadNow(req));
}

}  // namespace vigil::cluster
