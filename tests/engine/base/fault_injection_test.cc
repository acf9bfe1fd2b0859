// Copyright (c) dcp authors.

#include "engine/base/fault_injection.h"

#include <catch2/catch.hpp>

namespace dcp::base {
namespace {

TEST_CASE("fault points fire only where and for whom they are armed", "[base]") {
  DisarmAllFaultPoints();
  CHECK(CheckFaultPoint("a", 0).ok());
  ArmFaultPoint("a", 1);
  CHECK(CheckFaultPoint("a", 0).ok());
  const Status s = CheckFaultPoint("a", 1);
  CHECK(s.code() == StatusCode::kIOError);
  CHECK(s.message() == "injected fault at 'a' on rank 1");
  CHECK(CheckFaultPoint("b", 1).ok());
  ArmFaultPoint("b");
  CHECK_FALSE(CheckFaultPoint("b", 3).ok());
  DisarmAllFaultPoints();
  CHECK(CheckFaultPoint("a", 1).ok());
  CHECK(CheckFaultPoint("b", 3).ok());
}

}  // namespace
}  // namespace dcp::base
