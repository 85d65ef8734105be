// cluster/fencing.cc
#include "cluster/fencing.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace vigil::cluster {
namespace {

constexpr absl::string_view kStalePrefix = "stale shard epoch ";

std::string MoveName(const std::optional<bool>& moving) {
  if (!moving.has_value()) return "";
  return *moving ? " (moving)" : " (not moving)";
}

}  // namespace

absl::Status StaleShardViewError(uint32_t shard, const ShardView& write, const ShardView& local) {
  return absl::FailedPreconditionError(
      absl::StrCat(kStalePrefix, write.epoch, MoveName(write.moving), " < ", local.epoch,
                   MoveName(local.moving), ": shard ", shard,
                   " was placed with an older shard map than this replica's"));
}

bool IsStaleShardView(const absl::Status& s) {
  return absl::IsFailedPrecondition(s) && absl::StartsWith(s.message(), kStalePrefix);
}

}  // namespace vigil::cluster
