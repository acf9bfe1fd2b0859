// Copyright (c) dcp authors.

#include "engine/wire/wire.h"

#include <utility>

namespace dcp::wire {

Writer& Writer::U8(uint8_t v) {
  out_.push_back(static_cast<char>(v));
  return *this;
}

Writer& Writer::Fixed(uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return *this;
}

Writer& Writer::U32(uint32_t v) { return Fixed(v, 4); }
Writer& Writer::U64(uint64_t v) { return Fixed(v, 8); }

Writer& Writer::Varint(uint64_t v) {
  while (v >= 0x80) {
    out_.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out_.push_back(static_cast<char>(v));
  return *this;
}

Writer& Writer::Bytes(std::string_view b) {
  Varint(b.size());
  out_.append(b);
  return *this;
}

Writer& Writer::Raw(std::string_view b) {
  out_.append(b);
  return *this;
}

Writer& Writer::PutStatus(const Status& s) {
  Varint(static_cast<uint64_t>(s.code()));
  if (!s.ok()) Bytes(s.message());
  return *this;
}

Reader::Reader(std::string_view bytes, std::string what) : data_(bytes), what_(std::move(what)) {}

bool Reader::Take(size_t n, const char* field) {
  if (!ok()) return false;
  if (n > left()) {
    Fail(std::string("truncated ") + field + " at byte " + std::to_string(pos_) + " of " +
         std::to_string(data_.size()));
    return false;
  }
  return true;
}

uint8_t Reader::U8() {
  if (!Take(1, "u8")) return 0;
  return static_cast<uint8_t>(data_[pos_++]);
}

uint64_t Reader::Fixed(int bytes, const char* field) {
  if (!Take(static_cast<size_t>(bytes), field)) return 0;
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(data_[pos_ + i])) << (8 * i);
  pos_ += static_cast<size_t>(bytes);
  return v;
}

uint32_t Reader::U32() { return static_cast<uint32_t>(Fixed(4, "u32")); }
uint64_t Reader::U64() { return Fixed(8, "u64"); }

uint64_t Reader::Varint() {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (!Take(1, "varint")) return 0;
    const auto b = static_cast<uint8_t>(data_[pos_++]);
    // The tenth byte may only carry the top bit of a u64.
    if (shift == 63 && b > 1) break;
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return v;
  }
  Fail("varint longer than 64 bits at byte " + std::to_string(pos_));
  return 0;
}

std::string_view Reader::Bytes() {
  const uint64_t n = Varint();
  if (!ok()) return {};
  if (n > left()) {
    Fail("byte string of " + std::to_string(n) + " bytes at byte " + std::to_string(pos_) + " overruns the " +
         std::to_string(data_.size()) + "-byte message");
    return {};
  }
  const std::string_view b = data_.substr(pos_, static_cast<size_t>(n));
  pos_ += static_cast<size_t>(n);
  return b;
}

std::string_view Reader::Rest() {
  if (!ok()) return {};
  const std::string_view b = data_.substr(pos_);
  pos_ = data_.size();
  return b;
}

Status Reader::GetStatus() {
  const uint64_t code = Varint();
  if (!ok() || code == 0) return Status::OK();
  if (code > static_cast<uint64_t>(StatusCode::kUnimplemented)) {
    Fail("unknown status code " + std::to_string(code));
    return Status::OK();
  }
  const std::string_view message = Bytes();
  if (!ok()) return Status::OK();
  return Status(static_cast<StatusCode>(code), std::string(message));
}

uint64_t Reader::Count(size_t min_bytes) {
  const uint64_t n = Varint();
  if (!ok()) return 0;
  if (min_bytes == 0) min_bytes = 1;
  if (n > left() / min_bytes) {
    Fail("count " + std::to_string(n) + " at byte " + std::to_string(pos_) + " exceeds what the " +
         std::to_string(left()) + " bytes left can hold");
    return 0;
  }
  return n;
}

void Reader::Fail(std::string why) {
  if (error_.empty()) error_ = why.empty() ? std::string("invalid") : std::move(why);
}

Status Reader::Finish() const {
  if (!ok()) return Status::Internal("malformed " + what_ + ": " + error_);
  if (left() != 0) {
    return Status::Internal("malformed " + what_ + ": " + std::to_string(left()) + " trailing bytes after byte " +
                            std::to_string(pos_));
  }
  return Status::OK();
}

std::string EncodeU64List(const std::vector<uint64_t>& values) {
  Writer w;
  w.Varint(values.size());
  for (uint64_t v : values) w.Varint(v);
  return w.Finish();
}

Result<std::vector<uint64_t>> DecodeU64List(std::string_view bytes, const std::string& what) {
  Reader r(bytes, what);
  std::vector<uint64_t> values(r.Count(1));
  for (uint64_t& v : values) v = r.Varint();
  DCP_RETURN_IF_ERROR(r.Finish());
  return values;
}

std::string EncodeStringList(const std::vector<std::string>& values) {
  Writer w;
  w.Varint(values.size());
  for (const std::string& v : values) w.Bytes(v);
  return w.Finish();
}

Result<std::vector<std::string>> DecodeStringList(std::string_view bytes, const std::string& what) {
  Reader r(bytes, what);
  std::vector<std::string> values(r.Count(1));
  for (std::string& v : values) v = std::string(r.Bytes());
  DCP_RETURN_IF_ERROR(r.Finish());
  return values;
}

std::string EncodeResult(const Status& status, std::string_view payload) {
  Writer w;
  w.PutStatus(status);
  if (status.ok()) w.Raw(payload);
  return w.Finish();
}

Result<std::string> DecodeResult(std::string_view bytes, const std::string& what) {
  Reader r(bytes, what);
  Status s = r.GetStatus();
  const std::string_view payload = s.ok() ? r.Rest() : std::string_view();
  DCP_RETURN_IF_ERROR(r.Finish());
  DCP_RETURN_IF_ERROR(s);
  return std::string(payload);
}

}  // namespace dcp::wire
