// Copyright (c) dcp authors.
//
// RunChild: runs a child process for the crash tests and reports how it
// ended. The child gets this process's environment without DCP_CRASH_POINTS
// (so a test arms crash points only where it means to) plus `env_add`, and
// its stdout goes to /dev/null. With kill_after_ms >= 0 it is sent SIGKILL
// after that many milliseconds (if it is still running).
//
// A failure to start or to wait for the child fails the calling test (Catch2
// REQUIRE): call it from the test's own thread.

#ifndef DCP_TESTS_CRASH_CHILD_PROCESS_H_
#define DCP_TESTS_CRASH_CHILD_PROCESS_H_

#include <string>
#include <vector>

namespace dcp::testing {

struct ChildOutcome {
  bool killed = false;  // ended by SIGKILL
  int exit_code = -1;   // its exit status if it exited, else -1
};

ChildOutcome RunChild(const std::vector<std::string>& argv, const std::vector<std::string>& env_add = {},
                      int kill_after_ms = -1);

}  // namespace dcp::testing

#endif  // DCP_TESTS_CRASH_CHILD_PROCESS_H_
