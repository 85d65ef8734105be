// common/sample.h
//
// Sample and Series: the values that storage returns and PromQL evaluates.
// Timestamps are milliseconds since the Unix epoch, as in Prometheus.
#ifndef VIGIL_COMMON_SAMPLE_H_
#define VIGIL_COMMON_SAMPLE_H_

#include <cstdint>
#include <cstring>
#include <vector>

#include "common/labels.h"

namespace vigil {

// Prometheus' staleness marker: a NaN with this exact bit pattern
// (prometheus/model/value.StaleNaN). Kept distinct from every other NaN.
inline constexpr uint64_t kStaleNaNBits = 0x7ff0000000000002ULL;

inline double StaleNaN() {
  double d;
  std::memcpy(&d, &kStaleNaNBits, sizeof d);
  return d;
}

inline bool IsStaleNaN(double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return bits == kStaleNaNBits;
}

inline uint64_t DoubleBits(double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return bits;
}

struct Sample {
  int64_t t = 0;  // ms since epoch
  double v = 0;
};

// One series and its samples, sorted by time, no duplicate timestamps.
struct Series {
  Labels labels;
  std::vector<Sample> samples;
};

}  // namespace vigil

#endif  // VIGIL_COMMON_SAMPLE_H_
