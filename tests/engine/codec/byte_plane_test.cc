// Copyright (c) dcp authors.
// Tests of engine/codec/byte_plane.cc: the byte-plane transform and its inverse.

#include "engine/codec/byte_plane.h"

#include <catch2/catch.hpp>

#include <random>
#include <string>

namespace dcp::codec {
namespace {

TEST_CASE("SplitBytePlanes puts byte j of element i at j * n + i", "[codec][byte_plane]") {
  // Three 4-byte elements: bytes "a0 a1 a2 a3 b0 b1 ...".
  const std::string src = "ABCDEFGHIJKL";
  std::string planes(12, '?');
  SplitBytePlanes(src.data(), 3, 4, planes.data());
  CHECK(planes == "AEIBFJCGKDHL");
  std::string back(12, '?');
  JoinBytePlanes(planes.data(), 3, 4, back.data());
  CHECK(back == src);
}

TEST_CASE("Split and join are inverse for every element size", "[codec][byte_plane]") {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> byte(0, 255);
  for (size_t k : {size_t{1}, size_t{2}, size_t{3}, size_t{4}, size_t{5}, size_t{8}, size_t{16}}) {
    for (size_t n : {size_t{0}, size_t{1}, size_t{2}, size_t{7}, size_t{64}, size_t{1001}}) {
      std::string src(n * k, '\0');
      for (char& c : src) c = static_cast<char>(byte(rng));
      std::string planes(n * k, '?'), back(n * k, '?');
      SplitBytePlanes(src.data(), n, k, planes.data());
      for (size_t i = 0; i < n; ++i) {
        for (size_t j = 0; j < k; ++j) REQUIRE(planes[j * n + i] == src[i * k + j]);
      }
      JoinBytePlanes(planes.data(), n, k, back.data());
      INFO("k " << k << " n " << n);
      REQUIRE(back == src);
      // Join is also the left inverse: split(join(x)) == x.
      std::string again(n * k, '?');
      SplitBytePlanes(back.data(), n, k, again.data());
      REQUIRE(again == planes);
    }
  }
}

TEST_CASE("Split and join write exactly n * k bytes", "[codec][byte_plane]") {
  for (size_t k : {size_t{1}, size_t{2}, size_t{3}, size_t{4}, size_t{8}}) {
    const size_t n = 9;
    std::string src(n * k, 'x');
    std::string planes(n * k + 8, '#');
    SplitBytePlanes(src.data(), n, k, planes.data());
    CHECK(planes.substr(n * k) == std::string(8, '#'));
    std::string back(n * k + 8, '#');
    JoinBytePlanes(planes.data(), n, k, back.data());
    CHECK(back.substr(n * k) == std::string(8, '#'));
  }
}

}  // namespace
}  // namespace dcp::codec
