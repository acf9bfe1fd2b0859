// Copyright (c) dcp authors.
//
// The messages of a read-once load (read_once.h), in the wire format
// (engine/wire/wire.h).
//
// Needs (one all-gather): every rank's chunks to read, or that it failed.
//   u32 magic "DCR1" | u8 flags (1: failed) | u64 round budget |
//   u64 chunks in the sender's manifest | varint count | count varints: the
//   first ordinal, then each next one minus the previous minus one (sorted,
//   no repeats)
// A failed rank sends no ordinals.
//
// Rounds (one all-to-all each): to each peer, u8 flags (1: the sender has
// failed), then for every chunk of the round that the peer receives from the
// sender, in schedule order: u64 ordinal | u8 kind (0: record, 1: the sender
// could not read it) | for a record, its bytes.
//
// Thread safety: pure functions and values.

#ifndef DCP_ENGINE_QUERY_READ_ONCE_MESSAGES_H_
#define DCP_ENGINE_QUERY_READ_ONCE_MESSAGES_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dcp/status.h"
#include "engine/query/read_once_schedule.h"
#include "engine/wire/wire.h"

namespace dcp::query {

struct ReadOnceNeeds {
  bool failed = false;
  uint64_t budget = 0;
  std::vector<ChunkOrdinal> chunks;  // sorted, no repeats, each < total chunks
};

// REQUIRES: `chunks` sorted without repeats.
std::string EncodeReadOnceNeeds(bool failed, uint64_t budget, uint64_t total_chunks,
                                const std::vector<ChunkOrdinal>& chunks);
// Internal naming rank `from` if malformed, or if the sender's manifest has
// another chunk count than `total_chunks` (this rank's).
Status DecodeReadOnceNeeds(std::string_view bytes, int from, uint64_t total_chunks, ReadOnceNeeds* out);

constexpr uint8_t kReadOnceFailed = 1;  // flags: the sender has failed

// One entry of a round message.
// At most this many bytes besides the record (chunk, kind, length).
constexpr size_t kReadOnceEntryBytes = 8 + 1 + 10;
void PutReadOnceRecord(wire::Writer* w, ChunkOrdinal chunk, std::string_view record);
void PutReadOnceUnavailable(wire::Writer* w, ChunkOrdinal chunk);
// Reads the next entry, which must be of chunk `expected`: `*record` is set
// (a view into the message) and true returned for a record; false for an
// unavailable one or on a malformed message (`in` then fails).
bool GetReadOnceEntry(wire::Reader* in, ChunkOrdinal expected, std::string_view* record);

}  // namespace dcp::query

#endif  // DCP_ENGINE_QUERY_READ_ONCE_MESSAGES_H_
