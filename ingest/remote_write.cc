// ingest/remote_write.cc
//
// A minimal protobuf wire-format reader (https://protobuf.dev/programming-guides/encoding/)
// specialised for prometheus.WriteRequest.
#include "ingest/remote_write.h"

#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "snappy.h"

namespace vigil::ingest {
namespace {

enum WireType : uint32_t {
  kVarint = 0,
  kFixed64 = 1,
  kLengthDelimited = 2,
  kStartGroup = 3,
  kEndGroup = 4,
  kFixed32 = 5,
};

// Unknown groups nest; bound the recursion an attacker can ask for.
constexpr int kMaxGroupDepth = 64;

// Reads wire-format primitives from [pos_, end_). Offsets in errors are relative
// to `base`, the start of the whole message, so they point into the request.
class WireReader {
 public:
  WireReader(const char* base, const char* begin, const char* end)
      : base_(base), pos_(begin), end_(end) {}

  bool done() const { return pos_ >= end_; }

  absl::Status ReadVarint(uint64_t* v) {
    uint64_t result = 0;
    for (int shift = 0; shift < 70; shift += 7) {
      if (pos_ >= end_) return Error("truncated varint");
      const uint8_t b = static_cast<uint8_t>(*pos_++);
      if (shift == 63 && b > 1) return Error("varint overflows 64 bits");
      result |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) {
        *v = result;
        return absl::OkStatus();
      }
    }
    return Error("varint longer than 10 bytes");
  }

  // Reads a tag; fails on field number 0 and on wire types 6 and 7.
  absl::Status ReadTag(uint32_t* field, uint32_t* wire_type) {
    uint64_t tag = 0;
    RETURN_IF_ERROR(ReadVarint(&tag));
    if (tag > 0xffffffffULL) return Error("tag overflows 32 bits");
    *field = static_cast<uint32_t>(tag >> 3);
    *wire_type = static_cast<uint32_t>(tag & 7);
    if (*field == 0) return Error("field number 0");
    if (*wire_type > kFixed32) return Error(absl::StrCat("invalid wire type ", *wire_type));
    return absl::OkStatus();
  }

  absl::Status ReadFixed64(uint64_t* v) {
    if (end_ - pos_ < 8) return Error("truncated fixed64");
    std::memcpy(v, pos_, 8);  // Little-endian on every platform we build for.
    pos_ += 8;
    return absl::OkStatus();
  }

  absl::Status ReadLengthDelimited(absl::string_view* out) {
    uint64_t len = 0;
    RETURN_IF_ERROR(ReadVarint(&len));
    if (len > static_cast<uint64_t>(end_ - pos_)) {
      return Error(absl::StrCat("length ", len, " runs past the end of the message"));
    }
    *out = absl::string_view(pos_, len);
    pos_ += len;
    return absl::OkStatus();
  }

  // Skips the value of a field whose tag was just read.
  absl::Status SkipField(uint32_t field, uint32_t wire_type, int depth = 0) {
    uint64_t ignored = 0;
    absl::string_view ignored_bytes;
    switch (wire_type) {
      case kVarint:
        return ReadVarint(&ignored);
      case kFixed64:
        return ReadFixed64(&ignored);
      case kLengthDelimited:
        return ReadLengthDelimited(&ignored_bytes);
      case kFixed32:
        if (end_ - pos_ < 4) return Error("truncated fixed32");
        pos_ += 4;
        return absl::OkStatus();
      case kStartGroup:
        return SkipGroup(field, depth + 1);
      case kEndGroup:
        return Error("unexpected end-group tag");
    }
    return Error(absl::StrCat("invalid wire type ", wire_type));
  }

  // A reader over a length-delimited payload just read by ReadLengthDelimited.
  WireReader Sub(absl::string_view payload) const {
    return WireReader(base_, payload.data(), payload.data() + payload.size());
  }

  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed remote-write protobuf: ", what, " at offset ", pos_ - base_));
  }

 private:
  absl::Status SkipGroup(uint32_t group_field, int depth) {
    if (depth > kMaxGroupDepth) return Error("groups nested too deeply");
    for (;;) {
      if (done()) return Error("unterminated group");
      uint32_t field = 0, wire_type = 0;
      RETURN_IF_ERROR(ReadTag(&field, &wire_type));
      if (wire_type == kEndGroup) {
        if (field != group_field) return Error("mismatched end-group tag");
        return absl::OkStatus();
      }
      RETURN_IF_ERROR(SkipField(field, wire_type, depth));
    }
  }

  const char* base_;
  const char* pos_;
  const char* end_;
};

// prometheus.Label { string name = 1; string value = 2; }
absl::Status ParseLabel(WireReader r, storage::LabelRef* label) {
  while (!r.done()) {
    uint32_t field = 0, wire_type = 0;
    RETURN_IF_ERROR(r.ReadTag(&field, &wire_type));
    if ((field == 1 || field == 2) && wire_type == kLengthDelimited) {
      RETURN_IF_ERROR(r.ReadLengthDelimited(field == 1 ? &label->name : &label->value));
    } else {
      RETURN_IF_ERROR(r.SkipField(field, wire_type));
    }
  }
  return absl::OkStatus();
}

// prometheus.Sample { double value = 1; int64 timestamp = 2; }
absl::Status ParseSample(WireReader r, Sample* sample) {
  while (!r.done()) {
    uint32_t field = 0, wire_type = 0;
    RETURN_IF_ERROR(r.ReadTag(&field, &wire_type));
    if (field == 1 && wire_type == kFixed64) {
      uint64_t bits = 0;
      RETURN_IF_ERROR(r.ReadFixed64(&bits));
      std::memcpy(&sample->v, &bits, sizeof bits);
    } else if (field == 2 && wire_type == kVarint) {
      uint64_t t = 0;
      RETURN_IF_ERROR(r.ReadVarint(&t));
      sample->t = static_cast<int64_t>(t);
    } else {
      RETURN_IF_ERROR(r.SkipField(field, wire_type));
    }
  }
  return absl::OkStatus();
}

// prometheus.TimeSeries { repeated Label labels = 1; repeated Sample samples = 2;
// repeated Exemplar exemplars = 3; }
absl::Status ParseTimeSeries(WireReader r, storage::SeriesAppend* series) {
  while (!r.done()) {
    uint32_t field = 0, wire_type = 0;
    RETURN_IF_ERROR(r.ReadTag(&field, &wire_type));
    if ((field == 1 || field == 2) && wire_type == kLengthDelimited) {
      absl::string_view payload;
      RETURN_IF_ERROR(r.ReadLengthDelimited(&payload));
      if (field == 1) {
        RETURN_IF_ERROR(ParseLabel(r.Sub(payload), &series->labels.emplace_back()));
      } else {
        RETURN_IF_ERROR(ParseSample(r.Sub(payload), &series->samples.emplace_back()));
      }
    } else {
      RETURN_IF_ERROR(r.SkipField(field, wire_type));  // exemplars and unknowns
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ParseWriteRequest(absl::string_view proto, std::vector<storage::SeriesAppend>* out) {
  // prometheus.WriteRequest { repeated TimeSeries timeseries = 1; metadata = 3; }
  WireReader r(proto.data(), proto.data(), proto.data() + proto.size());
  while (!r.done()) {
    uint32_t field = 0, wire_type = 0;
    RETURN_IF_ERROR(r.ReadTag(&field, &wire_type));
    if (field == 1 && wire_type == kLengthDelimited) {
      absl::string_view payload;
      RETURN_IF_ERROR(r.ReadLengthDelimited(&payload));
      RETURN_IF_ERROR(ParseTimeSeries(r.Sub(payload), &out->emplace_back()));
    } else {
      RETURN_IF_ERROR(r.SkipField(field, wire_type));  // metadata and unknowns
    }
  }
  return absl::OkStatus();
}

absl::Status CheckLabelsSortedUnique(const storage::SeriesAppend& series) {
  for (size_t i = 1; i < series.labels.size(); ++i) {
    const absl::string_view prev = series.labels[i - 1].name;
    const absl::string_view cur = series.labels[i].name;
    if (prev < cur) continue;
    std::string desc;
    for (const storage::LabelRef& l : series.labels) {
      absl::StrAppend(&desc, desc.empty() ? "" : ", ", l.name, "=\"", l.value, "\"");
    }
    return absl::InvalidArgumentError(absl::StrCat(
        prev == cur ? "duplicate label name \"" : "labels not sorted by name at \"", cur,
        "\" in series {", desc, "}"));
  }
  return absl::OkStatus();
}

absl::StatusOr<DecodedWrite> DecodeRemoteWrite(absl::string_view body, const DecodeOptions& opts) {
  size_t len = 0;
  if (!snappy::GetUncompressedLength(body.data(), body.size(), &len)) {
    return absl::InvalidArgumentError("bad snappy: invalid block header");
  }
  if (len > opts.max_decompressed_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("decompressed body of ", len,
                                                   " bytes exceeds the limit of ",
                                                   opts.max_decompressed_bytes));
  }
  DecodedWrite out;
  out.buffer_.reset(new char[len == 0 ? 1 : len]);
  if (!snappy::RawUncompress(body.data(), body.size(), out.buffer_.get())) {
    return absl::InvalidArgumentError("bad snappy: corrupt compressed data");
  }
  RETURN_IF_ERROR(ParseWriteRequest(absl::string_view(out.buffer_.get(), len), &out.series_));
  for (const storage::SeriesAppend& s : out.series_) {
    if (opts.require_sorted_labels) RETURN_IF_ERROR(CheckLabelsSortedUnique(s));
    out.num_samples_ += static_cast<int64_t>(s.samples.size());
  }
  return out;
}

}  // namespace vigil::ingest
