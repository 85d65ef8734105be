// Crash test: a child process appends from several threads and reports every
// acknowledged batch over a pipe; the parent SIGKILLs it mid-write, reopens the
// database and checks that every acknowledged sample survived. Real disk, real
// fsync: this is what "OK from Append means durable" promises.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/testing/status_matchers.h"
#include "gtest/gtest.h"
#include "storage/tsdb.h"
#include "storage/tsdb_test_util.h"

namespace vigil::storage {
namespace {

constexpr int64_t kStart = 1'700'000'000'000;
constexpr int kThreads = 3;
constexpr int kSeriesPerBatch = 40;
constexpr int kAcksBeforeKill = 400;
constexpr char kDirEnv[] = "VIGIL_CRASH_CHILD_DIR";
constexpr char kFdEnv[] = "VIGIL_CRASH_CHILD_FD";

Options CrashOptions(const std::string& dir) {
  Options o;
  o.dir = dir;
  o.sync = true;
  o.num_shards = 4;
  o.chunk_samples = 7;           // seal often
  o.wal_segment_bytes = 32 << 10;  // rotate and truncate the WAL often
  o.wal_max_bytes = 128 << 10;
  o.ooo_window = absl::Hours(24 * 365 * 10);
  return o;
}

BatchBuilder MakeBatch(int thread, int batch) {
  BatchBuilder b;
  for (int s = 0; s < kSeriesPerBatch; s++) {
    b.Add({{"__name__", "crash"}, {"thread", std::to_string(thread)}, {"s", std::to_string(s)}},
          {{kStart + batch * 1000LL, static_cast<double>(batch)}});
  }
  return b;
}

// The child: runs only when the parent re-executes this binary with the env set.
TEST(CrashChild, Run) {
  const char* dir = std::getenv(kDirEnv);
  const char* fd_str = std::getenv(kFdEnv);
  if (dir == nullptr || fd_str == nullptr) GTEST_SKIP() << "only run as the crash test's child";
  int fd;
  CHECK(absl::SimpleAtoi(fd_str, &fd));
  auto db = TSDB::Open(CrashOptions(dir));
  CHECK(db.ok()) << db.status();
  std::vector<std::thread> threads;
  for (int th = 0; th < kThreads; th++) {
    threads.emplace_back([&, th] {
      for (int b = 0;; b++) {
        BatchBuilder batch = MakeBatch(th, b);
        auto r = (*db)->Append(batch.batch());
        CHECK(r.ok()) << r.status();
        CHECK_EQ(r->appended + r->duplicates, kSeriesPerBatch) << r->errors.size();
        const std::string line = absl::StrCat(th, " ", b, "\n");
        CHECK_EQ(::write(fd, line.data(), line.size()), static_cast<ssize_t>(line.size()));
      }
    });
  }
  for (auto& t : threads) t.join();  // never returns: the parent kills us
}

class ChildProcess {
 public:
  ChildProcess(const std::string& dir) {
    int fds[2];
    CHECK_EQ(::pipe(fds), 0);
    read_fd_ = fds[0];
    pid_ = ::fork();
    CHECK_GE(pid_, 0);
    if (pid_ == 0) {
      ::close(fds[0]);
      ::setenv(kDirEnv, dir.c_str(), 1);
      ::setenv(kFdEnv, std::to_string(fds[1]).c_str(), 1);
      ::execl("/proc/self/exe", "crash_child", "--gtest_filter=CrashChild.Run", nullptr);
      ::_exit(127);
    }
    ::close(fds[1]);
  }
  ~ChildProcess() {
    Kill();
    ::close(read_fd_);
  }
  void Kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status;
    ::waitpid(pid_, &status, 0);
    pid_ = 0;
  }
  // Appends what the child wrote, waiting up to `timeout`: bytes read, 0 if
  // nothing came, -1 at EOF (the child is gone and everything was read).
  int Read(std::string* out, absl::Duration timeout) {
    pollfd p{read_fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout))) <= 0) return 0;
    char buf[4096];
    ssize_t n = ::read(read_fd_, buf, sizeof buf);
    if (n <= 0) return -1;
    out->append(buf, n);
    return static_cast<int>(n);
  }

 private:
  pid_t pid_ = 0;
  int read_fd_ = -1;
};

TEST(CrashTest, AckedSamplesSurviveSigkill) {
  TempDir dir;
  std::set<std::pair<int, int>> acked;
  for (int round = 0; round < 2; round++) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    std::string out;
    {
      ChildProcess child(dir.path());
      const absl::Time deadline = absl::Now() + absl::Minutes(3);
      int lines = 0;
      while (lines < kAcksBeforeKill && absl::Now() < deadline) {
        if (child.Read(&out, absl::Seconds(1)) < 0) break;
        lines = static_cast<int>(std::count(out.begin(), out.end(), '\n'));
      }
      ASSERT_GE(lines, kAcksBeforeKill) << "child did not make progress";
      child.Kill();
      while (child.Read(&out, absl::Seconds(10)) > 0) {
      }
    }
    for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
      std::vector<absl::string_view> f = absl::StrSplit(line, ' ');
      ASSERT_EQ(f.size(), 2u) << line;
      int th, b;
      ASSERT_TRUE(absl::SimpleAtoi(f[0], &th) && absl::SimpleAtoi(f[1], &b)) << line;
      acked.emplace(th, b);
    }
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<TSDB> db, TSDB::Open(CrashOptions(dir.path())));
    ASSERT_OK_AND_ASSIGN(query::SelectResult r,
                         db->Select({INT64_MIN, INT64_MAX}, {LabelMatcher::Equal("__name__", "crash")}));
    std::map<std::pair<int, int>, int> count;
    for (const Series& s : r.series) {
      int th;
      ASSERT_TRUE(absl::SimpleAtoi(s.labels.Get("thread"), &th));
      for (size_t i = 0; i < s.samples.size(); i++) {
        const int b = static_cast<int>((s.samples[i].t - kStart) / 1000);
        EXPECT_EQ(s.samples[i].v, b);
        count[{th, b}]++;
      }
    }
    int missing = 0;
    for (const auto& key : acked) {
      if (count[key] != kSeriesPerBatch) missing++;
    }
    EXPECT_EQ(missing, 0) << "of " << acked.size() << " acked batches";
    // In the second round the child restarts at batch 0: every sample is then a
    // duplicate of a recovered one and must be accepted as such.
  }
}

}  // namespace
}  // namespace vigil::storage
