// Copyright (c) dcp authors.

#include "engine/base/buffer.h"

#include <catch2/catch.hpp>

#include <cstring>

namespace dcp::base {
namespace {

TEST_CASE("Buffer keeps its bytes across growth and reuses capacity", "[base]") {
  Buffer b;
  CHECK(b.size() == 0);
  b.Resize(10);
  std::memcpy(b.data(), "0123456789", 10);
  b.Resize(5 << 20);  // crosses the huge-page threshold
  CHECK(std::memcmp(b.data(), "0123456789", 10) == 0);
  CHECK(b.capacity() >= (5u << 20));
  const char* p = b.data();
  b.Resize(3);
  CHECK(b.data() == p);
  CHECK(b.view() == "012");
  b.Resize(4 << 20);  // within capacity: same memory
  CHECK(b.data() == p);
  Buffer moved = std::move(b);
  CHECK(moved.data() == p);
}

}  // namespace
}  // namespace dcp::base
