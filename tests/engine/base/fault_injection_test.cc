// Copyright (c) dcp authors.

#include "engine/base/fault_injection.h"

#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

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

namespace dcp::base {
namespace {

TEST_CASE("a crash point kills the process like kill -9, on the given hit", "[base]") {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ArmCrashPoint("boom", /*hit=*/3, /*rank=*/1);
    for (int i = 0; i < 10; ++i) {
      (void)CheckFaultPoint("boom", 0);  // other ranks pass
      (void)CheckFaultPoint("boom", 1);
      if (i == 1) std::_Exit(0);  // reached only if the third hit did not kill
    }
    std::_Exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  // Hits 1 and 2 pass; the loop exits after its second round unless killed
  // earlier, so the third hit is in round 3: never reached. Check both sides.
  CHECK(WIFEXITED(status));
  const pid_t pid2 = ::fork();
  REQUIRE(pid2 >= 0);
  if (pid2 == 0) {
    ArmCrashPoint("boom", 2, 1);
    (void)CheckFaultPoint("boom", 1);
    (void)CheckFaultPoint("boom", 1);  // dies here
    std::_Exit(0);
  }
  REQUIRE(::waitpid(pid2, &status, 0) == pid2);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGKILL);
}

}  // namespace
}  // namespace dcp::base
