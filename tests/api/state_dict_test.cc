// Copyright (c) dcp authors.
//
// StateDict's own bookkeeping: Add, Replace and Remove keep keys, kinds and
// each kind's storage consistent (entry i still reads its own payload after
// entries of any kind are replaced or removed), and duplicates are left for
// put/get to refuse.

#include "dcp/state_dict.h"

#include <catch2/catch.hpp>

#include <functional>
#include <string>
#include <vector>

#include "tests/testing/status_matchers.h"

namespace dcp {
namespace {

using testing::StatusIs;
using Kind = StateDict::Kind;

// Payloads that say which entry they are: a tensor's key, an object's data,
// a value's string, a child's only key, a factory's key.
ShardedTensor Tensor(const std::string& name) {
  ShardedTensor t;
  t.key = name;
  return t;
}
ShardedObject Object(const std::string& name) {
  ShardedObject o;
  o.key = "obj";
  o.data = name;
  return o;
}
StateDict Child(const std::string& name) {
  StateDict d;
  d.Add(name, Value(1));
  return d;
}
ShardedTensorFactory Factory(const std::string& name) {
  ShardedTensorFactory f;
  f.key = name;
  return f;
}

// The name entry i carries, whatever its kind.
std::string NameOf(const StateDict& sd, size_t i) {
  switch (sd.kind(i)) {
    case Kind::kTensor: return sd.tensor(i).key;
    case Kind::kObject: return sd.object(i).data;
    case Kind::kValue: return sd.value(i).as_string();
    case Kind::kDict: return sd.dict(i).key(0);
    case Kind::kFactory: return sd.factory(i).key;
  }
  return "";
}

// "key=name:kind" for every entry, in order.
std::vector<std::string> Entries(const StateDict& sd) {
  std::vector<std::string> out;
  for (size_t i = 0; i < sd.size(); ++i) {
    out.push_back(sd.key(i) + "=" + NameOf(sd, i) + ":" + std::to_string(static_cast<int>(sd.kind(i))));
  }
  return out;
}

// Two entries of every kind, interleaved so that removing or replacing one
// shifts the storage of later entries of its kind.
StateDict Mixed() {
  StateDict sd;
  sd.Add("t1", Tensor("T1")).Add("o1", Object("O1")).Add("v1", Value("V1"));
  sd.Add("d1", Child("D1")).Add("f1", Factory("F1"));
  sd.Add("t2", Tensor("T2")).Add("o2", Object("O2")).Add("v2", Value("V2"));
  sd.Add("d2", Child("D2")).Add("f2", Factory("F2"));
  return sd;
}

TEST_CASE("Replace swaps in an entry of each kind at the same position", "[api][state_dict]") {
  struct Case {
    std::string what;
    std::function<Status(StateDict&, const std::string&)> replace;
    Kind kind;
  };
  const std::vector<Case> cases = {
      {"tensor", [](StateDict& sd, const std::string& k) { return sd.Replace(k, Tensor("new")); }, Kind::kTensor},
      {"object", [](StateDict& sd, const std::string& k) { return sd.Replace(k, Object("new")); }, Kind::kObject},
      {"value", [](StateDict& sd, const std::string& k) { return sd.Replace(k, Value("new")); }, Kind::kValue},
      {"dict", [](StateDict& sd, const std::string& k) { return sd.Replace(k, Child("new")); }, Kind::kDict},
      {"factory", [](StateDict& sd, const std::string& k) { return sd.Replace(k, Factory("new")); }, Kind::kFactory},
  };
  const StateDict base = Mixed();
  for (const Case& c : cases) {
    // Over the first entry of every kind: same kind (in place) and the others.
    for (const std::string key : {"t1", "o1", "v1", "d1", "f1"}) {
      INFO("replace '" << key << "' with a " << c.what);
      StateDict sd = base;
      REQUIRE_OK(c.replace(sd, key));
      std::vector<std::string> want = Entries(base);
      const size_t i = base.Find(key);
      want[i] = key + "=new:" + std::to_string(static_cast<int>(c.kind));
      CHECK(Entries(sd) == want);
      CHECK(sd.size() == base.size());
      // A copy is built from the same bookkeeping.
      CHECK(Entries(StateDict(sd)) == want);
    }
  }
}

TEST_CASE("Replace of an absent key is NotFound and changes nothing", "[api][state_dict]") {
  StateDict sd = Mixed();
  REQUIRE_THAT(sd.Replace("nope", Tensor("new")), StatusIs(StatusCode::kNotFound, "no state dict entry 'nope'"));
  REQUIRE_THAT(sd.Replace("nope", Child("new")), StatusIs(StatusCode::kNotFound, "to replace"));
  CHECK(Entries(sd) == Entries(Mixed()));
  StateDict empty;
  REQUIRE_THAT(empty.Replace("x", Value(1)), StatusIs(StatusCode::kNotFound, "'x'"));
  CHECK(empty.empty());
}

TEST_CASE("Remove drops the first, a middle or the last entry", "[api][state_dict]") {
  const StateDict base = Mixed();
  for (const std::string key : {"t1", "o1", "v1", "d1", "f1", "t2", "v2", "f2"}) {
    INFO("remove '" << key << "'");
    StateDict sd = base;
    REQUIRE(sd.Remove(key));
    std::vector<std::string> want = Entries(base);
    want.erase(want.begin() + base.Find(key));
    CHECK(Entries(sd) == want);
    CHECK(sd.Find(key) == StateDict::npos);
    CHECK_FALSE(sd.Remove(key));
  }
  // Down to empty, then usable again.
  StateDict sd = base;
  for (size_t i = 0; i < base.size(); ++i) REQUIRE(sd.Remove(base.key(i)));
  CHECK(sd.empty());
  sd.Add("t", Tensor("T")).Add("d", Child("D"));
  CHECK(Entries(sd) == std::vector<std::string>{"t=T:0", "d=D:3"});
}

TEST_CASE("Remove and Replace keep other child dicts where they are", "[api][state_dict]") {
  StateDict sd;
  StateDict& a = sd.Child("a");
  sd.Add("x", Value(1));
  StateDict& b = sd.Child("b");
  StateDict& c = sd.Child("c");
  a.Add("in_a", Value(1));
  b.Add("in_b", Value(2));
  c.Add("in_c", Value(3));
  REQUIRE(sd.Remove("a"));
  REQUIRE_OK(sd.Replace("x", Child("X")));
  REQUIRE_OK(sd.Replace("c", Value("C")));
  CHECK(&sd.Child("b") == &b);
  CHECK(b.key(0) == "in_b");
  b.Add("more", Value(4));
  CHECK(sd.dict(sd.Find("b")).size() == 2);
  CHECK(Entries(sd) == std::vector<std::string>{"x=X:3", "b=in_b:3", "c=C:2"});
}

TEST_CASE("Add keeps a duplicate key; Replace and Remove act on the first", "[api][state_dict]") {
  // Add cannot fail (it chains); put/get refuse the dict by path instead
  // (store_errors_test "put refuses duplicate keys").
  StateDict sd;
  sd.Add("w", Tensor("first")).Add("w", Tensor("second"));
  REQUIRE(sd.size() == 2);
  CHECK(sd.Find("w") == 0);
  REQUIRE_OK(sd.Replace("w", Value("replaced")));
  CHECK(Entries(sd) == std::vector<std::string>{"w=replaced:2", "w=second:0"});
  REQUIRE(sd.Remove("w"));
  CHECK(Entries(sd) == std::vector<std::string>{"w=second:0"});
}

TEST_CASE("Child of a key that holds no dict adds a dict beside it, never another kind's slot", "[api][state_dict]") {
  // The other entry stays as it was; put/get refuse the duplicate key.
  StateDict sd;
  sd.Add("w", Tensor("weight")).Add("v", Value("value"));
  StateDict& child = sd.Child("w");
  child.Add("inner", Value("x"));
  REQUIRE(sd.size() == 3);
  CHECK(sd.kind(0) == StateDict::Kind::kTensor);
  CHECK(sd.kind(2) == StateDict::Kind::kDict);
  CHECK(&sd.dict(2) == &child);
  CHECK(sd.dict(2).size() == 1);
  // An existing dict is returned as is.
  StateDict& again = sd.Child("d");
  CHECK(&sd.Child("d") == &again);
}

}  // namespace
}  // namespace dcp
