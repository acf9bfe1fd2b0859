// Copyright (c) dcp authors.
//
// Value: a tree of plain values, the "common state" of a checkpoint
// (iteration counters, hyper-parameters, scheduler state, RNG seeds, small
// tensors).
//
// A Value is null, a bool, an int64, a double, a UTF-8 string, a byte string,
// a list of Values, a map from string to Value (insertion-ordered, unique
// keys) or a small host tensor (dtype + shape + bytes). It is stored as a
// FlexBuffers document: plain data, never code, never pickle.
//
// Common state is saved once (rank 0's copy) and handed to every rank at load.
//
// Thread safety: a value type; const methods may be called concurrently.

#ifndef DCP_VALUE_H_
#define DCP_VALUE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dcp/types.h"

namespace dcp {

class Value {
 public:
  // DO NOT CHANGE THESE VALUES.
  enum class Kind : uint8_t {
    kNull = 0,
    kBool = 1,
    kInt = 2,
    kFloat = 3,
    kString = 4,
    kBytes = 5,
    kList = 6,
    kMap = 7,
    kTensor = 8,
  };

  Value() = default;  // null
  Value(bool b);                 // NOLINT: implicit by design
  Value(int v) : Value(static_cast<int64_t>(v)) {}  // NOLINT
  Value(int64_t v);              // NOLINT
  Value(uint32_t v) : Value(static_cast<int64_t>(v)) {}  // NOLINT
  Value(double v);               // NOLINT
  Value(const char* s);          // NOLINT: a string
  Value(std::string s);          // NOLINT: a string
  Value(std::string_view s);     // NOLINT: a string

  static Value Null() { return Value(); }
  static Value Bytes(std::string bytes);
  static Value List(std::vector<Value> items = {});
  static Value Map();
  // A small host tensor; `data` holds NumElements(shape) * DTypeSize(dtype)
  // bytes, row-major.
  static Value Tensor(DType dtype, Shape shape, std::string data);

  Kind kind() const { return kind_; }
  bool is_null() const { return kind_ == Kind::kNull; }

  // Accessors. REQUIRES: the matching kind.
  bool as_bool() const { return bool_; }
  int64_t as_int() const { return int_; }
  double as_float() const { return float_; }
  // String, bytes and tensor data.
  const std::string& as_string() const { return str_; }
  DType tensor_dtype() const { return dtype_; }
  const Shape& tensor_shape() const { return shape_; }

  // Lists and maps. size() is 0 for every other kind.
  size_t size() const { return items_.size(); }
  // REQUIRES: list or map, i < size()
  const Value& at(size_t i) const { return items_[i]; }
  Value& at(size_t i) { return items_[i]; }
  // REQUIRES: list.
  Value& Append(Value v);
  // Map keys in insertion order. REQUIRES: map.
  const std::vector<std::string>& keys() const { return keys_; }
  // Inserts or replaces. REQUIRES: map. Returns the stored value. Linear in
  // the map's size (a lookup).
  Value& Set(std::string_view key, Value v);
  // Appends an entry without looking the key up (constant time): for callers
  // that know the key is new (a decoder whose keys are checked to be
  // strictly increasing, a Python dict). REQUIRES: map; `key` not present.
  Value& AppendEntry(std::string key, Value v);
  // nullptr if absent or not a map.
  const Value* Find(std::string_view key) const;
  Value* Find(std::string_view key);

  // Deep equality. Maps compare as maps (key order does not matter; stored
  // common state comes back with sorted keys). Floats compare bitwise (so NaN
  // equals itself and 0.0 differs from -0.0, as bytes on disk do).
  friend bool operator==(const Value& a, const Value& b);
  friend bool operator!=(const Value& a, const Value& b) { return !(a == b); }

  // A short JSON-like rendering for logs and tools.
  std::string DebugString() const;

 private:
  Kind kind_ = Kind::kNull;
  bool bool_ = false;
  int64_t int_ = 0;
  double float_ = 0;
  DType dtype_ = DType::kUInt8;
  std::string str_;
  Shape shape_;
  std::vector<std::string> keys_;  // map keys, parallel to items_
  std::vector<Value> items_;       // list items or map values
};

}  // namespace dcp

#endif  // DCP_VALUE_H_
