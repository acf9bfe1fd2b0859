// Copyright (c) dcp authors.
//
// Status and Result<T>: the one error model of dcp.
//
// Every fallible call returns a Status (or a Result<T>, which holds either a
// value or a non-OK Status). Both are [[nodiscard]]. The codes are few on
// purpose:
//
//   kInvalidArgument     the caller passed something wrong (bad shape, unknown
//                        dtype, overlapping shards, a region outside a tensor).
//   kNotFound            a step, tensor key, object or store that does not exist.
//   kAlreadyExists       a step that is already committed (and overwrite is off).
//   kFailedPrecondition  the store is in the wrong state for the call
//                        (read-only store asked to write, not a dcp store).
//   kDataLoss            persisted bytes are corrupt or missing: checksum
//                        mismatch, truncated or garbage manifest, missing record.
//   kIOError             the operating system or an underlying library failed.
//   kInternal            a bug in dcp.
//   kUnimplemented       a feature that is not there (yet).
//
// Messages name what is wrong: the tensor key, offset, rank and path. Errors of
// collective calls carry the rank that failed first, and are the same on every
// rank.
//
// Thread safety: Status and Result are values; distinct objects may be used
// from distinct threads without synchronisation.

#ifndef DCP_STATUS_H_
#define DCP_STATUS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace dcp {

// DO NOT CHANGE THESE VALUES: they are exchanged between ranks.
enum class StatusCode : int32_t {
  kOk = 0,
  kInvalidArgument = 1,
  kNotFound = 2,
  kAlreadyExists = 3,
  kFailedPrecondition = 4,
  kDataLoss = 5,
  kIOError = 6,
  kInternal = 7,
  kUnimplemented = 8,
};

// "invalid argument", "data loss", ...; "unknown" for values outside the enum.
std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  // OK.
  Status() = default;
  Status(StatusCode code, std::string message);

  static Status OK() { return Status(); }
  static Status InvalidArgument(std::string msg) { return {StatusCode::kInvalidArgument, std::move(msg)}; }
  static Status NotFound(std::string msg) { return {StatusCode::kNotFound, std::move(msg)}; }
  static Status AlreadyExists(std::string msg) { return {StatusCode::kAlreadyExists, std::move(msg)}; }
  static Status FailedPrecondition(std::string msg) {
    return {StatusCode::kFailedPrecondition, std::move(msg)};
  }
  static Status DataLoss(std::string msg) { return {StatusCode::kDataLoss, std::move(msg)}; }
  static Status IOError(std::string msg) { return {StatusCode::kIOError, std::move(msg)}; }
  static Status Internal(std::string msg) { return {StatusCode::kInternal, std::move(msg)}; }
  static Status Unimplemented(std::string msg) { return {StatusCode::kUnimplemented, std::move(msg)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  bool IsInvalidArgument() const { return code_ == StatusCode::kInvalidArgument; }
  bool IsNotFound() const { return code_ == StatusCode::kNotFound; }
  bool IsDataLoss() const { return code_ == StatusCode::kDataLoss; }

  // Returns a copy whose message is "<context>: <message>". OK stays OK.
  Status Annotate(std::string_view context) const;

  // "OK" or "<code name>: <message>".
  std::string ToString() const;

  // Explicitly drops the status (documents an intentional ignore).
  void IgnoreError() const {}

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Holds either a T or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  // REQUIRES: !status.ok()
  Result(Status status) : v_(std::move(status)) {  // NOLINT: implicit by design
    if (std::get<Status>(v_).ok()) v_ = Status::Internal("Result constructed from OK status");
  }
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design

  bool ok() const { return std::holds_alternative<T>(v_); }
  // OK if a value is held.
  Status status() const { return ok() ? Status() : std::get<Status>(v_); }

  // REQUIRES: ok()
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace dcp

#define DCP_STATUS_CONCAT_INNER_(a, b) a##b
#define DCP_STATUS_CONCAT_(a, b) DCP_STATUS_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` (a Status) is not OK.
#define DCP_RETURN_IF_ERROR(expr)                  \
  do {                                             \
    ::dcp::Status dcp_status_ = (expr);            \
    if (!dcp_status_.ok()) return dcp_status_;     \
  } while (0)

// DCP_ASSIGN_OR_RETURN(auto x, MakeX()); returns the error if MakeX() failed.
#define DCP_ASSIGN_OR_RETURN(lhs, expr) \
  DCP_ASSIGN_OR_RETURN_IMPL_(DCP_STATUS_CONCAT_(dcp_result_, __LINE__), lhs, expr)
#define DCP_ASSIGN_OR_RETURN_IMPL_(result, lhs, expr) \
  auto result = (expr);                               \
  if (!result.ok()) return result.status();           \
  lhs = std::move(result).value()

#endif  // DCP_STATUS_H_
