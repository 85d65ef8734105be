// ingest/remote_write.h
//
// Decoding of Prometheus remote-write 1.0 request bodies: a snappy block-format
// frame around a serialized prometheus.WriteRequest (proto/prometheus/remote.proto).
//
// The protobuf is walked by hand, without the generated classes: every label of
// the result is a string_view into the decompressed buffer that DecodedWrite
// owns, so decoding allocates per series, not per label. Metadata and exemplars
// are skipped. Unknown fields are skipped as protobuf parsers do.
//
// Stateless functions; safe to call concurrently.
#ifndef VIGIL_INGEST_REMOTE_WRITE_H_
#define VIGIL_INGEST_REMOTE_WRITE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "storage/tsdb.h"

namespace vigil::ingest {

struct DecodeOptions {
  // Largest uncompressed WriteRequest accepted; checked against the length in the
  // snappy header before anything is decompressed.
  size_t max_decompressed_bytes = 64 << 20;
  // The remote-write spec requires label names sorted and unique within a series.
  bool require_sorted_labels = true;
};

// A decoded request. Move-only: the LabelRefs of `series` point into `buffer_`,
// whose heap storage does not move when the object does.
class DecodedWrite {
 public:
  DecodedWrite() = default;
  DecodedWrite(DecodedWrite&&) = default;
  DecodedWrite& operator=(DecodedWrite&&) = default;
  DecodedWrite(const DecodedWrite&) = delete;
  DecodedWrite& operator=(const DecodedWrite&) = delete;

  const std::vector<storage::SeriesAppend>& series() const { return series_; }
  int64_t num_samples() const { return num_samples_; }

 private:
  friend absl::StatusOr<DecodedWrite> DecodeRemoteWrite(absl::string_view body,
                                                       const DecodeOptions& opts);
  std::unique_ptr<char[]> buffer_;
  std::vector<storage::SeriesAppend> series_;
  int64_t num_samples_ = 0;
};

// Decompresses (snappy block format) and parses a remote-write body.
// kInvalidArgument with the reason for bad snappy, a body whose uncompressed
// length exceeds opts.max_decompressed_bytes, malformed protobuf (truncated
// varint, invalid wire type, length past the end, ...) and, when
// opts.require_sorted_labels, unsorted or repeated label names.
// Label syntax (metric name, UTF-8, limits) is left to storage::TSDB::Append.
absl::StatusOr<DecodedWrite> DecodeRemoteWrite(absl::string_view body,
                                               const DecodeOptions& opts = {});

// Parses an uncompressed prometheus.WriteRequest, appending one SeriesAppend per
// TimeSeries to `out`; the LabelRefs point into `proto`, which must outlive them.
// kInvalidArgument for malformed protobuf; on error `out` holds a partial result.
absl::Status ParseWriteRequest(absl::string_view proto, std::vector<storage::SeriesAppend>* out);

// kInvalidArgument naming the series unless its label names are strictly
// increasing (sorted, no repeats).
absl::Status CheckLabelsSortedUnique(const storage::SeriesAppend& series);

}  // namespace vigil::ingest

#endif  // VIGIL_INGEST_REMOTE_WRITE_H_
