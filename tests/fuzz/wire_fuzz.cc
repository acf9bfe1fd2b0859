// Copyright (c) dcp authors.
//
// Fuzz target: every message in the wire format (engine/wire/wire.h) as a
// rank receives it from a peer it cannot trust to be well-formed. The first
// input byte picks the decoder:
//   0  the Reader itself: the next byte is the number of reads, the following
//      bytes pick each read (u8, u32, u64, varint, bytes, status, count, rest)
//   1  a status          2  a list of u64      3  a list of byte strings
//   4  a result (status and payload: manifest and maintenance broadcasts)
//   5  a commit message  6  a key-check report 7  a key-check verdict
//   8  read-once needs (the next two bytes: this rank's chunk count)
//   9  a read-once round message (the next byte: how many entries to read)
// Invariants: no crash, no allocation beyond the input's size; a failed
// Reader returns zeros and empty views; whatever decodes re-encodes to bytes
// that decode to the same value.

#include <string>
#include <vector>

#include "engine/protocol/commit.h"
#include "engine/protocol/strict_keys.h"
#include "engine/query/read_once_messages.h"
#include "engine/wire/wire.h"
#include "tests/fuzz/fuzz_check.h"

using namespace dcp;

namespace {

bool SameStatus(const Status& a, const Status& b) { return a.code() == b.code() && a.message() == b.message(); }

void FuzzReader(std::string_view in) {
  if (in.size() < 1) return;
  const size_t reads = static_cast<uint8_t>(in[0]);
  in.remove_prefix(1);
  const std::string_view ops = in.substr(0, std::min(reads, in.size()));
  in.remove_prefix(ops.size());
  wire::Reader r(in, "fuzzed message");
  for (char op : ops) {
    const bool was_ok = r.ok();
    switch (static_cast<uint8_t>(op) % 8) {
      case 0: FUZZ_CHECK(r.U8() == 0 || r.ok()); break;
      case 1: FUZZ_CHECK(r.U32() == 0 || r.ok()); break;
      case 2: FUZZ_CHECK(r.U64() == 0 || r.ok()); break;
      case 3: FUZZ_CHECK(r.Varint() == 0 || r.ok()); break;
      case 4: {
        const std::string_view b = r.Bytes();
        FUZZ_CHECK(b.empty() || r.ok());
        FUZZ_CHECK(b.size() <= in.size());
        break;
      }
      case 5: FUZZ_CHECK(r.GetStatus().ok() || r.ok()); break;
      case 6: {
        const size_t left = r.left();
        const uint64_t n = r.Count(1 + static_cast<uint8_t>(op) / 8);
        FUZZ_CHECK(n <= left);
        break;
      }
      case 7: FUZZ_CHECK(r.Rest().empty() || r.ok()); break;
    }
    if (!was_ok) FUZZ_CHECK(!r.ok());  // failures stick
  }
  const Status s = r.Finish();
  FUZZ_CHECK(s.ok() == (r.ok() && r.left() == 0));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  std::string_view rest = fuzz::Bytes(data + 1, size - 1);
  switch (mode % 10) {
    case 0:
      FuzzReader(rest);
      break;
    case 1: {
      wire::Reader r(rest, "status");
      const Status s = r.GetStatus();
      if (r.Finish().ok()) {
        const std::string again = wire::Writer().PutStatus(s).Finish();
        wire::Reader r2(again, "status");
        FUZZ_CHECK(SameStatus(r2.GetStatus(), s) && r2.Finish().ok());
      }
      break;
    }
    case 2: {
      auto v = wire::DecodeU64List(rest, "steps");
      if (v.ok()) {
        FUZZ_CHECK(v->size() <= rest.size());
        auto again = wire::DecodeU64List(wire::EncodeU64List(*v), "steps");
        FUZZ_CHECK(again.ok() && *again == *v);
      }
      break;
    }
    case 3: {
      auto v = wire::DecodeStringList(rest, "keys");
      if (v.ok()) {
        auto again = wire::DecodeStringList(wire::EncodeStringList(*v), "keys");
        FUZZ_CHECK(again.ok() && *again == *v);
      }
      break;
    }
    case 4: {
      auto v = wire::DecodeResult(rest, "result");
      if (v.ok()) {
        auto again = wire::DecodeResult(wire::EncodeResult(Status::OK(), *v), "result");
        FUZZ_CHECK(again.ok() && *again == *v);
      }
      break;
    }
    case 5: {
      Status s;
      std::string_view fragment;
      if (protocol::DecodeCommitMessage(rest, 2, &s, &fragment).ok()) {
        Status s2;
        std::string_view f2;
        const std::string again = protocol::EncodeCommitMessage(s, fragment);
        FUZZ_CHECK(protocol::DecodeCommitMessage(again, 2, &s2, &f2).ok() && SameStatus(s, s2) && f2 == fragment);
      }
      break;
    }
    case 6: {
      protocol::KeyCheckReport r;
      if (protocol::DecodeKeyCheckReport(rest, 4, &r).ok()) {
        FUZZ_CHECK(r.listed.size() <= protocol::kListedKeys);
        protocol::KeyCheckReport r2;
        FUZZ_CHECK(protocol::DecodeKeyCheckReport(protocol::EncodeKeyCheckReport(r), 4, &r2).ok());
        FUZZ_CHECK(SameStatus(r.local, r2.local) && r.has_bitmap == r2.has_bitmap && r.bitmap == r2.bitmap &&
                   r.unexpected == r2.unexpected && r.listed == r2.listed);
      }
      break;
    }
    case 7: {
      Status verdict;
      std::string bitmap;
      if (protocol::DecodeKeyCheckVerdict(rest, &verdict, &bitmap).ok()) {
        Status v2;
        std::string b2;
        FUZZ_CHECK(protocol::DecodeKeyCheckVerdict(protocol::EncodeKeyCheckVerdict(verdict, bitmap), &v2, &b2).ok());
        FUZZ_CHECK(SameStatus(verdict, v2) && bitmap == b2);
      }
      break;
    }
    case 8: {
      if (rest.size() < 2) return 0;
      const uint64_t total = static_cast<uint8_t>(rest[0]) | (static_cast<uint64_t>(static_cast<uint8_t>(rest[1])) << 8);
      rest.remove_prefix(2);
      query::ReadOnceNeeds needs;
      if (query::DecodeReadOnceNeeds(rest, 1, total, &needs).ok()) {
        for (size_t i = 0; i < needs.chunks.size(); ++i) {
          FUZZ_CHECK(needs.chunks[i] < total);
          FUZZ_CHECK(i == 0 || needs.chunks[i] > needs.chunks[i - 1]);
        }
        query::ReadOnceNeeds again;
        FUZZ_CHECK(query::DecodeReadOnceNeeds(
                       query::EncodeReadOnceNeeds(needs.failed, needs.budget, needs.failed ? 0 : total, needs.chunks),
                       1, total, &again)
                       .ok());
        FUZZ_CHECK(again.failed == needs.failed && again.budget == needs.budget && again.chunks == needs.chunks);
      }
      break;
    }
    case 9: {
      if (rest.empty()) return 0;
      const size_t entries = static_cast<uint8_t>(rest[0]);
      rest.remove_prefix(1);
      wire::Reader in(rest, "read-once message from rank 1 in round 0");
      in.U8();  // flags
      for (size_t i = 0; i < entries && in.ok(); ++i) {
        std::string_view record;
        if (query::GetReadOnceEntry(&in, i, &record)) FUZZ_CHECK(record.size() <= rest.size());
      }
      (void)in.Finish();
      break;
    }
  }
  return 0;
}
