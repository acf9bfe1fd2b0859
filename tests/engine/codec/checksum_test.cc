// Copyright (c) dcp authors.
// Tests of engine/codec/checksum.cc: the xxHash wrapper.

#include "engine/codec/checksum.h"

#include <catch2/catch.hpp>

#include <set>
#include <string>

namespace dcp::codec {
namespace {

TEST_CASE("Checksums are XXH3 (known vectors of the empty input)", "[codec][checksum]") {
  CHECK(Checksum64("", 0) == 0x2D06800538D394C2ULL);
  const Hash128 h = ContentHash128("", 0);
  CHECK(h.hi == 0x99AA06D3014798D8ULL);
  CHECK(h.lo == 0x6001C324468D497FULL);
  CHECK(h.ToHex() == "99aa06d3014798d86001c324468d497f");
}

TEST_CASE("Hash128::ToHex is 32 lowercase digits, high half first", "[codec][checksum]") {
  CHECK(Hash128{0, 0}.ToHex() == std::string(32, '0'));
  CHECK(Hash128{0x1, 0xABCDEF}.ToHex() == "0000000000abcdef0000000000000001");
  CHECK(Hash128{~0ULL, ~0ULL}.ToHex() == std::string(32, 'f'));
}

TEST_CASE("Hashes depend on every byte and on the length", "[codec][checksum]") {
  std::string data(1000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 31);
  const Hash128 base = ContentHash128(data.data(), data.size());
  const uint64_t base64 = Checksum64(data.data(), data.size());
  CHECK(ContentHash128(data.data(), data.size()) == base);  // deterministic
  std::set<std::string> seen = {base.ToHex()};
  for (size_t i = 0; i < data.size(); i += 7) {
    std::string d = data;
    d[i] ^= 1;
    const Hash128 h = ContentHash128(d.data(), d.size());
    CHECK(h != base);
    CHECK(Checksum64(d.data(), d.size()) != base64);
    CHECK(seen.insert(h.ToHex()).second);
  }
  CHECK(ContentHash128(data.data(), data.size() - 1) != base);
  CHECK(Checksum64(data.data(), data.size() - 1) != base64);
}

}  // namespace
}  // namespace dcp::codec
