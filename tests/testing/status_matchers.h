// Copyright (c) dcp authors.
//
// Test helpers for dcp::Status: REQUIRE_OK(expr) and a Catch2 matcher that
// checks the exact code and a message fragment:
//
//   REQUIRE_THAT(store->Put(1, sd), StatusIs(dcp::StatusCode::kInvalidArgument, "overlap"));

#ifndef DCP_TESTS_TESTING_STATUS_MATCHERS_H_
#define DCP_TESTS_TESTING_STATUS_MATCHERS_H_

#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>

#include "dcp/status.h"

namespace dcp::testing {

class StatusIsMatcher : public Catch::MatcherBase<Status> {
 public:
  StatusIsMatcher(StatusCode code, std::string fragment) : code_(code), fragment_(std::move(fragment)) {}
  bool match(const Status& s) const override {
    return s.code() == code_ && s.message().find(fragment_) != std::string::npos;
  }
  std::string describe() const override {
    return "has code '" + std::string(StatusCodeName(code_)) + "' and a message containing \"" + fragment_ + "\"";
  }

 private:
  StatusCode code_;
  std::string fragment_;
};

inline StatusIsMatcher StatusIs(StatusCode code, std::string fragment = "") {
  return StatusIsMatcher(code, std::move(fragment));
}

}  // namespace dcp::testing

namespace Catch {
template <>
struct StringMaker<dcp::Status> {
  static std::string convert(const dcp::Status& s) { return s.ToString(); }
};
}  // namespace Catch

#define REQUIRE_OK(expr)                              \
  do {                                                \
    const ::dcp::Status dcp_test_status_ = (expr);    \
    INFO(dcp_test_status_.ToString());                \
    REQUIRE(dcp_test_status_.ok());                   \
  } while (0)

#define CHECK_OK(expr)                                \
  do {                                                \
    const ::dcp::Status dcp_test_status_ = (expr);    \
    INFO(dcp_test_status_.ToString());                \
    CHECK(dcp_test_status_.ok());                     \
  } while (0)

// Unwraps a Result<T> in a test: auto x = ValueOrDie(MakeX()). An error is
// thrown as std::runtime_error carrying the status, which Catch reports as
// the test's failure. No Catch macro runs, so rank bodies of
// testing::RunRanks may use it too (Catch is not thread-safe; RunRanks
// rethrows a rank's exception on the calling thread).
template <typename T>
T ValueOrDie(dcp::Result<T> r) {
  if (!r.ok()) throw std::runtime_error("ValueOrDie: " + r.status().ToString());
  return std::move(r).value();
}

#endif  // DCP_TESTS_TESTING_STATUS_MATCHERS_H_
