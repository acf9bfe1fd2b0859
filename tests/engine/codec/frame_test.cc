// Copyright (c) dcp authors.
// Tests of engine/codec/frame.cc: framed blobs and every kind of corruption.

#include "engine/codec/frame.h"

#include <catch2/catch.hpp>

#include <cstring>
#include <string>

#include "tests/testing/status_matchers.h"

namespace dcp::codec {
namespace {

using dcp::testing::StatusIs;

constexpr char kMagic[] = "DCPTESTF";
constexpr char kWhat[] = "manifest file '/ckpt/step-7'";

TEST_CASE("FrameBlob layout and round trip", "[codec][frame]") {
  const std::string payload("hello\0world", 11);
  const std::string framed = FrameBlob(kMagic, 42, payload);
  REQUIRE(framed.size() == kFrameHeaderSize + payload.size());
  CHECK(framed.substr(0, 8) == kMagic);
  uint32_t frame_version = 0, payload_version = 0;
  uint64_t size = 0;
  std::memcpy(&frame_version, framed.data() + 8, 4);
  std::memcpy(&payload_version, framed.data() + 12, 4);
  std::memcpy(&size, framed.data() + 16, 8);
  CHECK(frame_version == 1);
  CHECK(payload_version == 42);
  CHECK(size == payload.size());

  const Unframed u = ValueOrDie(UnframeBlob(framed, kMagic, kWhat));
  CHECK(u.payload_version == 42);
  CHECK(u.payload == payload);
  CHECK(u.payload.data() == framed.data() + kFrameHeaderSize);  // a view, not a copy
}

TEST_CASE("FrameBlob of an empty payload", "[codec][frame]") {
  const std::string framed = FrameBlob(kMagic, 0, "");
  CHECK(framed.size() == kFrameHeaderSize);
  const Unframed u = ValueOrDie(UnframeBlob(framed, kMagic, kWhat));
  CHECK(u.payload.empty());
  CHECK(u.payload_version == 0);
}

TEST_CASE("UnframeBlob refuses every corruption with DataLoss naming what", "[codec][frame]") {
  std::string payload(300, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 7 + 3);
  const std::string framed = FrameBlob(kMagic, 1, payload);

  SECTION("wrong magic") {
    CHECK_THAT(UnframeBlob(framed, "DCPOTHER", kWhat).status(),
               StatusIs(StatusCode::kDataLoss, std::string(kWhat) + " does not start with the magic \"DCPOTHER\""));
    for (size_t i = 0; i < 8; ++i) {
      std::string bad = framed;
      bad[i] ^= 0x20;
      CHECK_THAT(UnframeBlob(bad, kMagic, kWhat).status(),
                 StatusIs(StatusCode::kDataLoss, std::string(kWhat) + " does not start with the magic"));
    }
  }
  SECTION("frame version") {
    for (size_t i = 8; i < 12; ++i) {
      std::string bad = framed;
      bad[i] ^= 0x04;
      CHECK_THAT(UnframeBlob(bad, kMagic, kWhat).status(),
                 StatusIs(StatusCode::kDataLoss, std::string(kWhat) + " has unsupported frame version"));
    }
    std::string v2 = framed;
    const uint32_t two = 2;
    std::memcpy(v2.data() + 8, &two, 4);
    CHECK_THAT(UnframeBlob(v2, kMagic, kWhat).status(),
               StatusIs(StatusCode::kDataLoss, std::string(kWhat) + " has unsupported frame version 2"));
  }
  SECTION("payload version field") {
    for (size_t i = 12; i < 16; ++i) {
      std::string bad = framed;
      bad[i] ^= 0x02;
      CHECK_THAT(UnframeBlob(bad, kMagic, kWhat).status(),
                 StatusIs(StatusCode::kDataLoss, std::string(kWhat) + " checksum mismatch"));
    }
  }
  SECTION("size field") {
    for (size_t i = 16; i < 24; ++i) {
      std::string bad = framed;
      bad[i] ^= 0x01;
      CHECK_THAT(UnframeBlob(bad, kMagic, kWhat).status(),
                 StatusIs(StatusCode::kDataLoss, std::string(kWhat) + " is truncated or padded"));
    }
  }
  SECTION("checksum field") {
    for (size_t i = 24; i < 32; ++i) {
      std::string bad = framed;
      bad[i] ^= 0x80;
      CHECK_THAT(UnframeBlob(bad, kMagic, kWhat).status(),
                 StatusIs(StatusCode::kDataLoss, std::string(kWhat) + " checksum mismatch"));
    }
  }
  SECTION("payload bytes") {
    for (size_t i = kFrameHeaderSize; i < framed.size(); ++i) {
      std::string bad = framed;
      bad[i] ^= static_cast<char>(1 << (i % 8));
      CHECK_THAT(UnframeBlob(bad, kMagic, kWhat).status(),
                 StatusIs(StatusCode::kDataLoss, std::string(kWhat) + " checksum mismatch"));
    }
  }
  SECTION("truncation at every length") {
    for (size_t n = 0; n < framed.size(); ++n) {
      const std::string bad = framed.substr(0, n);
      INFO("length " << n);
      if (n < kFrameHeaderSize) {
        CHECK_THAT(UnframeBlob(bad, kMagic, kWhat).status(),
                   StatusIs(StatusCode::kDataLoss,
                            std::string(kWhat) + " is truncated (" + std::to_string(n) + " bytes)"));
      } else {
        CHECK_THAT(UnframeBlob(bad, kMagic, kWhat).status(),
                   StatusIs(StatusCode::kDataLoss,
                            std::string(kWhat) + " is truncated or padded: header says 300 payload bytes, file holds " +
                                std::to_string(n - kFrameHeaderSize)));
      }
    }
  }
  SECTION("trailing bytes") {
    CHECK_THAT(UnframeBlob(framed + "x", kMagic, kWhat).status(),
               StatusIs(StatusCode::kDataLoss, std::string(kWhat) + " is truncated or padded"));
  }
}

}  // namespace
}  // namespace dcp::codec
