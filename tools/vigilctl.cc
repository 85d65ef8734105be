// vigilctl: the command-line client of a vigild node's gRPC API.
//
//   vigilctl --addr=HOST:PORT write < lines.txt        Prometheus text exposition
//   vigilctl --addr=HOST:PORT write --generate --series=N --samples=M
//   vigilctl --addr=HOST:PORT select 'up{job="a"}' [--start=now-1h] [--end=now]
//   vigilctl --addr=HOST:PORT query 'rate(x[5m])' [--time=now]
//   vigilctl --addr=HOST:PORT query_range 'x' --start=now-1h --end=now --step=15s
//   vigilctl --addr=HOST:PORT status
//   vigilctl --addr=HOST:PORT cluster status|add-node ID=GRPC_ADDR[,http=HTTP_ADDR]|
//                                     remove-node ID|transfer-leader [ID]
//
// --format=json prints select/query results and status as one JSON object.
// Exits 0 on success; 1 on any failure (bad arguments or input, a request the
// server refused or failed, rejected samples), with the reason on stderr; 2 when
// no command is given.
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/sample.h"
#include "common/status_macros.h"
#include "grpcpp/grpcpp.h"
#include "proto/vigil/v1/vigil.grpc.pb.h"
#include "tools/encode.h"
#include "tools/text_format.h"
#include "tools/vigilctl_cluster.h"
#include "tools/vigilctl_rules.h"
#include "tools/workload.h"

ABSL_FLAG(std::string, addr, "", "gRPC address of a vigild node, HOST:PORT");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(30), "deadline of each RPC");
ABSL_FLAG(std::string, http_addr, "", "rules apply: HTTP address of a vigild node, HOST:PORT");
ABSL_FLAG(std::string, format, "text", "output of select, query and status: text or json");
ABSL_FLAG(bool, generate, false, "write: send generated node_exporter-like series instead of stdin");
ABSL_FLAG(int64_t, series, 100, "write --generate: number of series");
ABSL_FLAG(int64_t, samples, 10, "write --generate: samples per series, 15 s apart, ending now");
ABSL_FLAG(int64_t, batch, 5000, "write: samples per Ingest.Write request");
ABSL_FLAG(std::string, start, "", "select/query_range: start time (ms, RFC 3339, now-1h)");
ABSL_FLAG(std::string, end, "now", "select/query_range: end time");
ABSL_FLAG(std::string, time, "now", "query: evaluation time");
ABSL_FLAG(absl::Duration, step, absl::Seconds(15), "query_range: resolution step");

namespace vigil::tools {
namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

class Ctl {
 public:
  explicit Ctl(const std::string& addr)
      : channel_(grpc::CreateChannel(addr, grpc::InsecureChannelCredentials())),
        ingest_(vigil::v1::Ingest::NewStub(channel_)),
        query_(vigil::v1::Query::NewStub(channel_)),
        admin_(vigil::v1::Admin::NewStub(channel_)),
        addr_(addr) {}

  absl::Status Write(std::vector<Batch> batches);
  absl::Status Select(const std::string& selector);
  absl::Status Query(const std::string& expr);
  absl::Status QueryRange(const std::string& expr);
  absl::Status Status();

 private:
  std::unique_ptr<grpc::ClientContext> Context() const {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(absl::ToChronoTime(absl::Now() + absl::GetFlag(FLAGS_timeout)));
    return ctx;
  }
  absl::Status FromGrpc(absl::string_view rpc, const grpc::Status& s) const {
    if (s.ok()) return absl::OkStatus();
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                        absl::StrCat(rpc, " to ", addr_, " failed: ", s.error_message()));
  }

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<vigil::v1::Ingest::Stub> ingest_;
  std::unique_ptr<vigil::v1::Query::Stub> query_;
  std::unique_ptr<vigil::v1::Admin::Stub> admin_;
  std::string addr_;
};

bool Json() { return absl::GetFlag(FLAGS_format) == "json"; }

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

absl::StatusOr<int64_t> TimeFlag(const std::string& value, absl::string_view name) {
  absl::StatusOr<int64_t> t = ParseTimeArg(value, NowMs());
  if (!t.ok()) return absl::InvalidArgumentError(absl::StrCat("--", name, ": ", t.status().message()));
  return t;
}

std::string FormatValue(double v) {
  if (IsStaleNaN(v)) return "StaleNaN";
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return absl::StrFormat("%.17g", v);
}

std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppendFormat(&out, "\\u%04x", c);
        } else {
          out.push_back(c);
        }
    }
  }
  return out + "\"";
}

Labels ToLabels(const vigil::v1::TimeSeries& ts) {
  std::vector<Label> l;
  for (const auto& pl : ts.labels()) l.push_back({pl.name(), pl.value()});
  return Labels(std::move(l));
}

// Prints series as `labels` then one `timestamp value` line per sample, or as
// a JSON array of {"labels": {...}, "samples": [[t, "v"], ...]}.
void PrintSeries(const google::protobuf::RepeatedPtrField<vigil::v1::TimeSeries>& series) {
  if (Json()) {
    std::vector<std::string> items;
    for (const auto& ts : series) {
      std::vector<std::string> labels, samples;
      for (const auto& l : ToLabels(ts)) labels.push_back(JsonString(l.name) + ":" + JsonString(l.value));
      for (const auto& s : ts.samples()) {
        samples.push_back(absl::StrCat("[", s.timestamp_ms(), ",\"", FormatValue(s.value()), "\"]"));
      }
      items.push_back(absl::StrCat("{\"labels\":{", absl::StrJoin(labels, ","), "},\"samples\":[",
                                   absl::StrJoin(samples, ","), "]}"));
    }
    std::cout << "[" << absl::StrJoin(items, ",") << "]";
    return;
  }
  for (const auto& ts : series) {
    std::cout << ToLabels(ts).ToString() << "\n";
    for (const auto& s : ts.samples()) {
      std::cout << "  " << s.timestamp_ms() << " " << FormatValue(s.value()) << "\n";
    }
  }
}

void PrintWarnings(const google::protobuf::RepeatedPtrField<std::string>& warnings) {
  for (const std::string& w : warnings) std::cerr << "warning: " << w << "\n";
}

absl::Status Ctl::Write(std::vector<Batch> batches) {
  int64_t appended = 0, duplicate = 0, rejected = 0;
  std::vector<std::string> errors;
  for (const Batch& b : batches) {
    vigil::v1::WriteRequest req;
    ToVigilWriteRequest(b, req);
    vigil::v1::WriteResponse resp;
    RETURN_IF_ERROR(FromGrpc("Ingest.Write", ingest_->Write(Context().get(), req, &resp)));
    appended += resp.samples_appended();
    duplicate += resp.samples_duplicate();
    rejected += resp.samples_rejected();
    for (const std::string& e : resp.errors()) {
      if (errors.size() < 10) errors.push_back(e);
    }
  }
  std::cout << "appended=" << appended << " duplicate=" << duplicate << " rejected=" << rejected
            << "\n";
  for (const std::string& e : errors) std::cerr << "rejected: " << e << "\n";
  if (rejected > 0) {
    return absl::InvalidArgumentError(absl::StrCat(rejected, " samples were rejected"));
  }
  return absl::OkStatus();
}

absl::Status Ctl::Select(const std::string& selector) {
  ASSIGN_OR_RETURN(std::vector<LabelMatcher> matchers, ParseSelector(selector));
  vigil::v1::SelectRequest req;
  for (const LabelMatcher& m : matchers) {
    vigil::v1::LabelMatcher* pm = req.add_matchers();
    pm->set_name(m.name());
    pm->set_value(m.value());
    switch (m.type()) {
      case MatchType::kEqual: pm->set_type(vigil::v1::EQUAL); break;
      case MatchType::kNotEqual: pm->set_type(vigil::v1::NOT_EQUAL); break;
      case MatchType::kRegexMatch: pm->set_type(vigil::v1::REGEX_MATCH); break;
      case MatchType::kRegexNoMatch: pm->set_type(vigil::v1::REGEX_NO_MATCH); break;
    }
  }
  ASSIGN_OR_RETURN(int64_t end, TimeFlag(absl::GetFlag(FLAGS_end), "end"));
  std::string start_flag = absl::GetFlag(FLAGS_start);
  int64_t start = 0;  // default: everything up to --end
  if (!start_flag.empty()) {
    ASSIGN_OR_RETURN(start, TimeFlag(start_flag, "start"));
  }
  req.set_start_ms(start);
  req.set_end_ms(end);
  vigil::v1::SelectResponse resp;
  RETURN_IF_ERROR(FromGrpc("Query.Select", query_->Select(Context().get(), req, &resp)));
  PrintWarnings(resp.warnings());
  PrintSeries(resp.series());
  if (Json()) std::cout << "\n";
  return absl::OkStatus();
}

void PrintQueryResponse(const vigil::v1::QueryResponse& resp) {
  PrintWarnings(resp.warnings());
  const std::string type = vigil::v1::QueryResponse::ResultType_Name(resp.result_type());
  switch (resp.result_type()) {
    case vigil::v1::QueryResponse::SCALAR:
      if (Json()) {
        std::cout << absl::StrCat("{\"resultType\":\"scalar\",\"result\":[", resp.scalar().timestamp_ms(),
                                  ",\"", FormatValue(resp.scalar().value()), "\"]}\n");
      } else {
        std::cout << "scalar " << resp.scalar().timestamp_ms() << " "
                  << FormatValue(resp.scalar().value()) << "\n";
      }
      return;
    case vigil::v1::QueryResponse::STRING:
      if (Json()) {
        std::cout << "{\"resultType\":\"string\",\"result\":" << JsonString(resp.string_value()) << "}\n";
      } else {
        std::cout << "string " << resp.string_value() << "\n";
      }
      return;
    default:
      if (Json()) {
        std::cout << "{\"resultType\":\"" << absl::AsciiStrToLower(type) << "\",\"result\":";
        PrintSeries(resp.series());
        std::cout << "}\n";
      } else {
        PrintSeries(resp.series());
      }
  }
}

absl::Status Ctl::Query(const std::string& expr) {
  vigil::v1::InstantQueryRequest req;
  req.set_expr(expr);
  ASSIGN_OR_RETURN(int64_t t, TimeFlag(absl::GetFlag(FLAGS_time), "time"));
  req.set_time_ms(t);
  vigil::v1::QueryResponse resp;
  RETURN_IF_ERROR(FromGrpc("Query.InstantQuery", query_->InstantQuery(Context().get(), req, &resp)));
  PrintQueryResponse(resp);
  return absl::OkStatus();
}

absl::Status Ctl::QueryRange(const std::string& expr) {
  vigil::v1::RangeQueryRequest req;
  req.set_expr(expr);
  if (absl::GetFlag(FLAGS_start).empty()) {
    return absl::InvalidArgumentError("query_range needs --start");
  }
  ASSIGN_OR_RETURN(int64_t start, TimeFlag(absl::GetFlag(FLAGS_start), "start"));
  ASSIGN_OR_RETURN(int64_t end, TimeFlag(absl::GetFlag(FLAGS_end), "end"));
  int64_t step = absl::ToInt64Milliseconds(absl::GetFlag(FLAGS_step));
  if (step <= 0) return absl::InvalidArgumentError("--step must be positive");
  req.set_start_ms(start);
  req.set_end_ms(end);
  req.set_step_ms(step);
  vigil::v1::QueryResponse resp;
  RETURN_IF_ERROR(FromGrpc("Query.RangeQuery", query_->RangeQuery(Context().get(), req, &resp)));
  PrintQueryResponse(resp);
  return absl::OkStatus();
}

absl::Status Ctl::Status() {
  vigil::v1::StatusResponse resp;
  RETURN_IF_ERROR(
      FromGrpc("Admin.Status", admin_->Status(Context().get(), vigil::v1::StatusRequest(), &resp)));
  std::vector<std::pair<std::string, std::string>> fields = {
      {"version", resp.version()},
      {"node_id", absl::StrCat(resp.node_id())},
      {"uptime_ms", absl::StrCat(resp.uptime_ms())},
      {"series", absl::StrCat(resp.series())},
      {"head_series", absl::StrCat(resp.head_series())},
      {"samples_appended_total", absl::StrCat(resp.samples_appended_total())},
      {"bytes_on_disk", absl::StrCat(resp.bytes_on_disk())},
      {"recovery_ms", absl::StrCat(resp.recovery_ms())},
  };
  if (Json()) {
    std::vector<std::string> kv;
    for (const auto& [k, v] : fields) {
      kv.push_back(JsonString(k) + ":" + (k == "version" ? JsonString(v) : v));
    }
    std::cout << "{" << absl::StrJoin(kv, ",") << "}\n";
  } else {
    for (const auto& [k, v] : fields) std::cout << k << ": " << v << "\n";
  }
  return absl::OkStatus();
}

// Parses stdin into batches of at most --batch samples; a sample without a
// timestamp gets the time the command started. Any bad line fails the whole
// command before anything is sent.
absl::StatusOr<std::vector<Batch>> ReadExposition(std::istream& in) {
  const int64_t now = NowMs();
  const int64_t batch_size = std::max<int64_t>(1, absl::GetFlag(FLAGS_batch));
  std::vector<Batch> batches(1);
  std::map<std::string, size_t> slot;  // canonical labels -> index in the last batch
  std::string line;
  for (int lineno = 1; std::getline(in, line); ++lineno) {
    absl::StatusOr<std::optional<ExpositionSample>> parsed = ParseExpositionLine(line);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("stdin line ", lineno, ": ", parsed.status().message()));
    }
    if (!parsed->has_value()) continue;
    ExpositionSample& s = **parsed;
    if (batches.back().samples >= batch_size) {
      batches.emplace_back();
      slot.clear();
    }
    Batch& b = batches.back();
    auto [it, fresh] = slot.try_emplace(s.labels.Canonical(), b.series.size());
    if (fresh) b.series.push_back(Series{std::move(s.labels), {}});
    b.series[it->second].samples.push_back(Sample{s.timestamp_ms.value_or(now), s.value});
    ++b.samples;
  }
  if (batches.back().samples == 0) batches.pop_back();
  if (batches.empty()) return absl::InvalidArgumentError("no samples on stdin");
  return batches;
}

std::vector<Batch> GeneratedBatches() {
  WorkloadOptions o;
  o.series = std::max<int64_t>(1, absl::GetFlag(FLAGS_series));
  o.rounds = std::max<int64_t>(1, absl::GetFlag(FLAGS_samples));
  o.samples_per_request = static_cast<int>(std::max<int64_t>(1, absl::GetFlag(FLAGS_batch)));
  const int64_t now = NowMs();
  o.start_ms = now - now % o.interval_ms - (o.rounds - 1) * o.interval_ms;
  ShardGenerator gen(o, 0, 1);
  std::vector<Batch> batches;
  Batch b;
  while (gen.Next(b)) batches.push_back(std::move(b));
  return batches;
}

absl::Status Run(const std::string& command, const std::vector<std::string>& args) {
  const std::string addr = absl::GetFlag(FLAGS_addr);
  if (addr.empty()) return absl::InvalidArgumentError("--addr=HOST:PORT is required");
  const std::string format = absl::GetFlag(FLAGS_format);
  if (format != "text" && format != "json") {
    return absl::InvalidArgumentError("--format must be text or json");
  }
  auto want_args = [&](size_t n) -> absl::Status {
    if (args.size() == n) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat(command, " takes ", n, " argument(s), got ", args.size()));
  };
  if (command == "cluster") {
    return RunClusterCommand(addr, absl::GetFlag(FLAGS_timeout), Json(), args);
  }
  Ctl ctl(addr);
  if (command == "write") {
    RETURN_IF_ERROR(want_args(0));
    if (absl::GetFlag(FLAGS_generate)) return ctl.Write(GeneratedBatches());
    ASSIGN_OR_RETURN(std::vector<Batch> batches, ReadExposition(std::cin));
    return ctl.Write(std::move(batches));
  }
  if (command == "select") {
    RETURN_IF_ERROR(want_args(1));
    return ctl.Select(args[0]);
  }
  if (command == "query") {
    RETURN_IF_ERROR(want_args(1));
    return ctl.Query(args[0]);
  }
  if (command == "query_range") {
    RETURN_IF_ERROR(want_args(1));
    return ctl.QueryRange(args[0]);
  }
  if (command == "status") {
    RETURN_IF_ERROR(want_args(0));
    return ctl.Status();
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown command \"", command, "\""));
}

}  // namespace
}  // namespace vigil::tools

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "vigilctl --addr=HOST:PORT <write|select SELECTOR|query EXPR|query_range EXPR|status|cluster ...|rules check FILE...|rules apply FILE>");
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() < 2) {
    std::cerr << "usage: " << absl::ProgramUsageMessage() << "\n";
    return vigil::tools::kExitUsage;
  }
  std::vector<std::string> args(positional.begin() + 2, positional.end());
  if (std::string(positional[1]) == "rules") {  // Needs no --addr (apply: --http_addr).
    vigil::tools::RulesCommandOptions opts;
    opts.http_addr = absl::GetFlag(FLAGS_http_addr);
    opts.timeout = absl::GetFlag(FLAGS_timeout);
    return vigil::tools::RunRulesCommand(args, opts, std::cout, std::cerr);
  }
  absl::Status s = vigil::tools::Run(positional[1], args);
  if (!s.ok()) {
    std::cerr << "vigilctl: " << s.message() << "\n";
    return vigil::tools::kExitFailure;
  }
  return 0;
}
