// Copyright (c) dcp authors.
// Tests of engine/wire/wire.cc: the one encoding of inter-rank messages.

#include "engine/wire/wire.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "tests/testing/status_matchers.h"

namespace dcp::wire {
namespace {

using dcp::testing::StatusIs;

const std::vector<StatusCode> kAllCodes = {
    StatusCode::kOk,       StatusCode::kInvalidArgument, StatusCode::kNotFound,
    StatusCode::kAlreadyExists, StatusCode::kFailedPrecondition, StatusCode::kDataLoss,
    StatusCode::kIOError,  StatusCode::kInternal,        StatusCode::kUnimplemented,
};

// A message with one field of every kind.
std::string Sample() {
  Writer w;
  w.U8(0xfe).U32(0x01020304).U64(0x0102030405060708ULL).Varint(300).Bytes(std::string("a\0b", 3));
  w.PutStatus(Status::DataLoss("flipped")).PutStatus(Status::OK()).Raw("tail");
  return w.Finish();
}

TEST_CASE("Every field round-trips, in a fixed little-endian layout", "[wire]") {
  const std::string m = Sample();
  // The layout is the same on every host: spot-check the bytes.
  REQUIRE(m.size() == 1 + 4 + 8 + 2 + 4 + (1 + 1 + 7) + 1 + 4);
  CHECK(static_cast<uint8_t>(m[0]) == 0xfe);
  CHECK(m.substr(1, 4) == std::string("\x04\x03\x02\x01", 4));
  CHECK(m.substr(5, 8) == std::string("\x08\x07\x06\x05\x04\x03\x02\x01", 8));
  CHECK(m.substr(13, 2) == std::string("\xac\x02", 2));

  Reader in(m, "sample");
  CHECK(in.U8() == 0xfe);
  CHECK(in.U32() == 0x01020304u);
  CHECK(in.U64() == 0x0102030405060708ULL);
  CHECK(in.Varint() == 300);
  CHECK(in.Bytes() == std::string_view("a\0b", 3));
  CHECK(in.GetStatus() == Status::DataLoss("flipped"));
  CHECK(in.GetStatus().ok());
  CHECK(in.Rest() == "tail");
  CHECK_OK(in.Finish());
}

TEST_CASE("Varints cover the whole u64 range", "[wire]") {
  for (uint64_t v : {uint64_t{0}, uint64_t{1}, uint64_t{127}, uint64_t{128}, uint64_t{1} << 35,
                     std::numeric_limits<uint64_t>::max() - 1, std::numeric_limits<uint64_t>::max()}) {
    Writer w;
    w.Varint(v);
    const std::string m = w.Finish();
    Reader in(m, "varint");
    CHECK(in.Varint() == v);
    CHECK_OK(in.Finish());
  }
  // Eleven bytes, or a tenth byte carrying more than bit 63: refused.
  const std::string eleven_bytes = std::string(10, '\xff') + '\x01';
  Reader eleven(eleven_bytes, "varint");
  eleven.Varint();
  CHECK_THAT(eleven.Finish(), StatusIs(StatusCode::kInternal, "malformed varint: varint longer than 64 bits"));
  const std::string big_bytes = std::string(9, '\xff') + '\x02';
  Reader big(big_bytes, "varint");
  big.Varint();
  CHECK_FALSE(big.ok());
}

TEST_CASE("Statuses of every code round-trip; OK carries no message", "[wire]") {
  for (StatusCode code : kAllCodes) {
    for (const std::string& msg : {std::string(""), std::string("nul\0inside", 10), std::string(100000, 'm')}) {
      const Status s(code, msg);
      Writer w;
      w.PutStatus(s);
      const std::string m = w.Finish();
      Reader in(m, "status");
      const Status back = in.GetStatus();
      REQUIRE_OK(in.Finish());
      CHECK(back == s);
      if (code == StatusCode::kOk) CHECK(m.size() == 1);
    }
  }
  for (uint64_t code : {uint64_t{9}, uint64_t{1000}, std::numeric_limits<uint64_t>::max()}) {
    Writer w;
    w.Varint(code).Bytes("text");
    const std::string m = w.Finish();
    Reader in(m, "status message from rank 2");
    CHECK(in.GetStatus().ok());
    CHECK_THAT(in.Finish(), StatusIs(StatusCode::kInternal, "malformed status message from rank 2: unknown status code " +
                                                                std::to_string(code)));
  }
}

TEST_CASE("Every truncation and every trailing byte is refused, naming the message", "[wire]") {
  const std::string m = Sample();
  auto read_all = [](std::string_view bytes) {
    Reader in(bytes, "commit message from rank 7");
    in.U8();
    in.U32();
    in.U64();
    in.Varint();
    in.Bytes();
    in.GetStatus();
    in.GetStatus();
    in.Rest();
    return in.Finish();
  };
  REQUIRE_OK(read_all(m));
  // The last field is Rest, so only cuts inside the fixed fields can fail...
  for (size_t cut = 0; cut < m.size() - 4; ++cut) {
    INFO("cut at " << cut);
    CHECK_THAT(read_all(std::string_view(m).substr(0, cut)),
               StatusIs(StatusCode::kInternal, "malformed commit message from rank 7"));
  }
  // ...and a reader that expects nothing more refuses what is left.
  Reader in(m, "status message from rank 1");
  in.U8();
  CHECK_THAT(in.Finish(), StatusIs(StatusCode::kInternal, "trailing bytes"));
}

TEST_CASE("A failed reader stays failed and reads zeros; the first failure is reported", "[wire]") {
  const std::string bytes("\x05", 1);
  Reader in(bytes, "m");
  CHECK(in.Bytes().empty());  // 5 bytes announced, none there
  CHECK_FALSE(in.ok());
  CHECK(in.U64() == 0);
  in.Fail("later");
  CHECK_THAT(in.Finish(), StatusIs(StatusCode::kInternal, "malformed m: byte string of 5 bytes at byte 1 overruns"));
}

TEST_CASE("Hostile counts never allocate", "[wire]") {
  Writer w;
  w.Varint(std::numeric_limits<uint64_t>::max());
  const std::string m = w.Finish();
  auto list = DecodeU64List(m, "list of steps from rank 0");
  CHECK_THAT(list.status(), StatusIs(StatusCode::kInternal, "malformed list of steps from rank 0: count"));
  auto keys = DecodeStringList(m, "keys");
  CHECK_THAT(keys.status(), StatusIs(StatusCode::kInternal, "exceeds what the 0 bytes left can hold"));
  const std::string three("\x03\x01\x02", 3);
  Reader in(three, "m");
  CHECK(in.Count(1) == 0);  // 3 elements of >= 1 byte do not fit in 2 bytes
  CHECK_FALSE(in.ok());
}

TEST_CASE("Lists and results round-trip", "[wire]") {
  const std::vector<uint64_t> steps = {0, 1, 1000, std::numeric_limits<uint64_t>::max()};
  auto s = DecodeU64List(EncodeU64List(steps), "steps");
  REQUIRE_OK(s.status());
  CHECK(*s == steps);
  CHECK(DecodeU64List(EncodeU64List({}), "steps")->empty());
  // A partial trailing element is an error (the old step list ignored it).
  CHECK_FALSE(DecodeU64List(EncodeU64List(steps) + "\x80", "steps").ok());

  const std::vector<std::string> keys = {"", "a", std::string("nul\0", 4), std::string(1000, 'k')};
  auto k = DecodeStringList(EncodeStringList(keys), "keys");
  REQUIRE_OK(k.status());
  CHECK(*k == keys);

  auto ok = DecodeResult(EncodeResult(Status::OK(), "payload"), "result");
  REQUIRE_OK(ok.status());
  CHECK(*ok == "payload");
  CHECK(DecodeResult(EncodeResult(Status::NotFound("gone"), "ignored"), "result").status() ==
        Status::NotFound("gone"));
  CHECK_THAT(DecodeResult("", "result broadcast by rank 0").status(),
             StatusIs(StatusCode::kInternal, "malformed result broadcast by rank 0: truncated varint"));
  // A failure carries no payload: bytes after it are trailing.
  CHECK_THAT(DecodeResult(EncodeResult(Status::NotFound("gone"), "") + "x", "result").status(),
             StatusIs(StatusCode::kInternal, "trailing bytes"));
}

}  // namespace
}  // namespace dcp::wire
