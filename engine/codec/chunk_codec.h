// Copyright (c) dcp authors.
//
// The chunk record format: how one chunk's raw bytes are stored as the value
// of one RocksDB record. The one place LZ4 is used.
//
// Record layout (little-endian; see docs/format.md):
//
//   offset size field
//        0    4 magic "DCPC"
//        4    2 format version (1)
//        6    1 codec: 0 raw, 1 LZ4, 2 byte planes + LZ4
//        7    1 element size in bytes (byte-plane codec; informational otherwise)
//        8    8 raw size (bytes of the decoded chunk)
//       16    8 payload size (bytes after the header)
//       24   16 XXH3-128 of the raw bytes (lo, hi)
//       40    8 XXH3-64 of bytes 0..40 (header check)
//       48      payload
//
// Byte-plane payload: `element size` descriptors of 8 bytes (bit 63 set: the
// plane is stored raw; low 62 bits: its stored length), then the planes.
//
// Encoding never loses: a chunk (or plane) whose compression saves less than
// ~3% is stored raw, probed on a prefix first so incompressible data costs
// little. Decoding treats every byte as untrusted: sizes are checked against
// the header and the expected raw size before anything is written, LZ4 runs
// in its safe mode, and the decoded bytes must hash to the stored checksum.
// Every failure is kDataLoss with a message saying what did not match; callers
// add the tensor key, offset and rank store.
//
// Thread safety: pure functions; ChunkEncoder is one per thread.

#ifndef DCP_ENGINE_CODEC_CHUNK_CODEC_H_
#define DCP_ENGINE_CODEC_CHUNK_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "dcp/options.h"
#include "dcp/status.h"
#include "engine/base/buffer.h"
#include "engine/codec/checksum.h"

namespace dcp::codec {

// DO NOT CHANGE THESE VALUES: they are stored in records and manifests.
enum class ChunkCodec : uint8_t { kRaw = 0, kLz4 = 1, kLz4BytePlane = 2 };
bool IsValidChunkCodec(uint8_t raw);
const char* ChunkCodecName(ChunkCodec codec);

constexpr uint32_t kChunkMagic = 0x43504344;  // "DCPC"
constexpr uint16_t kChunkFormatVersion = 1;
constexpr size_t kChunkHeaderSize = 48;
// Largest raw chunk accepted (LZ4 block inputs are < 2 GiB).
constexpr uint64_t kMaxChunkRawSize = uint64_t{1} << 30;

struct ChunkHeader {
  ChunkCodec codec = ChunkCodec::kRaw;
  uint8_t elem_size = 1;
  uint64_t raw_size = 0;
  uint64_t payload_size = 0;
  Hash128 checksum;

  uint64_t record_size() const { return kChunkHeaderSize + payload_size; }
};

// Encodes chunks, reusing its scratch space across calls.
class ChunkEncoder {
 public:
  // Encodes `size` raw bytes of elements of `elem_size` bytes into `*out`
  // (header + payload) and returns the header. `compression` is the wish; the
  // record says what was used.
  // `checksum`, if given, is the caller's ContentHash128 of the raw bytes
  // (saves a second pass over them).
  // REQUIRES: size <= kMaxChunkRawSize, elem_size in 1..255.
  ChunkHeader Encode(const void* raw, size_t size, size_t elem_size, Compression compression,
                     base::Buffer* out, const Hash128* checksum = nullptr);

  // As Encode, but a chunk that stays raw (no compression asked for, or none
  // that pays) gets only its header in `*out` (kChunkHeaderSize bytes): its
  // payload is `raw` itself, and the caller writes it after the header. Saves
  // a copy of the chunk, and the fresh memory it would be copied into.
  ChunkHeader EncodeHeaderIfRaw(const void* raw, size_t size, size_t elem_size, Compression compression,
                                base::Buffer* out, const Hash128* checksum = nullptr);

 private:
  ChunkHeader EncodeImpl(const void* raw, size_t size, size_t elem_size, Compression compression,
                         base::Buffer* out, const Hash128* checksum, bool copy_raw);

  base::Buffer planes_;
};

// Parses and checks the header of `record` (magic, version, header checksum,
// codec, sizes against the record length).
Result<ChunkHeader> ParseChunkHeader(std::string_view record);

// Decodes `record` into `dst` and verifies the checksum of the result.
// REQUIRES: dst_size == header.raw_size (else DataLoss naming both sizes).
Status DecodeChunk(std::string_view record, const ChunkHeader& header, void* dst, size_t dst_size);

// For raw records: the payload, after verifying its checksum (no copy).
Result<std::string_view> RawChunkPayload(std::string_view record, const ChunkHeader& header);

}  // namespace dcp::codec

#endif  // DCP_ENGINE_CODEC_CHUNK_CODEC_H_
