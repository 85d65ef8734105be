#include "storage/wal.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "glog/logging.h"
#include "xxhash.h"

namespace vigil::storage {

namespace {

constexpr size_t kHeaderSize = 16;  // len u32, checksum u32, lsn u64

void PutFixed32(std::string* out, uint32_t v) {
  char b[4];
  std::memcpy(b, &v, 4);  // little-endian hosts only (x86-64, arm64)
  out->append(b, 4);
}
void PutFixed64(std::string* out, uint64_t v) {
  char b[8];
  std::memcpy(b, &v, 8);
  out->append(b, 8);
}
uint32_t GetFixed32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint64_t GetFixed64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

uint32_t RecordChecksum(const char* lsn_and_payload, size_t n) {
  return XXH32(lsn_and_payload, n, 0x76696731);
}

absl::Status ErrnoError(absl::string_view what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

absl::Status ReadFile(const std::string& path, std::string* out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open", path);
  out->clear();
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return ErrnoError("read", path);
    }
    if (n == 0) break;
    out->append(buf, n);
  }
  ::close(fd);
  return absl::OkStatus();
}

absl::Status WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return absl::InternalError(absl::StrCat("wal write: ", std::strerror(errno)));
    p += w;
    n -= w;
  }
  return absl::OkStatus();
}

absl::Status SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open", dir);
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return ErrnoError("fsync", dir);
  return absl::OkStatus();
}

}  // namespace

std::string Wal::SegmentPath(uint64_t number) const {
  return absl::StrFormat("%s/%016d.wal", opts_.dir, number);
}

absl::StatusOr<std::unique_ptr<Wal>> Wal::Open(const WalOptions& opts, const ReplayFn& replay) {
  std::error_code ec;
  std::filesystem::create_directories(opts.dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("create ", opts.dir, ": ", ec.message()));
  std::unique_ptr<Wal> wal(new Wal(opts));
  std::vector<uint64_t> numbers;
  for (const auto& entry : std::filesystem::directory_iterator(opts.dir)) {
    const std::string name = entry.path().filename().string();
    uint64_t n;
    if (name.size() == 20 && name.substr(16) == ".wal" &&
        absl::SimpleAtoi(name.substr(0, 16), &n)) {
      numbers.push_back(n);
    }
  }
  std::sort(numbers.begin(), numbers.end());
  absl::MutexLock l(&wal->mu_);
  std::string data;
  for (size_t i = 0; i < numbers.size(); i++) {
    const std::string path = wal->SegmentPath(numbers[i]);
    RETURN_IF_ERROR(ReadFile(path, &data));
    Segment seg{numbers[i], 0, 0, 0};
    size_t pos = 0;
    while (pos < data.size()) {
      bool ok = data.size() - pos >= kHeaderSize;
      uint32_t len = 0;
      if (ok) {
        len = GetFixed32(data.data() + pos);
        ok = data.size() - pos - kHeaderSize >= len &&
             GetFixed32(data.data() + pos + 4) == RecordChecksum(data.data() + pos + 8, 8 + len);
      }
      if (!ok) {
        if (i + 1 < numbers.size()) {
          return absl::DataLossError(absl::StrCat("corrupt record at offset ", pos, " of ", path));
        }
        // A torn write at the tail of the newest segment: never acknowledged.
        LOG(WARNING) << "wal: dropping torn tail of " << path << " at offset " << pos;
        if (::truncate(path.c_str(), pos) != 0) return ErrnoError("truncate", path);
        break;
      }
      const uint64_t lsn = GetFixed64(data.data() + pos + 8);
      if (lsn <= wal->recovered_lsn_) {
        return absl::DataLossError(absl::StrCat("wal LSN ", lsn, " out of order in ", path));
      }
      RETURN_IF_ERROR(replay(lsn, absl::string_view(data.data() + pos + kHeaderSize, len)));
      wal->recovered_lsn_ = lsn;
      if (seg.first_lsn == 0) seg.first_lsn = lsn;
      seg.last_lsn = lsn;
      pos += kHeaderSize + len;
    }
    seg.bytes = pos;
    wal->segments_.push_back(seg);
  }
  wal->durable_lsn_ = wal->recovered_lsn_;
  RETURN_IF_ERROR(wal->OpenNewSegment());
  return wal;
}

Wal::~Wal() {
  absl::MutexLock l(&mu_);
  while (writing_) cv_.Wait(&mu_);
  if (!pending_.empty() && error_.ok()) (void)WriteQueued();
  if (fd_ >= 0) ::close(fd_);
}

absl::Status Wal::OpenNewSegment() {
  const uint64_t number = segments_.empty() ? 1 : segments_.back().number + 1;
  const std::string path = SegmentPath(number);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError("create", path);
  if (opts_.sync) RETURN_IF_ERROR(SyncDir(opts_.dir));
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
  segments_.push_back(Segment{number, 0, 0, 0});
  return absl::OkStatus();
}

void Wal::Enqueue(uint64_t lsn, absl::string_view payload) {
  absl::MutexLock l(&mu_);
  CHECK_GT(lsn, pending_last_lsn_);
  CHECK_GT(lsn, durable_lsn_);
  const size_t start = pending_.size();
  PutFixed32(&pending_, static_cast<uint32_t>(payload.size()));
  PutFixed32(&pending_, 0);  // checksum, filled below
  PutFixed64(&pending_, lsn);
  pending_.append(payload.data(), payload.size());
  const uint32_t sum = RecordChecksum(pending_.data() + start + 8, 8 + payload.size());
  std::memcpy(&pending_[start + 4], &sum, 4);
  if (pending_first_lsn_ == 0) pending_first_lsn_ = lsn;
  pending_last_lsn_ = lsn;
}

absl::Status Wal::WriteQueued() {
  CHECK(!writing_);
  if (pending_.empty()) return absl::OkStatus();
  writing_ = true;
  std::string buf;
  buf.swap(pending_);
  pending_.swap(spare_);
  const uint64_t first = pending_first_lsn_, last = pending_last_lsn_;
  pending_first_lsn_ = 0;
  const int fd = fd_;
  mu_.Unlock();
  absl::Status s = WriteAll(fd, buf.data(), buf.size());
  if (s.ok() && opts_.sync && ::fdatasync(fd) != 0) {
    s = absl::InternalError(absl::StrCat("wal fdatasync: ", std::strerror(errno)));
  }
  mu_.Lock();
  writing_ = false;
  if (s.ok()) {
    durable_lsn_ = last;
    Segment& seg = segments_.back();
    if (seg.first_lsn == 0) seg.first_lsn = first;
    seg.last_lsn = last;
    seg.bytes += buf.size();
    if (seg.bytes >= opts_.segment_bytes) s = OpenNewSegment();
  }
  if (!s.ok()) error_ = s;
  buf.clear();
  spare_.swap(buf);
  cv_.SignalAll();
  return s;
}

absl::Status Wal::WaitDurable(uint64_t lsn) {
  absl::MutexLock l(&mu_);
  while (durable_lsn_ < lsn) {
    if (!error_.ok()) return error_;
    if (writing_) {
      cv_.Wait(&mu_);
      continue;
    }
    RETURN_IF_ERROR(WriteQueued());
  }
  return error_;
}

absl::Status Wal::Rotate() {
  absl::MutexLock l(&mu_);
  while (writing_) cv_.Wait(&mu_);
  if (!error_.ok()) return error_;
  RETURN_IF_ERROR(WriteQueued());
  if (segments_.back().first_lsn == 0) return absl::OkStatus();  // already fresh
  absl::Status s = OpenNewSegment();
  if (!s.ok()) error_ = s;
  return s;
}

absl::Status Wal::DeleteSegmentsBefore(uint64_t lsn) {
  absl::MutexLock l(&mu_);
  while (segments_.size() > 1 && segments_.front().last_lsn < lsn) {
    const std::string path = SegmentPath(segments_.front().number);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoError("unlink", path);
    segments_.erase(segments_.begin());
  }
  return absl::OkStatus();
}

int Wal::closed_segments() {
  absl::MutexLock l(&mu_);
  return static_cast<int>(segments_.size()) - 1;
}

uint64_t Wal::total_bytes() {
  absl::MutexLock l(&mu_);
  uint64_t n = 0;
  for (const Segment& s : segments_) n += s.bytes;
  return n;
}

uint64_t Wal::oldest_segment_last_lsn() {
  absl::MutexLock l(&mu_);
  return segments_.size() > 1 ? segments_.front().last_lsn : 0;
}

}  // namespace vigil::storage
