// Copyright (c) dcp authors.

#include "engine/query/read_once_messages.h"

namespace dcp::query {
namespace {

constexpr uint32_t kNeedsMagic = 0x31524344;  // "DCR1"
constexpr uint8_t kRecord = 0;
constexpr uint8_t kUnavailable = 1;

}  // namespace

std::string EncodeReadOnceNeeds(bool failed, uint64_t budget, uint64_t total_chunks,
                                const std::vector<ChunkOrdinal>& chunks) {
  wire::Writer w;
  w.U32(kNeedsMagic).U8(failed ? kReadOnceFailed : 0).U64(budget).U64(total_chunks).Varint(chunks.size());
  for (size_t i = 0; i < chunks.size(); ++i) w.Varint(i == 0 ? chunks[i] : chunks[i] - chunks[i - 1] - 1);
  return w.Finish();
}

Status DecodeReadOnceNeeds(std::string_view bytes, int from, uint64_t total_chunks, ReadOnceNeeds* out) {
  wire::Reader in(bytes, "read-once needs from rank " + std::to_string(from));
  if (in.U32() != kNeedsMagic && in.ok()) in.Fail("bad magic (is LoadOptions::read_once set on every rank?)");
  out->failed = (in.U8() & kReadOnceFailed) != 0;
  out->budget = in.U64();
  const uint64_t total = in.U64();
  const uint64_t count = in.Count(1);
  out->chunks.clear();
  if (in.ok() && out->failed) {
    if (count != 0) in.Fail("a failed rank sent needs");
    return in.Finish();
  }
  if (in.ok() && total != total_chunks) {
    in.Fail("its manifest has " + std::to_string(total) + " chunks, this rank's " + std::to_string(total_chunks));
  }
  if (in.ok() && count > total_chunks) in.Fail("more needs than chunks");
  if (in.ok()) out->chunks.reserve(count);
  for (uint64_t i = 0; in.ok() && i < count; ++i) {
    const uint64_t delta = in.Varint();
    const ChunkOrdinal prev = i == 0 ? 0 : out->chunks.back();
    // Overflow-safe: c = prev + 1 + delta must stay below total_chunks.
    if (in.ok() && (i == 0 ? delta >= total_chunks : delta >= total_chunks - prev - 1)) {
      in.Fail("chunk ordinal out of range");
    }
    if (in.ok()) out->chunks.push_back(i == 0 ? delta : prev + 1 + delta);
  }
  return in.Finish();
}

void PutReadOnceRecord(wire::Writer* w, ChunkOrdinal chunk, std::string_view record) {
  w->U64(chunk).U8(kRecord).Bytes(record);
}

void PutReadOnceUnavailable(wire::Writer* w, ChunkOrdinal chunk) { w->U64(chunk).U8(kUnavailable); }

bool GetReadOnceEntry(wire::Reader* in, ChunkOrdinal expected, std::string_view* record) {
  const uint64_t chunk = in->U64();
  const uint8_t kind = in->U8();
  if (in->ok() && chunk != expected) {
    in->Fail("chunk " + std::to_string(chunk) + " where the schedule has chunk " + std::to_string(expected));
  }
  if (in->ok() && kind != kRecord && kind != kUnavailable) in->Fail("unknown entry kind " + std::to_string(kind));
  if (!in->ok() || kind != kRecord) return false;
  *record = in->Bytes();
  return in->ok();
}

}  // namespace dcp::query
