// Copyright (c) dcp authors.

#include "dcp/value.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

namespace dcp {

Value::Value(bool b) : kind_(Kind::kBool), bool_(b) {}
Value::Value(int64_t v) : kind_(Kind::kInt), int_(v) {}
Value::Value(double v) : kind_(Kind::kFloat), float_(v) {}
Value::Value(const char* s) : kind_(Kind::kString), str_(s) {}
Value::Value(std::string s) : kind_(Kind::kString), str_(std::move(s)) {}
Value::Value(std::string_view s) : kind_(Kind::kString), str_(s) {}

Value Value::Bytes(std::string bytes) {
  Value v;
  v.kind_ = Kind::kBytes;
  v.str_ = std::move(bytes);
  return v;
}

Value Value::List(std::vector<Value> items) {
  Value v;
  v.kind_ = Kind::kList;
  v.items_ = std::move(items);
  return v;
}

Value Value::Map() {
  Value v;
  v.kind_ = Kind::kMap;
  return v;
}

Value Value::Tensor(DType dtype, Shape shape, std::string data) {
  Value v;
  v.kind_ = Kind::kTensor;
  v.dtype_ = dtype;
  v.shape_ = std::move(shape);
  v.str_ = std::move(data);
  return v;
}

Value& Value::Append(Value v) {
  items_.push_back(std::move(v));
  return items_.back();
}

Value& Value::Set(std::string_view key, Value v) {
  for (size_t i = 0; i < keys_.size(); ++i) {
    if (keys_[i] == key) {
      items_[i] = std::move(v);
      return items_[i];
    }
  }
  keys_.emplace_back(key);
  items_.push_back(std::move(v));
  return items_.back();
}

Value& Value::AppendEntry(std::string key, Value v) {
  keys_.push_back(std::move(key));
  items_.push_back(std::move(v));
  return items_.back();
}

const Value* Value::Find(std::string_view key) const {
  if (kind_ != Kind::kMap) return nullptr;
  for (size_t i = 0; i < keys_.size(); ++i) {
    if (keys_[i] == key) return &items_[i];
  }
  return nullptr;
}

Value* Value::Find(std::string_view key) {
  return const_cast<Value*>(static_cast<const Value*>(this)->Find(key));
}

bool operator==(const Value& a, const Value& b) {
  if (a.kind_ != b.kind_) return false;
  switch (a.kind_) {
    case Value::Kind::kNull: return true;
    case Value::Kind::kBool: return a.bool_ == b.bool_;
    case Value::Kind::kInt: return a.int_ == b.int_;
    case Value::Kind::kFloat: return std::memcmp(&a.float_, &b.float_, sizeof(double)) == 0;
    case Value::Kind::kString:
    case Value::Kind::kBytes: return a.str_ == b.str_;
    case Value::Kind::kList: return a.items_ == b.items_;
    case Value::Kind::kMap: {
      // Entries in key order on both sides (n log n, not a lookup per key).
      if (a.keys_.size() != b.keys_.size()) return false;
      auto sorted = [](const Value& v) {
        std::vector<size_t> order(v.keys_.size());
        for (size_t i = 0; i < order.size(); ++i) order[i] = i;
        std::sort(order.begin(), order.end(), [&](size_t x, size_t y) { return v.keys_[x] < v.keys_[y]; });
        return order;
      };
      const std::vector<size_t> x = sorted(a), y = sorted(b);
      for (size_t i = 0; i < x.size(); ++i) {
        if (a.keys_[x[i]] != b.keys_[y[i]] || !(a.items_[x[i]] == b.items_[y[i]])) return false;
      }
      return true;
    }
    case Value::Kind::kTensor:
      return a.dtype_ == b.dtype_ && a.shape_ == b.shape_ && a.str_ == b.str_;
  }
  return false;
}

namespace {

void AppendQuoted(std::string* out, const std::string& s) {
  out->push_back('"');
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(c));
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      *out += buf;
    } else {
      out->push_back(static_cast<char>(c));
    }
  }
  out->push_back('"');
}

void Render(const Value& v, std::string* out) {
  switch (v.kind()) {
    case Value::Kind::kNull: *out += "null"; return;
    case Value::Kind::kBool: *out += v.as_bool() ? "true" : "false"; return;
    case Value::Kind::kInt: *out += std::to_string(v.as_int()); return;
    case Value::Kind::kFloat: {
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%.17g", v.as_float());
      *out += buf;
      return;
    }
    case Value::Kind::kString: AppendQuoted(out, v.as_string()); return;
    case Value::Kind::kBytes: *out += "<" + std::to_string(v.as_string().size()) + " bytes>"; return;
    case Value::Kind::kTensor:
      *out += "<tensor " + std::string(DTypeName(v.tensor_dtype())) + ShapeToString(v.tensor_shape()) + ">";
      return;
    case Value::Kind::kList:
      out->push_back('[');
      for (size_t i = 0; i < v.size(); ++i) {
        if (i) *out += ", ";
        Render(v.at(i), out);
      }
      out->push_back(']');
      return;
    case Value::Kind::kMap:
      out->push_back('{');
      for (size_t i = 0; i < v.size(); ++i) {
        if (i) *out += ", ";
        AppendQuoted(out, v.keys()[i]);
        *out += ": ";
        Render(v.at(i), out);
      }
      out->push_back('}');
      return;
  }
}

}  // namespace

std::string Value::DebugString() const {
  std::string out;
  Render(*this, &out);
  return out;
}

}  // namespace dcp
