// raft-sim: runs the deterministic Raft simulator over a range of seeds.
//
//   raft-sim --seeds 500 --first_seed 1 --steps 3000
//
// Prints exactly one summary line, "raft-sim: N seeds, S steps, V violations". On a violation it
// also prints the seed, the violation, the tail of the trace and the command that replays it
// (with --trace for the full trace), and exits 1.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "raft/sim/simulation.h"

ABSL_FLAG(int64_t, seeds, 100, "number of seeds to run");
ABSL_FLAG(int64_t, first_seed, 1, "first seed");
ABSL_FLAG(int32_t, steps, 3000, "steps per seed");
ABSL_FLAG(std::string, scenario, "random",
          "random (faults, membership, transfers, compaction) or figure8 (5 voters, one entry "
          "per message, leaders crashed right after their commit index moves)");
ABSL_FLAG(bool, trace, false, "print the full trace of every seed run");
ABSL_FLAG(bool, verbose, false, "print per-run statistics to stderr");

namespace {

int64_t g_current_seed = -1;

void OnCheckFailure() {
  std::fprintf(stderr, "raft-sim: CHECK failure in seed %lld; replay: raft-sim --seeds 1 "
               "--first_seed %lld --steps %d --scenario %s --trace\n",
               static_cast<long long>(g_current_seed), static_cast<long long>(g_current_seed),
               absl::GetFlag(FLAGS_steps), absl::GetFlag(FLAGS_scenario).c_str());
  std::abort();
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  google::InitGoogleLogging(argv[0]);
  google::InstallFailureFunction(&OnCheckFailure);
  const std::string scenario = absl::GetFlag(FLAGS_scenario);
  if (scenario != "random" && scenario != "figure8") {
    std::fprintf(stderr, "raft-sim: unknown --scenario %s (random or figure8)\n", scenario.c_str());
    return 2;
  }
  const int64_t seeds = absl::GetFlag(FLAGS_seeds);
  const int64_t first = absl::GetFlag(FLAGS_first_seed);
  const int steps = absl::GetFlag(FLAGS_steps);
  int64_t violations = 0;
  int64_t total_steps = 0;
  vigil::raft::sim::SimStats total;
  for (int64_t seed = first; seed < first + seeds; ++seed) {
    g_current_seed = seed;
    vigil::raft::sim::SimOptions opts;
    opts.seed = static_cast<uint64_t>(seed);
    opts.steps = steps;
    opts.full_trace = absl::GetFlag(FLAGS_trace);
    opts.scenario = scenario == "figure8" ? vigil::raft::sim::Scenario::kFigure8
                                          : vigil::raft::sim::Scenario::kRandom;
    vigil::raft::sim::Simulation sim(opts);
    absl::Status s = sim.Run();
    total_steps += steps;
    const auto& st = sim.stats();
    total.commands_completed += st.commands_completed;
    total.reads_served += st.reads_served;
    total.conf_changes += st.conf_changes;
    total.snapshots_sent += st.snapshots_sent;
    total.crashes += st.crashes;
    if (absl::GetFlag(FLAGS_verbose)) {
      std::fprintf(stderr, "seed %lld: commit=%llu commands=%lld reads=%lld conf=%lld snaps=%lld "
                   "crashes=%lld\n", static_cast<long long>(seed),
                   static_cast<unsigned long long>(st.max_commit),
                   static_cast<long long>(st.commands_completed),
                   static_cast<long long>(st.reads_served), static_cast<long long>(st.conf_changes),
                   static_cast<long long>(st.snapshots_sent), static_cast<long long>(st.crashes));
    }
    if (absl::GetFlag(FLAGS_trace) || !s.ok()) {
      for (const std::string& line : sim.trace()) std::fprintf(stderr, "%s\n", line.c_str());
    }
    if (!s.ok()) {
      ++violations;
      std::fprintf(stderr, "raft-sim: seed %lld violated: %s\nreplay: raft-sim --seeds 1 "
                   "--first_seed %lld --steps %d --scenario %s --trace\n",
                   static_cast<long long>(seed), std::string(s.message()).c_str(),
                   static_cast<long long>(seed), steps, absl::GetFlag(FLAGS_scenario).c_str());
    }
  }
  if (absl::GetFlag(FLAGS_verbose)) {
    std::fprintf(stderr, "totals: commands=%lld reads=%lld conf=%lld snaps=%lld crashes=%lld\n",
                 static_cast<long long>(total.commands_completed),
                 static_cast<long long>(total.reads_served),
                 static_cast<long long>(total.conf_changes),
                 static_cast<long long>(total.snapshots_sent),
                 static_cast<long long>(total.crashes));
  }
  std::printf("raft-sim: %lld seeds, %lld steps, %lld violations\n", static_cast<long long>(seeds),
              static_cast<long long>(total_steps), static_cast<long long>(violations));
  return violations == 0 ? 0 : 1;
}
