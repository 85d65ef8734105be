#include "query/release_memory.h"

#include <cstdint>
#include <limits>
#include <memory>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace vigil::query {
namespace {

constexpr int64_t kMiB = 1 << 20;

TEST(ReleaseFreedMemoryTest, ReturnsFreedHeapOfOtherThreadsToTheSystem) {
  if (ResidentBytes() == 0) GTEST_SKIP() << "no /proc/self/statm";
#ifndef __GLIBC__
  GTEST_SKIP() << "not glibc";
#endif
  ReleaseFreedMemory(0);  // start from a trimmed heap
  EXPECT_FALSE(ReleaseFreedMemory(std::numeric_limits<int64_t>::max()));
  // 128 MiB of small blocks allocated and mostly freed by another thread (its
  // own malloc arena), one block in 32 kept so that nothing coalesces into the
  // top of the heap, where free() would trim by itself.
  constexpr int kBlocks = 128 * 1024;
  std::vector<std::unique_ptr<char[]>> kept;
  int64_t peak = 0;
  std::thread([&] {
    std::vector<std::unique_ptr<char[]>> blocks(kBlocks);
    for (auto& b : blocks) {
      b.reset(new char[1000]);
      for (int i = 0; i < 1000; i += 512) b[i] = 1;  // touch: make it resident
    }
    peak = ResidentBytes();
    for (int i = 0; i < kBlocks; i += 32) kept.push_back(std::move(blocks[i]));
  }).join();
  const int64_t before = ResidentBytes();
  ASSERT_GT(before, peak - 16 * kMiB) << "free() already returned the memory: nothing to test";
  EXPECT_FALSE(ReleaseFreedMemory(before));  // grew by less than the slack
  EXPECT_TRUE(ReleaseFreedMemory(32 * kMiB));
  const int64_t after = ResidentBytes();
  EXPECT_LT(after, before - 64 * kMiB) << "before " << before << " after " << after;
  // Nothing grew since: no second release.
  EXPECT_FALSE(ReleaseFreedMemory(32 * kMiB));
}

}  // namespace
}  // namespace vigil::query
