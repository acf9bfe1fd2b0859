// Copyright (c) dcp authors.
//
// End-to-end: save with N in-process ranks in layout A, load with M ranks in
// layout B, every byte checked.

#include <catch2/catch.hpp>

#include <random>

#include "dcp/store.h"
#include "tests/api/checkpoint_harness.h"
#include "tests/testing/rank_runner.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace dcp {
namespace {

using testing::AllOk;
using testing::LoadAll;
using testing::SaveAll;
using testing::TensorSpec;

TEST_CASE("every dtype and rank 0..4 round-trips on one rank", "[api]") {
  testing::TempDir dir;
  std::vector<TensorSpec> specs;
  const std::vector<Shape> shapes = {{}, {7}, {3, 5}, {2, 3, 4}, {2, 1, 3, 2}, {0, 4}};
  int i = 0;
  for (DType dt : AllDTypes()) {
    for (const Shape& s : shapes) {
      specs.push_back({"t" + std::to_string(i++) + "." + std::string(DTypeName(dt)), dt, s, 0, Shape(s.size(), 1)});
    }
  }
  std::string why;
  const bool saved = AllOk(SaveAll(dir.path(), 1, 1, specs), &why);
  INFO(why);
  REQUIRE(saved);
  const auto loaded = LoadAll(dir.path(), 1, 1, specs);
  const bool ok = AllOk(loaded, &why);
  INFO(why);
  REQUIRE(ok);
  REQUIRE(loaded.common[0].Find("iteration") != nullptr);
  CHECK(loaded.common[0].Find("iteration")->as_int() == 1);
}

TEST_CASE("4 ranks save TP2xPP2, 2 ranks load TP1 and TP2 with other splits", "[api]") {
  testing::TempDir dir;
  // Layers stacked on a prepended axis (PP splits axis 0), TP splits a weight axis.
  std::vector<TensorSpec> save = {
      {"embedding", DType::kBFloat16, {64, 16}, 0, {2, 1}},
      {"layers.qkv", DType::kBFloat16, {4, 48, 16}, 1, {4, 2, 1}},
      {"layers.proj", DType::kFloat32, {4, 16, 16}, 1, {4, 1, 2}},
      {"layers.ln", DType::kFloat32, {4, 16}, 1, {4, 1}},
      {"scalar", DType::kInt64, {}, 0, {}},
  };
  std::string why;
  const auto saved = SaveAll(dir.path(), 10, 4, save);
  INFO(why);
  REQUIRE(AllOk(saved, &why));

  std::vector<TensorSpec> load = {
      {"embedding", DType::kBFloat16, {64, 16}, 0, {1, 2}},
      {"layers.qkv", DType::kBFloat16, {4, 48, 16}, 1, {4, 1, 2}},
      {"layers.proj", DType::kFloat32, {4, 16, 16}, 1, {4, 2, 1}},
      {"layers.ln", DType::kFloat32, {4, 16}, 1, {4, 2}},
      {"scalar", DType::kInt64, {}, 0, {}},
  };
  REQUIRE(AllOk(LoadAll(dir.path(), 10, 2, load), &why));
  // And with 3 ranks (replicas on the third), and 1 rank (everything).
  REQUIRE(AllOk(LoadAll(dir.path(), 10, 3, load), &why));
  for (auto& s : load) s.fragments.assign(s.fragments.size(), 1);
  for (auto& s : load) {
    for (int p = 0; p < s.prepend; ++p) s.fragments[p] = s.global[p];
  }
  REQUIRE(AllOk(LoadAll(dir.path(), 10, 1, load), &why));
}

TEST_CASE("replicated shards are written once and load everywhere", "[api]") {
  testing::TempDir dir;
  // 1 shard, 4 ranks: ranks 1..3 hold non-main replicas.
  std::vector<TensorSpec> specs = {{"w", DType::kFloat32, {32, 8}, 0, {1, 1}}};
  std::string why;
  REQUIRE(AllOk(SaveAll(dir.path(), 1, 4, specs), &why));
  auto store = ValueOrDie(Store::Open(dir.path(), nullptr, StoreOptions{.create_if_missing = false, .read_only = true}));
  const StepMetadata md = ValueOrDie(store->Metadata(1));
  REQUIRE(md.tensors.size() == 1);
  CHECK(md.tensors[0].raw_bytes == 32 * 8 * 4);  // once, not four times
  REQUIRE(AllOk(LoadAll(dir.path(), 1, 4, specs), &why));
}

TEST_CASE("small chunks: shards are cut into many records and reassembled", "[api]") {
  testing::TempDir dir;
  std::vector<TensorSpec> specs = {{"w", DType::kFloat16, {37, 29, 3}, 0, {1, 1, 1}},
                                   {"v", DType::kFloat64, {100}, 0, {4}}};
  SaveOptions opts;
  opts.chunk_bytes = 200;  // forces splits along axis 0 and 1
  std::string why;
  REQUIRE(AllOk(SaveAll(dir.path(), 1, 2, specs, opts), &why));
  auto store = ValueOrDie(Store::Open(dir.path(), nullptr, StoreOptions{.create_if_missing = false, .read_only = true}));
  const StepMetadata md = ValueOrDie(store->Metadata(1));
  CHECK(md.info.num_chunks > 20);
  specs[0].fragments = {1, 1, 3};
  specs[1].fragments = {5};
  REQUIRE(AllOk(LoadAll(dir.path(), 1, 3, specs), &why));
}

TEST_CASE("property: random shapes, layouts, dtypes and rank counts are bit-exact", "[api][property]") {
  std::mt19937 rng(20261128);
  for (int trial = 0; trial < 12; ++trial) {
    testing::TempDir dir;
    const int save_ranks = std::uniform_int_distribution<int>(1, 8)(rng);
    const int load_ranks = std::uniform_int_distribution<int>(1, 8)(rng);
    std::vector<TensorSpec> save, load;
    testing::AddRandomTensors(&rng, 4, &save, &load);
    SaveOptions opts;
    opts.chunk_bytes = std::uniform_int_distribution<int>(8, 512)(rng);
    opts.compression = static_cast<Compression>(std::uniform_int_distribution<int>(0, 2)(rng));
    std::string why;
    INFO("trial " << trial << ": " << save_ranks << " -> " << load_ranks << " ranks");
    const auto saved = SaveAll(dir.path(), 7, save_ranks, save, opts);
    REQUIRE(AllOk(saved, &why));
    const auto loaded = LoadAll(dir.path(), 7, load_ranks, load);
    INFO(why);
    REQUIRE(AllOk(loaded, &why));
  }
}

TEST_CASE("several steps live in one store; steps, latest and metadata", "[api]") {
  testing::TempDir dir;
  std::vector<TensorSpec> a = {{"w", DType::kFloat32, {8, 4}, 0, {2, 1}}};
  std::vector<TensorSpec> b = {{"w", DType::kFloat32, {8, 4}, 0, {2, 1}}, {"x", DType::kInt8, {3}, 0, {1}}};
  std::string why;
  REQUIRE(AllOk(SaveAll(dir.path(), 100, 2, a), &why));
  REQUIRE(AllOk(SaveAll(dir.path(), 200, 2, b), &why));
  REQUIRE(AllOk(SaveAll(dir.path(), 150, 2, a), &why));
  auto store = ValueOrDie(Store::Open(dir.path(), nullptr, StoreOptions{.create_if_missing = false, .read_only = true}));
  CHECK(ValueOrDie(store->Steps()) == std::vector<uint64_t>{100, 150, 200});
  CHECK(ValueOrDie(store->LatestStep()) == std::optional<uint64_t>(200));  // the latest iteration
  const StepMetadata md = ValueOrDie(store->Metadata(200));
  REQUIRE(md.tensors.size() == 2);
  CHECK(md.tensors[0].key == "w");
  CHECK(md.tensors[0].dtype == DType::kFloat32);
  CHECK(md.tensors[0].global_shape == Shape{8, 4});
  CHECK(md.tensors[1].key == "x");
  CHECK(md.info.world_size == 2);
  REQUIRE(AllOk(LoadAll(dir.path(), 100, 1, {{"w", DType::kFloat32, {8, 4}, 0, {1, 1}}}), &why));
  REQUIRE(AllOk(LoadAll(dir.path(), 200, 3, {{"x", DType::kInt8, {3}, 0, {1}}}), &why));
}

TEST_CASE("strided sources and destinations", "[api]") {
  testing::TempDir dir;
  // The shard is a column block of a larger row-major matrix (stride 10).
  std::vector<float> big(6 * 10);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<float>(i);
  auto store = ValueOrDie(Store::Open(dir.path(), nullptr));
  StateDict sd;
  sd.Add("w", ShardedTensor::Whole("w", TensorView(big.data() + 2, DType::kFloat32, {6, 4}, {10, 1})));
  REQUIRE_OK(store->Put(1, sd));

  // Load transposed-strided: destination is a column-major 6x4 buffer.
  std::vector<float> out(24, -1);
  StateDict req;
  req.Add("w", ShardedTensor::Whole("w", TensorView(out.data(), DType::kFloat32, {6, 4}, {1, 6})));
  REQUIRE(store->Get(1, &req).ok());
  for (int r = 0; r < 6; ++r) {
    for (int c = 0; c < 4; ++c) CHECK(out[c * 6 + r] == big[r * 10 + 2 + c]);
  }
}

TEST_CASE("a dict edited with Replace and Remove saves and loads what it holds", "[api]") {
  testing::TempDir dir;
  auto store = ValueOrDie(Store::Open(dir.path(), nullptr));
  std::vector<float> a = {1, 2, 3, 4}, b = {5, 6}, c_old = {7, 8, 9}, c_new = {10, 11, 12}, w2 = {13, 14};
  auto whole = [](const std::string& key, std::vector<float>& v) {
    return ShardedTensor::Whole(key, TensorView(v.data(), DType::kFloat32, {static_cast<int64_t>(v.size())}));
  };
  ShardedObject obj;
  obj.key = "obj";
  obj.data = "bytes in place of b";
  obj.global_shape = {1};
  obj.global_offset = {0};
  StateDict sd;
  sd.Add("a", whole("a", a)).Add("b", whole("b", b)).Add("c", whole("c", c_old)).Add("note", Value("old"));
  sd.Child("model").Add("w", whole("model.w", a));
  sd.Add("tail", Value(7));
  REQUIRE(sd.Remove("a"));     // first
  REQUIRE(sd.Remove("note"));  // middle
  REQUIRE(sd.Remove("tail"));  // last
  REQUIRE_OK(sd.Replace("c", whole("c", c_new)));  // same kind
  REQUIRE_OK(sd.Replace("b", obj));                // tensor -> object
  StateDict model;
  model.Add("w2", whole("model.w2", w2)).Add("lr", Value(0.5));
  REQUIRE_OK(sd.Replace("model", std::move(model)));
  REQUIRE_OK(store->Put(1, sd));

  const StepMetadata md = ValueOrDie(store->Metadata(1));
  REQUIRE(md.tensors.size() == 2);
  CHECK(md.tensors[0].key == "c");
  CHECK(md.tensors[1].key == "model.w2");
  REQUIRE(md.objects.size() == 1);

  std::vector<float> c_out(3, -1), w2_out(2, -1);
  ShardedObject want = obj;
  want.data.clear();
  StateDict req;
  req.Add("b", want).Add("c", whole("c", c_out));
  req.Child("model").Add("w2", whole("model.w2", w2_out));
  auto r = store->Get(1, &req);
  REQUIRE_OK(r.status());
  CHECK(c_out == c_new);
  CHECK(w2_out == w2);
  CHECK(req.object(0).data == "bytes in place of b");
  CHECK(r->common_state.Find("note") == nullptr);
  CHECK(r->common_state.Find("tail") == nullptr);
  REQUIRE(r->common_state.Find("model") != nullptr);
  CHECK(r->common_state.Find("model")->Find("lr")->as_float() == 0.5);
}

TEST_CASE("a dict that put refuses for a duplicate key saves once the first is removed", "[api]") {
  testing::TempDir dir;
  auto store = ValueOrDie(Store::Open(dir.path(), nullptr));
  std::vector<float> first = {1, 2}, second = {3, 4};
  StateDict sd;
  sd.Add("w", ShardedTensor::Whole("w", TensorView(first.data(), DType::kFloat32, {2})));
  sd.Add("w", ShardedTensor::Whole("w", TensorView(second.data(), DType::kFloat32, {2})));
  REQUIRE_THAT(store->Put(1, sd), testing::StatusIs(StatusCode::kInvalidArgument, "duplicate state dict key 'w'"));
  REQUIRE(sd.Remove("w"));
  REQUIRE_OK(store->Put(1, sd));
  std::vector<float> out(2, -1);
  StateDict req;
  req.Add("w", ShardedTensor::Whole("w", TensorView(out.data(), DType::kFloat32, {2})));
  REQUIRE_OK(store->Get(1, &req).status());
  CHECK(out == second);
}

TEST_CASE("Read fetches any region on one process", "[api]") {
  testing::TempDir dir;
  std::vector<TensorSpec> specs = {{"w", DType::kInt32, {20, 6, 5}, 0, {4, 2, 1}}};
  SaveOptions opts;
  opts.chunk_bytes = 64;
  std::string why;
  REQUIRE(AllOk(SaveAll(dir.path(), 3, 4, specs, opts), &why));
  auto store = ValueOrDie(Store::Open(dir.path(), nullptr, StoreOptions{.create_if_missing = false, .read_only = true}));
  std::mt19937 rng(5);
  for (int i = 0; i < 50; ++i) {
    Box region;
    for (int64_t g : specs[0].global) {
      const int64_t lo = std::uniform_int_distribution<int64_t>(0, g - 1)(rng);
      const int64_t len = std::uniform_int_distribution<int64_t>(1, g - lo)(rng);
      region.origin.push_back(lo);
      region.shape.push_back(len);
    }
    testing::HostTensor buf(DType::kInt32, region.shape);
    REQUIRE_OK(store->Read(3, "w", region, buf.view()));
    CHECK(testing::CheckRegion("w", specs[0].global, region, buf.view()) == "");
  }
}

TEST_CASE("objects and common state round-trip", "[api]") {
  testing::TempDir dir;
  std::vector<Status> statuses(2);
  std::vector<std::string> got(2);
  std::vector<Value> common(2);
  testing::RunRanks(2, [&](int rank, Communicator* comm) {
    auto store = Store::Open(dir.path(), comm);
    if (!store.ok()) {
      statuses[rank] = store.status();
      return;
    }
    StateDict sd;
    ShardedObject o;
    o.key = "rng";
    o.data = "state-of-rank-" + std::to_string(rank) + std::string(1000, static_cast<char>('a' + rank));
    o.global_shape = {2};
    o.global_offset = {rank};
    sd.Add("rng", o);
    sd.Child("args").Add("lr", Value(0.5)).Add("name", Value("gpt")).Add("tags", Value::List({1, "x", true}));
    sd.Add("tensor", Value::Tensor(DType::kInt16, {2}, std::string("\x01\x02\x03\x04", 4)));
    Status s = (*store)->Put(1, sd);
    if (s.ok()) {
      StateDict req;
      ShardedObject want;
      want.key = "rng";
      want.global_shape = {2};
      want.global_offset = {1 - rank};  // the other rank's cell
      req.Add("rng", want);
      auto r = (*store)->Get(1, &req);
      s = r.status();
      if (r.ok()) {
        got[rank] = req.object(0).data;
        common[rank] = r->common_state;
      }
    }
    statuses[rank] = s;
  });
  for (int r = 0; r < 2; ++r) {
    REQUIRE_OK(statuses[r]);
    CHECK(got[r] == "state-of-rank-" + std::to_string(1 - r) + std::string(1000, static_cast<char>('a' + 1 - r)));
    const Value* args = common[r].Find("args");
    REQUIRE(args != nullptr);
    CHECK(args->Find("lr")->as_float() == 0.5);
    CHECK(args->Find("name")->as_string() == "gpt");
    CHECK(*args->Find("tags") == Value::List({1, "x", true}));
    CHECK(*common[r].Find("tensor") == Value::Tensor(DType::kInt16, {2}, std::string("\x01\x02\x03\x04", 4)));
  }
}

TEST_CASE("overwrite replaces a step atomically", "[api]") {
  testing::TempDir dir;
  std::vector<TensorSpec> a = {{"w", DType::kFloat32, {8}, 0, {2}}};
  std::vector<TensorSpec> b = {{"w2", DType::kFloat32, {4}, 0, {1}}};
  std::string why;
  REQUIRE(AllOk(SaveAll(dir.path(), 5, 2, a), &why));
  SaveOptions overwrite;
  overwrite.overwrite = true;
  REQUIRE(AllOk(SaveAll(dir.path(), 5, 2, b, overwrite), &why));
  REQUIRE(AllOk(LoadAll(dir.path(), 5, 1, b), &why));
  const auto old = LoadAll(dir.path(), 5, 1, {{"w", DType::kFloat32, {8}, 0, {1}}});
  REQUIRE_THAT(old.status[0], testing::StatusIs(StatusCode::kNotFound, "tensor 'w' is not in step 5"));
}

}  // namespace
}  // namespace dcp
