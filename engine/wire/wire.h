// Copyright (c) dcp authors.
//
// The wire format of everything ranks send each other.
//
// Every message that goes through a Communicator is laid out by a Writer and
// read back by a Reader; no other code encodes bytes for the communicator
// (FlatBuffers payloads such as declarations and manifests travel inside as
// byte strings). The encoding, the same on every host:
//   u8, u32, u64   fixed width, little-endian
//   varint         unsigned LEB128, at most 10 bytes
//   bytes          varint length, then the bytes
//   status         varint code; a non-OK code is followed by its message as bytes
// A Reader checks every read against what is left. The first failure sticks
// (later reads return zeros and empty views), so a decoder reads all its
// fields and asks once: Finish() is OK only if every read succeeded and the
// message was consumed exactly; otherwise it is Internal naming the message
// ("malformed commit message from rank 3: truncated at byte 17 of 20").
//
// Counts that size an allocation are read with Count(min_bytes), which fails
// when the bytes left could not hold that many elements: a hostile count
// never allocates.
//
// Thread safety: Writer and Reader are values, used by one thread.

#ifndef DCP_ENGINE_WIRE_WIRE_H_
#define DCP_ENGINE_WIRE_WIRE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dcp/status.h"

namespace dcp::wire {

class Writer {
 public:
  Writer() = default;
  // Writes into `buffer`'s memory: cleared, its capacity kept (a message
  // buffer reused from one exchange round to the next).
  explicit Writer(std::string buffer) : out_(std::move(buffer)) { out_.clear(); }

  Writer& U8(uint8_t v);
  Writer& U32(uint32_t v);
  Writer& U64(uint64_t v);
  Writer& Varint(uint64_t v);
  Writer& Bytes(std::string_view b);  // length-prefixed
  Writer& Raw(std::string_view b);    // as is: only as a message's last field
  Writer& PutStatus(const Status& s);
  // Room for `bytes` in all, so that a large message is not copied as it grows.
  Writer& Reserve(size_t bytes) {
    out_.reserve(bytes);
    return *this;
  }

  size_t size() const { return out_.size(); }
  // The message; the writer is left empty.
  std::string Finish() {
    std::string out;
    out.swap(out_);
    return out;
  }

 private:
  Writer& Fixed(uint64_t v, int bytes);  // little-endian
  std::string out_;
};

class Reader {
 public:
  // `what` names the message in errors ("commit message from rank 3").
  // The reader views `bytes`: they must outlive it (a temporary string is
  // refused at compile time).
  Reader(std::string_view bytes, std::string what);
  Reader(std::string&& bytes, std::string what) = delete;

  uint8_t U8();
  uint32_t U32();
  uint64_t U64();
  uint64_t Varint();
  std::string_view Bytes();
  std::string_view Rest();  // everything left (a Raw last field)
  // A status sent with PutStatus. An unknown code fails the reader.
  Status GetStatus();
  // A varint count of elements of at least `min_bytes` each (>= 1); fails if
  // more than the bytes left could hold.
  uint64_t Count(size_t min_bytes = 1);

  // Marks the message malformed for a reason the caller checked ("step list
  // not sorted"); the first failure wins.
  void Fail(std::string why);
  bool ok() const { return error_.empty(); }
  size_t left() const { return data_.size() - pos_; }

  // OK if every read succeeded and nothing is left; else Internal
  // "malformed <what>: <first failure>".
  Status Finish() const;

 private:
  bool Take(size_t n, const char* field);
  uint64_t Fixed(int bytes, const char* field);  // little-endian

  std::string_view data_;
  size_t pos_ = 0;
  std::string what_;
  std::string error_;
};

// Common messages.
// A list of u64 (steps): count, then each as a varint.
std::string EncodeU64List(const std::vector<uint64_t>& values);
Result<std::vector<uint64_t>> DecodeU64List(std::string_view bytes, const std::string& what);
// A list of byte strings (keys): count, then each as bytes.
std::string EncodeStringList(const std::vector<std::string>& values);
Result<std::vector<std::string>> DecodeStringList(std::string_view bytes, const std::string& what);
// A status and, if it is OK, a payload: what a rank running something for
// the others broadcasts (coord::BroadcastResult).
std::string EncodeResult(const Status& status, std::string_view payload);
Result<std::string> DecodeResult(std::string_view bytes, const std::string& what);

}  // namespace dcp::wire

#endif  // DCP_ENGINE_WIRE_WIRE_H_
