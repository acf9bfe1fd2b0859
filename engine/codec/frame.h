// Copyright (c) dcp authors.
//
// Framed blobs: every file dcp persists outside RocksDB (step manifests) is
// wrapped in a frame that makes it self-describing and checksummed:
//
//   offset size field
//        0    8 magic (8 ASCII bytes, e.g. "DCPMANIF")
//        8    4 frame version (1)
//       12    4 payload format version (set by the caller, e.g. manifest v1)
//       16    8 payload size
//       24    8 XXH3-64 of the payload, seeded with XXH3-64 of bytes 8..24
//                 (so the versions and the size are covered too)
//       32      payload
//
// Thread safety: pure functions.

#ifndef DCP_ENGINE_CODEC_FRAME_H_
#define DCP_ENGINE_CODEC_FRAME_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "dcp/status.h"

namespace dcp::codec {

constexpr size_t kFrameHeaderSize = 32;

// The magics of dcp's framed files (one place, so that a reader of files
// outside the codec that owns their payload can check them).
constexpr char kManifestFrameMagic[] = "DCPMANIF";  // step manifests

// REQUIRES: magic.size() == 8.
std::string FrameBlob(std::string_view magic, uint32_t payload_version, std::string_view payload);

struct Unframed {
  uint32_t payload_version = 0;
  std::string_view payload;  // points into the framed bytes
};

// Checks magic, frame version, size and checksum. DataLoss naming `what` (e.g.
// the file) on any mismatch.
Result<Unframed> UnframeBlob(std::string_view framed, std::string_view magic, std::string_view what);

// The size of the whole framed blob whose first kFrameHeaderSize bytes are
// `header` (magic and frame version checked; the checksum needs the whole
// blob): lets a reader refuse a file whose size disagrees with its header
// before reading it whole. DataLoss naming `what`, as UnframeBlob.
Result<uint64_t> FramedSize(std::string_view header, std::string_view magic, std::string_view what);

}  // namespace dcp::codec

#endif  // DCP_ENGINE_CODEC_FRAME_H_
