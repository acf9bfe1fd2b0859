// Copyright (c) dcp authors.
// Tests of engine/manifest/common_state_codec.cc: Value <-> FlexBuffers.

#include "engine/manifest/common_state_codec.h"

#include <flatbuffers/flexbuffers.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>

#include "tests/testing/status_matchers.h"

namespace Catch {
template <>
struct StringMaker<dcp::Value> {
  static std::string convert(const dcp::Value& v) { return v.DebugString(); }
};
}  // namespace Catch

namespace dcp::manifest {
namespace {

using dcp::testing::StatusIs;

Value RoundTrip(const Value& v) {
  const std::string bytes = ValueOrDie(EncodeCommonState(v));
  return ValueOrDie(DecodeCommonState(bytes));
}

std::string Iota(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(i * 7 + 3);
  return s;
}

Value Nested(Value leaf, int lists) {
  for (int i = 0; i < lists; ++i) leaf = Value::List({std::move(leaf)});
  return leaf;
}

TEST_CASE("Scalars round trip exactly", "[manifest]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<Value> values = {
      Value(),
      Value(true),
      Value(false),
      Value(int64_t{0}),
      Value(int64_t{-1}),
      Value(std::numeric_limits<int64_t>::min()),
      Value(std::numeric_limits<int64_t>::max()),
      Value(int64_t{1} << 40),
      Value(0.0),
      Value(-0.0),
      Value(1.5),
      Value(0.1),
      Value(nan),
      Value(-nan),
      Value(std::numeric_limits<double>::infinity()),
      Value(-std::numeric_limits<double>::infinity()),
      Value(std::numeric_limits<double>::denorm_min()),
      Value(std::numeric_limits<double>::max()),
      Value(""),
      Value("hello"),
      Value(std::string("nul\0inside", 10)),
      Value("caf\xc3\xa9"),
      Value::Bytes(""),
      Value::Bytes(Iota(256)),
      Value::List(),
      Value::Map(),
  };
  for (const Value& v : values) {
    INFO(v.DebugString());
    const Value back = RoundTrip(v);
    CHECK(back.kind() == v.kind());
    CHECK(back == v);
  }
}

TEST_CASE("NaN payload bits and the sign of zero survive", "[manifest]") {
  uint64_t bits = 0x7ff8000000abcdefULL;
  double payload_nan;
  std::memcpy(&payload_nan, &bits, sizeof(bits));
  for (double d : {payload_nan, -0.0}) {
    const Value back = RoundTrip(Value::List({Value(d), Value(int64_t{1})}));
    REQUIRE(back.size() == 2);
    REQUIRE(back.at(0).kind() == Value::Kind::kFloat);
    const double got = back.at(0).as_float();
    CHECK(std::memcmp(&got, &d, sizeof(d)) == 0);
  }
  CHECK(RoundTrip(Value(-0.0)) != Value(0.0));
}

TEST_CASE("Nested lists and maps round trip with map keys sorted", "[manifest]") {
  Value state = Value::Map();
  state.Set("iteration", Value(int64_t{12345}));
  state.Set("lr", Value(3e-4));
  state.Set("name", Value("gpt"));
  Value sched = Value::Map();
  sched.Set("warmup", Value(true));
  sched.Set("milestones", Value::List({Value(int64_t{10}), Value(int64_t{20}), Value(2.5), Value()}));
  sched.Set("", Value("empty key"));
  state.Set("scheduler", sched);
  state.Set("blob", Value::Bytes(std::string("\x00\xff\x00", 3)));
  state.Set("mixed", Value::List({Value::Map(), Value::List(), Value("x"), Value::Bytes("y"), Value(false)}));
  state.Set("A upper", Value(int64_t{1}));

  const Value back = RoundTrip(state);
  CHECK(back == state);
  REQUIRE(back.kind() == Value::Kind::kMap);
  const std::vector<std::string> sorted = {"A upper", "blob", "iteration", "lr", "mixed", "name", "scheduler"};
  CHECK(back.keys() == sorted);
  const Value* s = back.Find("scheduler");
  REQUIRE(s != nullptr);
  CHECK(s->keys() == std::vector<std::string>{"", "milestones", "warmup"});
}

TEST_CASE("Tensors of every dtype and shape round trip", "[manifest]") {
  Value all = Value::List();
  for (DType dtype : AllDTypes()) {
    for (const Shape& shape : std::vector<Shape>{{}, {0}, {5}, {2, 3}, {3, 0, 2}, {1, 2, 1, 2}}) {
      const size_t n = static_cast<size_t>(NumElements(shape)) * DTypeSize(dtype);
      const Value t = Value::Tensor(dtype, shape, Iota(n));
      INFO(DTypeName(dtype) << ShapeToString(shape));
      const Value back = RoundTrip(t);
      REQUIRE(back.kind() == Value::Kind::kTensor);
      CHECK(back.tensor_dtype() == dtype);
      CHECK(back.tensor_shape() == shape);
      CHECK(back.as_string() == t.as_string());
      all.Append(t);
    }
  }
  // Tensors nested in lists and maps.
  Value m = Value::Map();
  m.Set("tensors", all);
  m.Set("data", Value::Tensor(DType::kFloat32, {2}, Iota(8)));  // keys that a tensor map also uses
  m.Set("shape", Value("not a tensor"));
  CHECK(RoundTrip(m) == m);
}

TEST_CASE("The reserved tensor marker key is refused at encode", "[manifest]") {
  Value m = Value::Map();
  m.Set(kTensorMarkerKey, Value("float32"));
  CHECK_THAT(EncodeCommonState(m).status(),
             StatusIs(StatusCode::kInvalidArgument, "common-state map key '__dcp_tensor__' is reserved"));
  // Even when it would look like a well-formed tensor, and when nested deep.
  Value fake = Value::Map();
  fake.Set(kTensorMarkerKey, Value("uint8"));
  fake.Set("shape", Value::List({Value(int64_t{1})}));
  fake.Set("data", Value::Bytes("x"));
  Value outer = Value::Map();
  outer.Set("inner", Value::List({Value(int64_t{1}), fake}));
  CHECK_THAT(EncodeCommonState(outer).status(), StatusIs(StatusCode::kInvalidArgument, "is reserved"));
  // A string value equal to the marker is fine.
  Value ok = Value::Map();
  ok.Set("k", Value(kTensorMarkerKey));
  CHECK(RoundTrip(ok) == ok);
}

TEST_CASE("Malformed tensors and keys are refused at encode", "[manifest]") {
  CHECK_THAT(EncodeCommonState(Value::Tensor(DType::kFloat32, {2}, "12345")).status(),
             StatusIs(StatusCode::kInvalidArgument, "common-state tensor of float32(2,) holds 5 bytes, expected 8"));
  CHECK_THAT(EncodeCommonState(Value::Tensor(DType::kInt16, {}, "")).status(),
             StatusIs(StatusCode::kInvalidArgument, "holds 0 bytes, expected 2"));
  CHECK_THAT(EncodeCommonState(Value::List({Value::Tensor(DType::kUInt8, {2, 2}, "12345")})).status(),
             StatusIs(StatusCode::kInvalidArgument, "expected 4"));
  CHECK_THAT(EncodeCommonState(Value::Tensor(DType::kUInt8, {-2}, "")).status(),
             StatusIs(StatusCode::kInvalidArgument, "negative extent"));
  CHECK_THAT(EncodeCommonState(Value::Tensor(static_cast<DType>(0), {1}, "x")).status(),
             StatusIs(StatusCode::kInvalidArgument, "common-state tensor of invalid"));
  Value m = Value::Map();
  m.Set(std::string("a\0b", 3), Value(int64_t{1}));
  CHECK_THAT(EncodeCommonState(m).status(), StatusIs(StatusCode::kInvalidArgument, "NUL byte"));
}

TEST_CASE("Nesting is bounded, and what encodes also decodes", "[manifest]") {
  // Depth counts containers from the root (depth 0): the deepest leaf allowed
  // sits at depth kMaxCommonStateDepth.
  for (const Value& leaf : {Value(int64_t{7}), Value("leaf"), Value::Bytes("b"), Value::List(), Value::Map(),
                            Value::Tensor(DType::kInt32, {2}, Iota(8))}) {
    INFO(leaf.DebugString());
    const Value deepest = Nested(leaf, kMaxCommonStateDepth);
    CHECK(RoundTrip(deepest) == deepest);
    CHECK_THAT(EncodeCommonState(Nested(leaf, kMaxCommonStateDepth + 1)).status(),
               StatusIs(StatusCode::kInvalidArgument, "nested too deeply"));
  }
  Value map_chain = Value(int64_t{1});
  for (int i = 0; i < kMaxCommonStateDepth; ++i) {
    Value m = Value::Map();
    m.Set("k", std::move(map_chain));
    map_chain = std::move(m);
  }
  CHECK(RoundTrip(map_chain) == map_chain);
}

// `lists` nested FlexBuffers vectors around an int, built without the encoder's limit.
std::string NestedDocument(int lists) {
  flexbuffers::Builder b;
  std::vector<size_t> starts;
  for (int i = 0; i < lists; ++i) starts.push_back(b.StartVector());
  b.Int(1);
  for (auto it = starts.rbegin(); it != starts.rend(); ++it) b.EndVector(*it, false, false);
  b.Finish();
  return std::string(reinterpret_cast<const char*>(b.GetBuffer().data()), b.GetBuffer().size());
}

TEST_CASE("Decoding refuses documents nested deeper than the limit", "[manifest]") {
  CHECK(ValueOrDie(DecodeCommonState(NestedDocument(kMaxCommonStateDepth))) ==
        Nested(Value(int64_t{1}), kMaxCommonStateDepth));
  CHECK_THAT(DecodeCommonState(NestedDocument(kMaxCommonStateDepth + 2)).status(),
             StatusIs(StatusCode::kDataLoss, "common state is nested too deeply"));
  CHECK_THAT(DecodeCommonState(NestedDocument(kMaxCommonStateDepth + 10)).status(),
             StatusIs(StatusCode::kDataLoss, "common state failed FlexBuffers verification"));
}

TEST_CASE("An empty document decodes to an empty map", "[manifest]") {
  const Value v = ValueOrDie(DecodeCommonState(""));
  CHECK(v.kind() == Value::Kind::kMap);
  CHECK(v.size() == 0);
}

TEST_CASE("Garbage common state is data loss, never a crash", "[manifest]") {
  std::mt19937 rng(23);
  for (size_t len : {1, 2, 3, 8, 64, 1000}) {
    for (int trial = 0; trial < 20; ++trial) {
      std::string g(len, '\0');
      for (char& c : g) c = static_cast<char>(rng());
      const auto r = DecodeCommonState(g);
      // Random bytes may happen to form a tiny valid document (e.g. a scalar);
      // anything else must be data loss.
      if (!r.ok()) CHECK_THAT(r.status(), StatusIs(StatusCode::kDataLoss, "common"));
    }
  }
  CHECK_THAT(DecodeCommonState("\x01").status(),
             StatusIs(StatusCode::kDataLoss, "common state failed FlexBuffers verification"));
  CHECK_THAT(DecodeCommonState(std::string(16, '\xff')).status(), StatusIs(StatusCode::kDataLoss));

  Value state = Value::Map();
  state.Set("t", Value::Tensor(DType::kFloat64, {3}, Iota(24)));
  state.Set("s", Value::List({Value("abc"), Value::Bytes("xyz"), Value(1.25)}));
  const std::string bytes = ValueOrDie(EncodeCommonState(state));
  for (size_t n = 0; n < bytes.size(); ++n) {
    const auto r = DecodeCommonState(bytes.substr(0, n));
    if (n == 0) continue;  // empty is the empty map
    INFO("length " << n);
    if (!r.ok()) CHECK_THAT(r.status(), StatusIs(StatusCode::kDataLoss, "common"));
  }
  std::uniform_int_distribution<int> mask(1, 255);
  for (size_t pos = 0; pos < bytes.size(); ++pos) {
    std::string bad = bytes;
    bad[pos] = static_cast<char>(bad[pos] ^ mask(rng));
    const auto r = DecodeCommonState(bad);
    INFO("flip at " << pos);
    if (!r.ok()) CHECK_THAT(r.status(), StatusIs(StatusCode::kDataLoss, "common"));
  }
}

std::string Finish(flexbuffers::Builder* b) {
  b->Finish();
  return std::string(reinterpret_cast<const char*>(b->GetBuffer().data()), b->GetBuffer().size());
}

TEST_CASE("Typed FlexBuffers vectors decode element by element", "[manifest]") {
  // EncodeCommonState writes untyped vectors only; typed ones (as other
  // FlexBuffers writers produce) must not come back empty.
  const Value ints = Value::List({Value(int64_t{1}), Value(int64_t{-2}), Value(int64_t{3})});
  {
    flexbuffers::Builder b;
    b.Vector(std::vector<int64_t>{1, -2, 3});  // FBT_VECTOR_INT
    CHECK(ValueOrDie(DecodeCommonState(Finish(&b))) == ints);
  }
  {
    flexbuffers::Builder b;
    const int64_t three[] = {1, -2, 3};
    b.FixedTypedVector(three, 3);  // FBT_VECTOR_INT3
    CHECK(ValueOrDie(DecodeCommonState(Finish(&b))) == ints);
  }
  {
    flexbuffers::Builder b;
    b.Vector(std::vector<double>{0.5, -0.0});  // FBT_VECTOR_FLOAT
    CHECK(ValueOrDie(DecodeCommonState(Finish(&b))) == Value::List({Value(0.5), Value(-0.0)}));
  }
  {
    flexbuffers::Builder b;  // a tensor whose shape is a typed vector
    const size_t m = b.StartMap();
    b.String(kTensorMarkerKey, "int8");
    b.Key("data");
    b.Blob("abcdef", 6);
    b.Key("shape");
    b.Vector(std::vector<int64_t>{2, 3});
    b.EndMap(m);
    CHECK(ValueOrDie(DecodeCommonState(Finish(&b))) == Value::Tensor(DType::kInt8, {2, 3}, "abcdef"));
  }
}

TEST_CASE("Malformed tensors in a document are data loss", "[manifest]") {
  const auto tensor = [](const char* dtype, std::vector<int64_t> shape, size_t data_bytes) {
    flexbuffers::Builder b;
    const size_t m = b.StartMap();
    b.String(kTensorMarkerKey, dtype);
    b.Key("data");
    const std::string data(data_bytes, 'd');
    b.Blob(data.data(), data.size());
    const size_t s = b.StartVector("shape");
    for (int64_t d : shape) b.Int(d);
    b.EndVector(s, false, false);
    b.EndMap(m);
    return Finish(&b);
  };
  // The hand-built form decodes like an encoded tensor.
  const Value ok = ValueOrDie(DecodeCommonState(tensor("int16", {2, 2}, 8)));
  CHECK(ok == Value::Tensor(DType::kInt16, {2, 2}, std::string(8, 'd')));

  CHECK_THAT(DecodeCommonState(tensor("int16", {2, 2}, 7)).status(),
             StatusIs(StatusCode::kDataLoss, "common-state tensor byte count does not match its shape"));
  CHECK_THAT(DecodeCommonState(tensor("complex32", {1}, 4)).status(),
             StatusIs(StatusCode::kDataLoss, "common state holds a malformed tensor"));
  CHECK_THAT(DecodeCommonState(tensor("uint8", {-3}, 0)).status(), StatusIs(StatusCode::kDataLoss, "negative extent"));
  // Extents whose product overflows must not pass as a small tensor.
  CHECK_THAT(DecodeCommonState(tensor("uint8", {int64_t{1} << 32, int64_t{1} << 32, 2}, 0)).status(),
             StatusIs(StatusCode::kDataLoss, "byte count does not match"));
  CHECK_THAT(DecodeCommonState(tensor("float64", {int64_t{1} << 61, 4}, 32)).status(),
             StatusIs(StatusCode::kDataLoss, "byte count does not match"));
  // A null marker (found by the fuzzer): not a tensor, and not a map a user
  // can hold either (the encoder refuses the key), so it must not decode.
  {
    flexbuffers::Builder b;
    const size_t m = b.StartMap();
    b.Null(kTensorMarkerKey);
    b.Int("x", 1);
    b.EndMap(m);
    CHECK_THAT(DecodeCommonState(Finish(&b)).status(), StatusIs(StatusCode::kDataLoss, "malformed tensor"));
  }
  // Marker with a non-string value, data that is not a blob, shape that is not a vector.
  {
    flexbuffers::Builder b;
    const size_t m = b.StartMap();
    b.Int(kTensorMarkerKey, 9);
    b.Key("data");
    b.Blob("abcd", 4);
    b.Int("shape", 4);
    b.EndMap(m);
    CHECK_THAT(DecodeCommonState(Finish(&b)).status(), StatusIs(StatusCode::kDataLoss, "malformed tensor"));
  }
  {
    flexbuffers::Builder b;
    const size_t m = b.StartMap();
    b.String(kTensorMarkerKey, "uint8");
    b.String("data", "abcd");
    const size_t s = b.StartVector("shape");
    b.Int(4);
    b.EndVector(s, false, false);
    b.EndMap(m);
    CHECK_THAT(DecodeCommonState(Finish(&b)).status(), StatusIs(StatusCode::kDataLoss, "malformed tensor"));
  }
}

TEST_CASE("A common state of 100k keys round-trips (decoding is not quadratic in keys)", "[manifest]") {
  Value big = Value::Map();
  for (int i = 0; i < 100000; ++i) big.AppendEntry("key-" + std::to_string(i), Value(int64_t{i}));
  const std::string bytes = ValueOrDie(EncodeCommonState(big));
  const Value back = ValueOrDie(DecodeCommonState(bytes));
  REQUIRE(back.size() == 100000);
  CHECK(back == big);  // map equality ignores order (the decoded keys are sorted)
  CHECK(back.Find("key-99999")->as_int() == 99999);
}

}  // namespace
}  // namespace dcp::manifest
