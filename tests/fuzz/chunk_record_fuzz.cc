// Copyright (c) dcp authors.
//
// Fuzz target: a chunk record's bytes (the value of a RocksDB record). Each
// input is tried as it is and with its header checksum made valid, so that
// the decoders behind the header check (LZ4, byte planes, raw payloads) see
// hostile payloads too. Invariants: no crash, nothing written outside the
// destination, and a record that decodes hashes to its stored checksum.

#include <cstring>
#include <string>
#include <vector>

#include "engine/codec/checksum.h"
#include "engine/codec/chunk_codec.h"
#include "tests/fuzz/fuzz_check.h"

using namespace dcp;

namespace {

// Larger chunks are valid but would only test the fuzzer's memory limit.
constexpr uint64_t kMaxFuzzRawSize = uint64_t{1} << 22;

void Try(std::string_view record) {
  auto header = codec::ParseChunkHeader(record);
  if (!header.ok()) return;
  FUZZ_CHECK(header->record_size() == record.size());
  if (header->raw_size > kMaxFuzzRawSize) return;
  std::vector<char> dst(header->raw_size + 1);
  // A wrong destination size is refused, never written past.
  FUZZ_CHECK(!codec::DecodeChunk(record, *header, dst.data(), dst.size()).ok());
  if (codec::DecodeChunk(record, *header, dst.data(), header->raw_size).ok()) {
    const codec::Hash128 h = codec::ContentHash128(dst.data(), header->raw_size);
    FUZZ_CHECK(h.lo == header->checksum.lo && h.hi == header->checksum.hi);
  }
  auto raw = codec::RawChunkPayload(record, *header);
  if (raw.ok()) FUZZ_CHECK(raw->size() == header->raw_size);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input = fuzz::Bytes(data, size);
  Try(input);
  if (size >= codec::kChunkHeaderSize) {
    std::string fixed(input);
    const uint64_t check = codec::Checksum64(fixed.data(), 40);
    std::memcpy(fixed.data() + 40, &check, sizeof(check));
    Try(fixed);
  }
  return 0;
}
