// cluster/replica_codec.cc
#include "cluster/replica_codec.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"

namespace vigil::cluster {

void SeriesToProto(const Series& s, vigil::v1::TimeSeries* out) {
  out->mutable_labels()->Reserve(static_cast<int>(s.labels.size()));
  for (const Label& l : s.labels) {
    vigil::v1::Label* pl = out->add_labels();
    pl->set_name(l.name);
    pl->set_value(l.value);
  }
  out->mutable_samples()->Reserve(static_cast<int>(s.samples.size()));
  for (const Sample& sample : s.samples) {
    vigil::v1::Sample* ps = out->add_samples();
    ps->set_timestamp_ms(sample.t);
    ps->set_value(sample.v);
  }
}

Series SeriesFromProto(const vigil::v1::TimeSeries& ts) {
  std::vector<Label> labels;
  labels.reserve(ts.labels_size());
  for (const vigil::v1::Label& l : ts.labels()) labels.push_back({l.name(), l.value()});
  Series s;
  s.labels = Labels(std::move(labels));
  s.samples.reserve(ts.samples_size());
  for (const vigil::v1::Sample& p : ts.samples()) s.samples.push_back({p.timestamp_ms(), p.value()});
  return s;
}

std::vector<Series> SeriesFromProto(
    const google::protobuf::RepeatedPtrField<vigil::v1::TimeSeries>& ts) {
  std::vector<Series> out;
  out.reserve(ts.size());
  for (const vigil::v1::TimeSeries& t : ts) out.push_back(SeriesFromProto(t));
  return out;
}

void MatchersToProto(const std::vector<LabelMatcher>& m,
                     google::protobuf::RepeatedPtrField<vigil::v1::LabelMatcher>* out) {
  for (const LabelMatcher& lm : m) {
    vigil::v1::LabelMatcher* p = out->Add();
    switch (lm.type()) {
      case MatchType::kEqual: p->set_type(vigil::v1::EQUAL); break;
      case MatchType::kNotEqual: p->set_type(vigil::v1::NOT_EQUAL); break;
      case MatchType::kRegexMatch: p->set_type(vigil::v1::REGEX_MATCH); break;
      case MatchType::kRegexNoMatch: p->set_type(vigil::v1::REGEX_NO_MATCH); break;
    }
    p->set_name(lm.name());
    p->set_value(lm.value());
  }
}

absl::StatusOr<std::vector<LabelMatcher>> MatchersFromProto(
    const google::protobuf::RepeatedPtrField<vigil::v1::LabelMatcher>& m) {
  std::vector<LabelMatcher> out;
  out.reserve(m.size());
  for (const vigil::v1::LabelMatcher& p : m) {
    MatchType type;
    switch (p.type()) {
      case vigil::v1::EQUAL: type = MatchType::kEqual; break;
      case vigil::v1::NOT_EQUAL: type = MatchType::kNotEqual; break;
      case vigil::v1::REGEX_MATCH: type = MatchType::kRegexMatch; break;
      case vigil::v1::REGEX_NO_MATCH: type = MatchType::kRegexNoMatch; break;
      default:
        return absl::InvalidArgumentError(absl::StrCat("unknown match type ", p.type()));
    }
    absl::StatusOr<LabelMatcher> lm = LabelMatcher::Create(type, p.name(), p.value());
    if (!lm.ok()) return lm.status();
    out.push_back(*std::move(lm));
  }
  return out;
}

void WriteToProto(const ReplicaWriteRequest& req, internal::v1::ReplicaWriteRequest* out) {
  for (const ShardWrite& w : req.shards) {
    internal::v1::ShardBatch* b = out->add_shards();
    b->set_shard(w.shard);
    b->set_epoch(w.view.epoch);
    if (w.view.moving.has_value()) b->set_moving(*w.view.moving);
    if (w.series == nullptr) continue;
    for (const Series& s : *w.series) SeriesToProto(s, b->add_series());
  }
}

ReplicaWriteRequest WriteFromProto(const internal::v1::ReplicaWriteRequest& req) {
  ReplicaWriteRequest out;
  for (const internal::v1::ShardBatch& b : req.shards()) {
    ShardWrite w;
    w.shard = b.shard();
    w.view.epoch = b.epoch();
    if (b.has_moving()) w.view.moving = b.moving();
    w.series = std::make_shared<const std::vector<Series>>(SeriesFromProto(b.series()));
    out.shards.push_back(std::move(w));
  }
  return out;
}

void AppendResultToProto(const storage::AppendResult& r, internal::v1::AppendResult* out) {
  out->set_appended(r.appended);
  out->set_duplicates(r.duplicates);
  out->set_rejected(r.rejected);
  for (const std::string& e : r.errors) out->add_errors(e);
}

storage::AppendResult AppendResultFromProto(const internal::v1::AppendResult& r) {
  storage::AppendResult out;
  out.appended = r.appended();
  out.duplicates = r.duplicates();
  out.rejected = r.rejected();
  out.errors.assign(r.errors().begin(), r.errors().end());
  return out;
}

void ReadToProto(const ReplicaReadRequest& req, internal::v1::ReplicaReadRequest* out) {
  for (uint32_t s : req.shards) out->add_shards(s);
  MatchersToProto(req.matchers, out->mutable_matchers());
  out->set_mint(req.mint);
  out->set_maxt(req.maxt);
  out->set_label_name(req.label_name);
}

absl::StatusOr<ReplicaReadRequest> ReadFromProto(ReplicaReadRequest::Kind kind,
                                                 const internal::v1::ReplicaReadRequest& req) {
  ReplicaReadRequest out;
  out.kind = kind;
  out.shards.assign(req.shards().begin(), req.shards().end());
  absl::StatusOr<std::vector<LabelMatcher>> m = MatchersFromProto(req.matchers());
  if (!m.ok()) return m.status();
  out.matchers = *std::move(m);
  out.mint = req.mint();
  out.maxt = req.maxt();
  out.label_name = req.label_name();
  return out;
}

void ReadReplyToProto(const ReplicaReadReply& r, internal::v1::ReplicaReadResponse* out) {
  for (const Series& s : r.series) SeriesToProto(s, out->add_series());
  for (const std::string& s : r.strings) out->add_strings(s);
  for (const std::string& w : r.warnings) out->add_warnings(w);
}

ReplicaReadReply ReadReplyFromProto(const internal::v1::ReplicaReadResponse& r) {
  ReplicaReadReply out;
  out.series = SeriesFromProto(r.series());
  out.strings.assign(r.strings().begin(), r.strings().end());
  out.warnings.assign(r.warnings().begin(), r.warnings().end());
  return out;
}

}  // namespace vigil::cluster
