// Copyright (c) dcp authors.
//
// Checksums and content hashes: the one wrapper around xxHash.
//
// Chunk records carry XXH3-128 of their raw (decoded) bytes; the same value
// sits in the manifest, so a record can be verified against what the step
// expects, and identical chunks can be recognised by hash (incremental steps).
// Framed blobs (manifests) carry XXH3-64 of their payload.
//
// Thread safety: pure functions.

#ifndef DCP_ENGINE_CODEC_CHECKSUM_H_
#define DCP_ENGINE_CODEC_CHECKSUM_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace dcp::codec {

struct Hash128 {
  uint64_t lo = 0;
  uint64_t hi = 0;

  // 32 lowercase hex digits, high half first.
  std::string ToHex() const;
  friend bool operator==(const Hash128& a, const Hash128& b) { return a.lo == b.lo && a.hi == b.hi; }
  friend bool operator!=(const Hash128& a, const Hash128& b) { return !(a == b); }
};

Hash128 ContentHash128(const void* data, size_t size);
uint64_t Checksum64(const void* data, size_t size, uint64_t seed = 0);

}  // namespace dcp::codec

#endif  // DCP_ENGINE_CODEC_CHECKSUM_H_
