// Copyright (c) dcp authors.

#include "engine/codec/chunk_codec.h"

#include <lz4.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "engine/codec/byte_plane.h"

namespace dcp::codec {
namespace {

// Compression must save at least this fraction to be kept.
constexpr double kMinSaving = 0.03;
// Bytes compressed first to decide whether the rest is worth trying.
constexpr size_t kProbeBytes = 64 << 10;
constexpr uint64_t kPlaneRawBit = uint64_t{1} << 63;

template <typename T>
void Put(char* p, T v) {
  std::memcpy(p, &v, sizeof(T));
}
template <typename T>
T Get(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

void WriteHeader(const ChunkHeader& h, char* p) {
  Put<uint32_t>(p + 0, kChunkMagic);
  Put<uint16_t>(p + 4, kChunkFormatVersion);
  Put<uint8_t>(p + 6, static_cast<uint8_t>(h.codec));
  Put<uint8_t>(p + 7, h.elem_size);
  Put<uint64_t>(p + 8, h.raw_size);
  Put<uint64_t>(p + 16, h.payload_size);
  Put<uint64_t>(p + 24, h.checksum.lo);
  Put<uint64_t>(p + 32, h.checksum.hi);
  Put<uint64_t>(p + 40, Checksum64(p, 40));
}

// LZ4 of src into dst (capacity LZ4_compressBound(n)); 0 if it does not pay.
size_t CompressIfWorthIt(const char* src, size_t n, char* dst, int dst_capacity) {
  if (n == 0) return 0;
  const size_t probe = std::min(n, kProbeBytes);
  if (n > probe) {
    const int p = LZ4_compress_default(src, dst, static_cast<int>(probe), dst_capacity);
    if (p <= 0 || static_cast<double>(p) > static_cast<double>(probe) * (1.0 - kMinSaving)) return 0;
  }
  const int c = LZ4_compress_default(src, dst, static_cast<int>(n), dst_capacity);
  if (c <= 0 || static_cast<double>(c) > static_cast<double>(n) * (1.0 - kMinSaving)) return 0;
  return static_cast<size_t>(c);
}

}  // namespace

bool IsValidChunkCodec(uint8_t raw) { return raw <= static_cast<uint8_t>(ChunkCodec::kLz4BytePlane); }

const char* ChunkCodecName(ChunkCodec codec) {
  switch (codec) {
    case ChunkCodec::kRaw: return "raw";
    case ChunkCodec::kLz4: return "lz4";
    case ChunkCodec::kLz4BytePlane: return "lz4+byteplane";
  }
  return "invalid";
}

ChunkHeader ChunkEncoder::Encode(const void* raw, size_t size, size_t elem_size, Compression compression,
                                 base::Buffer* out, const Hash128* checksum) {
  return EncodeImpl(raw, size, elem_size, compression, out, checksum, /*copy_raw=*/true);
}

ChunkHeader ChunkEncoder::EncodeHeaderIfRaw(const void* raw, size_t size, size_t elem_size, Compression compression,
                                            base::Buffer* out, const Hash128* checksum) {
  return EncodeImpl(raw, size, elem_size, compression, out, checksum, /*copy_raw=*/false);
}

ChunkHeader ChunkEncoder::EncodeImpl(const void* raw_v, size_t size, size_t elem_size, Compression compression,
                                     base::Buffer* out, const Hash128* checksum, bool copy_raw) {
  const char* raw = static_cast<const char*>(raw_v);
  ChunkHeader h;
  h.elem_size = static_cast<uint8_t>(elem_size);
  h.raw_size = size;
  h.checksum = checksum != nullptr ? *checksum : ContentHash128(raw, size);

  // An empty chunk has no planes to split (and its scratch buffer may not exist yet).
  const bool planes =
      compression == Compression::kLz4BytePlane && elem_size > 1 && size > 0 && size % elem_size == 0;
  if (compression == Compression::kLz4 || (compression == Compression::kLz4BytePlane && !planes)) {
    out->Resize(kChunkHeaderSize + static_cast<size_t>(LZ4_compressBound(static_cast<int>(size))));
    const size_t c = CompressIfWorthIt(raw, size, out->data() + kChunkHeaderSize,
                                       static_cast<int>(out->size() - kChunkHeaderSize));
    if (c > 0) {
      h.codec = ChunkCodec::kLz4;
      h.payload_size = c;
    }
  } else if (planes) {
    const size_t n = size / elem_size;
    planes_.Resize(size);
    SplitBytePlanes(raw, n, elem_size, planes_.data());
    const size_t desc = 8 * elem_size;
    const size_t bound = static_cast<size_t>(LZ4_compressBound(static_cast<int>(n)));
    out->Resize(kChunkHeaderSize + desc + elem_size * bound);
    char* descp = out->data() + kChunkHeaderSize;
    char* w = descp + desc;
    bool any = false;
    for (size_t j = 0; j < elem_size; ++j) {
      const char* plane = planes_.data() + j * n;
      const size_t c = CompressIfWorthIt(plane, n, w, static_cast<int>(bound));
      if (c > 0) {
        Put<uint64_t>(descp + 8 * j, c);
        w += c;
        any = true;
      } else {
        Put<uint64_t>(descp + 8 * j, n | kPlaneRawBit);
        std::memcpy(w, plane, n);
        w += n;
      }
    }
    const size_t payload = static_cast<size_t>(w - descp);
    if (any && static_cast<double>(payload) <= static_cast<double>(size) * (1.0 - kMinSaving)) {
      h.codec = ChunkCodec::kLz4BytePlane;
      h.payload_size = payload;
    }
  }
  if (h.codec == ChunkCodec::kRaw) {
    h.payload_size = size;
    if (copy_raw) {
      out->Resize(kChunkHeaderSize + size);
      std::memcpy(out->data() + kChunkHeaderSize, raw, size);
    }
  }
  out->Resize(h.codec == ChunkCodec::kRaw && !copy_raw ? kChunkHeaderSize : kChunkHeaderSize + h.payload_size);
  WriteHeader(h, out->data());
  return h;
}

Result<ChunkHeader> ParseChunkHeader(std::string_view record) {
  if (record.size() < kChunkHeaderSize) {
    return Status::DataLoss("chunk record is " + std::to_string(record.size()) + " bytes, shorter than its " +
                            std::to_string(kChunkHeaderSize) + "-byte header");
  }
  const char* p = record.data();
  if (Get<uint32_t>(p) != kChunkMagic) return Status::DataLoss("chunk record has a bad magic number");
  if (Get<uint64_t>(p + 40) != Checksum64(p, 40)) return Status::DataLoss("chunk record header checksum mismatch");
  const uint16_t version = Get<uint16_t>(p + 4);
  if (version != kChunkFormatVersion) {
    return Status::DataLoss("chunk record has unsupported format version " + std::to_string(version));
  }
  const uint8_t codec = Get<uint8_t>(p + 6);
  if (!IsValidChunkCodec(codec)) return Status::DataLoss("chunk record has unknown codec " + std::to_string(codec));
  ChunkHeader h;
  h.codec = static_cast<ChunkCodec>(codec);
  h.elem_size = Get<uint8_t>(p + 7);
  h.raw_size = Get<uint64_t>(p + 8);
  h.payload_size = Get<uint64_t>(p + 16);
  h.checksum = {Get<uint64_t>(p + 24), Get<uint64_t>(p + 32)};
  if (h.payload_size != record.size() - kChunkHeaderSize) {
    return Status::DataLoss("chunk record payload is " + std::to_string(record.size() - kChunkHeaderSize) +
                            " bytes but its header says " + std::to_string(h.payload_size));
  }
  if (h.raw_size > kMaxChunkRawSize) {
    return Status::DataLoss("chunk record claims " + std::to_string(h.raw_size) + " raw bytes, over the limit");
  }
  if (h.codec == ChunkCodec::kRaw && h.payload_size != h.raw_size) {
    return Status::DataLoss("raw chunk record payload size differs from its raw size");
  }
  if (h.codec == ChunkCodec::kLz4BytePlane &&
      (h.elem_size < 2 || h.raw_size == 0 || h.raw_size % h.elem_size != 0)) {
    return Status::DataLoss("byte-plane chunk record has an invalid element size");
  }
  return h;
}

namespace {

Status VerifyChecksum(const void* data, size_t size, const Hash128& expected) {
  const Hash128 got = ContentHash128(data, size);
  if (got != expected) {
    return Status::DataLoss("chunk checksum mismatch (stored " + expected.ToHex() + ", computed " + got.ToHex() + ")");
  }
  return Status::OK();
}

Status Lz4Decompress(const char* src, size_t n, char* dst, size_t expected) {
  if (n > static_cast<size_t>(LZ4_MAX_INPUT_SIZE) || expected > static_cast<size_t>(LZ4_MAX_INPUT_SIZE)) {
    return Status::DataLoss("LZ4 block too large");
  }
  const int got = LZ4_decompress_safe(src, dst, static_cast<int>(n), static_cast<int>(expected));
  if (got < 0 || static_cast<size_t>(got) != expected) {
    return Status::DataLoss("LZ4 block is corrupt (decoded " + std::to_string(got) + " of " +
                            std::to_string(expected) + " bytes)");
  }
  return Status::OK();
}

}  // namespace

Status DecodeChunk(std::string_view record, const ChunkHeader& h, void* dst_v, size_t dst_size) {
  if (dst_size != h.raw_size) {
    return Status::DataLoss("chunk record holds " + std::to_string(h.raw_size) + " raw bytes, expected " +
                            std::to_string(dst_size));
  }
  char* dst = static_cast<char*>(dst_v);
  const char* payload = record.data() + kChunkHeaderSize;
  switch (h.codec) {
    case ChunkCodec::kRaw:
      std::memcpy(dst, payload, h.raw_size);
      break;
    case ChunkCodec::kLz4:
      DCP_RETURN_IF_ERROR(Lz4Decompress(payload, h.payload_size, dst, h.raw_size));
      break;
    case ChunkCodec::kLz4BytePlane: {
      const size_t k = h.elem_size;
      const size_t n = h.raw_size / k;
      if (h.payload_size < 8 * k) return Status::DataLoss("byte-plane chunk record is truncated");
      thread_local base::Buffer planes;  // reused across chunks on this thread
      planes.Resize(h.raw_size);
      const char* r = payload + 8 * k;
      const char* end = payload + h.payload_size;
      for (size_t j = 0; j < k; ++j) {
        const uint64_t d = Get<uint64_t>(payload + 8 * j);
        const uint64_t len = d & ~kPlaneRawBit;
        if (len > static_cast<uint64_t>(end - r)) return Status::DataLoss("byte-plane chunk record is truncated");
        if (d & kPlaneRawBit) {
          if (len != n) return Status::DataLoss("byte-plane chunk record has a raw plane of the wrong size");
          std::memcpy(planes.data() + j * n, r, n);
        } else {
          DCP_RETURN_IF_ERROR(Lz4Decompress(r, len, planes.data() + j * n, n));
        }
        r += len;
      }
      if (r != end) return Status::DataLoss("byte-plane chunk record has trailing bytes");
      JoinBytePlanes(planes.data(), n, k, dst);
      break;
    }
  }
  return VerifyChecksum(dst, h.raw_size, h.checksum);
}

Result<std::string_view> RawChunkPayload(std::string_view record, const ChunkHeader& h) {
  if (h.codec != ChunkCodec::kRaw) return Status::Internal("RawChunkPayload on an encoded chunk");
  std::string_view payload = record.substr(kChunkHeaderSize, h.raw_size);
  DCP_RETURN_IF_ERROR(VerifyChecksum(payload.data(), payload.size(), h.checksum));
  return payload;
}

}  // namespace dcp::codec
