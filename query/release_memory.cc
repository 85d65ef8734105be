#include "query/release_memory.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>

#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace vigil::query {
namespace {

// Resident bytes right after the last release; -1 before the first call.
std::atomic<int64_t> rss_after_release{-1};

}  // namespace

int64_t ResidentBytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  long pages = 0, resident = 0;
  if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
  std::fclose(f);
  return static_cast<int64_t>(resident) * sysconf(_SC_PAGESIZE);
}

bool ReleaseFreedMemory(int64_t slack_bytes) {
#ifdef __GLIBC__
  const int64_t rss = ResidentBytes();
  if (rss <= 0) return false;
  int64_t base = rss_after_release.load();
  if (base < 0) {
    rss_after_release.compare_exchange_strong(base, rss);
    return false;
  }
  if (rss - base <= slack_bytes) return false;
  // Concurrent callers: one trims, the others see the new base.
  if (!rss_after_release.compare_exchange_strong(base, rss)) return false;
  malloc_trim(0);
  rss_after_release.store(ResidentBytes());
  return true;
#else
  (void)slack_bytes;
  return false;
#endif
}

}  // namespace vigil::query
