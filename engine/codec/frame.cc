// Copyright (c) dcp authors.

#include "engine/codec/frame.h"

#include <cstring>

#include "engine/codec/checksum.h"

namespace dcp::codec {
namespace {

constexpr uint32_t kFrameVersion = 1;

template <typename T>
void Append(std::string* s, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  s->append(b, sizeof(T));
}
template <typename T>
T Get(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// The checksum covers the payload and the header fields after the magic.
uint64_t FrameChecksum(const char* header, std::string_view payload) {
  return Checksum64(payload.data(), payload.size(), Checksum64(header + 8, 16) | 1);
}

}  // namespace

std::string FrameBlob(std::string_view magic, uint32_t payload_version, std::string_view payload) {
  std::string out;
  out.reserve(kFrameHeaderSize + payload.size());
  out.append(magic.substr(0, 8));
  out.resize(8, ' ');
  Append<uint32_t>(&out, kFrameVersion);
  Append<uint32_t>(&out, payload_version);
  Append<uint64_t>(&out, payload.size());
  Append<uint64_t>(&out, FrameChecksum(out.data(), payload));
  out.append(payload);
  return out;
}

Result<uint64_t> FramedSize(std::string_view header, std::string_view magic, std::string_view what) {
  const std::string w(what);
  if (header.size() < kFrameHeaderSize) {
    return Status::DataLoss(w + " is truncated (" + std::to_string(header.size()) + " bytes)");
  }
  if (header.substr(0, 8) != magic.substr(0, 8)) {
    return Status::DataLoss(w + " does not start with the magic \"" + std::string(magic) + "\"");
  }
  const char* p = header.data();
  const uint32_t frame_version = Get<uint32_t>(p + 8);
  if (frame_version != kFrameVersion) {
    return Status::DataLoss(w + " has unsupported frame version " + std::to_string(frame_version));
  }
  const uint64_t size = Get<uint64_t>(p + 16);
  if (size > UINT64_MAX - kFrameHeaderSize) return Status::DataLoss(w + " declares an impossible payload size");
  return kFrameHeaderSize + size;
}

Result<Unframed> UnframeBlob(std::string_view framed, std::string_view magic, std::string_view what) {
  const std::string w(what);
  DCP_RETURN_IF_ERROR(FramedSize(framed, magic, what).status());
  const char* p = framed.data();
  const uint64_t size = Get<uint64_t>(p + 16);
  if (size != framed.size() - kFrameHeaderSize) {
    return Status::DataLoss(w + " is truncated or padded: header says " + std::to_string(size) +
                            " payload bytes, file holds " + std::to_string(framed.size() - kFrameHeaderSize));
  }
  Unframed u;
  u.payload_version = Get<uint32_t>(p + 12);
  u.payload = framed.substr(kFrameHeaderSize);
  if (FrameChecksum(p, u.payload) != Get<uint64_t>(p + 24)) {
    return Status::DataLoss(w + " checksum mismatch");
  }
  return u;
}

}  // namespace dcp::codec
