// Copyright (c) dcp authors.
//
// The LibTorch adapter: torch tensors saved and loaded in place, Megatron's
// sharding helpers, state dicts from modules, and the errors.

#include "dcp/torch.h"

// LibTorch defines glog-style CHECK macros; Catch2's must win.
#include <torch/torch.h>
#undef CHECK
#undef CHECK_EQ
#undef CHECK_NE
#include <catch2/catch.hpp>

#include "dcp/store.h"
#include "tests/testing/rank_runner.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace dcp {
namespace {

namespace ta = torch_adapter;
using testing::StatusIs;

const std::vector<at::ScalarType> kTypes = {at::kBool,  at::kByte,     at::kChar,  at::kShort,
                                            at::kInt,   at::kLong,     at::kHalf,  at::kBFloat16,
                                            at::kFloat, at::kDouble,   at::kComplexFloat, at::kComplexDouble};

at::Tensor Random(at::ScalarType type, at::IntArrayRef shape, int64_t seed) {
  torch::manual_seed(seed);
  if (type == at::kBool) return torch::rand(shape) > 0.5;
  if (at::isComplexType(type)) return torch::randn(shape, at::TensorOptions().dtype(type));
  if (at::isFloatingType(type)) return torch::randn(shape).to(type);
  return torch::randint(-100, 100, shape).to(type);
}

TEST_CASE("views of torch tensors: every dtype, strides and sizes", "[torch]") {
  for (at::ScalarType type : kTypes) {
    at::Tensor t = Random(type, {4, 6}, 1).t();  // a transposed, non-contiguous view
    const TensorView v = ValueOrDie(ta::ViewOf(t));
    CHECK(v.shape() == Shape{6, 4});
    CHECK(v.strides() == Shape{1, 6});
    CHECK(v.data() == t.data_ptr());
    CHECK(DTypeSize(v.dtype()) == static_cast<size_t>(t.element_size()));
    CHECK(v.device().is_host());
  }
  CHECK(ValueOrDie(ta::ViewOf(torch::zeros({}))).rank() == 0);
}

TEST_CASE("torch tensors round-trip through a store, loaded in place or freshly allocated", "[torch]") {
  testing::TempDir dir;
  auto store = ValueOrDie(Store::Open(dir.path(), nullptr));
  std::vector<at::Tensor> saved;
  StateDict sd;
  for (size_t i = 0; i < kTypes.size(); ++i) {
    at::Tensor big = Random(kTypes[i], {8, 10}, static_cast<int64_t>(i));
    saved.push_back(big.slice(1, 2, 7));  // strided column block
    sd.Add("t" + std::to_string(i), ValueOrDie(ta::Sharded("t" + std::to_string(i), saved.back())));
  }
  REQUIRE_OK(store->Put(1, sd));

  StateDict req;
  std::vector<at::Tensor> in_place, fresh;
  for (size_t i = 0; i < kTypes.size(); ++i) {
    // In place, into a transposed (strided) destination.
    in_place.push_back(torch::zeros({5, 8}, at::TensorOptions().dtype(kTypes[i])).t());
    req.Add("a" + std::to_string(i), ValueOrDie(ta::Sharded("t" + std::to_string(i), in_place.back())));
    // Allocated from the request's declaration.
    ShardedTensor spec = ValueOrDie(ta::Sharded("t" + std::to_string(i), torch::empty({8, 5}, kTypes[i])));
    fresh.push_back(ValueOrDie(ta::AllocateFor(&spec, at::kCPU)));
    req.Add("b" + std::to_string(i), spec);
  }
  REQUIRE_OK(store->Get(1, &req).status());
  for (size_t i = 0; i < kTypes.size(); ++i) {
    INFO(c10::toString(kTypes[i]));
    CHECK(torch::equal(in_place[i], saved[i]));
    CHECK(torch::equal(fresh[i], saved[i]));
  }
}

TEST_CASE("Megatron's TP helpers place shards and replica ids", "[torch]") {
  at::Tensor w = torch::zeros({6, 4});
  // Column-parallel weight of layer 3 of 8: TP rank 1 of 2, DP rank 5.
  const ShardedTensor t = ValueOrDie(ta::TpShardedTensor("qkv", w, /*tp_axis=*/0, {1, 2, 5}, {{0, 3, 8}}));
  CHECK(t.global_shape == Shape{8, 12, 4});
  CHECK(t.global_offset == Shape{3, 6, 0});
  CHECK(t.prepend_axis_num == 1);
  CHECK(t.replica_id == ReplicaId{0, 0, 5});
  const ShardedTensor r = ValueOrDie(ta::ReplicatedShardedTensor("ln", w, {1, 2, 5}));
  CHECK(r.global_shape == Shape{6, 4});
  CHECK(r.replica_id == ReplicaId{0, 1, 5});
  CHECK_FALSE(r.is_main_replica());
  REQUIRE_THAT(ta::TpShardedTensor("x", w, 0, {2, 2, 0}).status(),
               StatusIs(StatusCode::kInvalidArgument, "key 'x': tp_rank 2 is outside tp_size 2"));
  REQUIRE_THAT(ta::TpShardedTensor("x", w, 5, {0, 2, 0}).status(),
               StatusIs(StatusCode::kInvalidArgument, "axis 5 is out of range"));
}

struct Net : torch::nn::Module {
  Net() {
    fc1 = register_module("fc1", torch::nn::Linear(8, 6));
    fc2 = register_module("fc2", torch::nn::Linear(6, 4));
    register_buffer("steps", torch::tensor({7}, at::kLong));
  }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};

TEST_CASE("a module's parameters and buffers, sharded by a rule, reshard 2 -> 1 ranks", "[torch]") {
  testing::TempDir dir;
  // Two TP ranks each hold half of fc1's output features (a column split).
  std::vector<Status> status(2);
  std::vector<std::shared_ptr<Net>> nets(2);
  testing::RunRanks(2, [&](int rank, Communicator* comm) {
    torch::manual_seed(rank + 10);
    nets[rank] = std::make_shared<Net>();
    const ta::ParallelRanks ranks{rank, 2, 0};
    auto rule = [&](const std::string& name, const at::Tensor& t) -> Result<std::optional<ShardedTensor>> {
      if (name == "fc1.weight" || name == "fc1.bias") {
        DCP_ASSIGN_OR_RETURN(ShardedTensor s, ta::TpShardedTensor(name, t, 0, ranks));
        return std::optional<ShardedTensor>(std::move(s));
      }
      if (name == "fc2.bias") return std::optional<ShardedTensor>();  // left out
      DCP_ASSIGN_OR_RETURN(ShardedTensor s, ta::ReplicatedShardedTensor(name, t, ranks));
      return std::optional<ShardedTensor>(std::move(s));
    };
    auto sd = ta::StateDictFromModule(*nets[rank], rule);
    auto store = Store::Open(dir.path(), comm);
    status[rank] = !sd.ok() ? sd.status() : !store.ok() ? store.status() : (*store)->Put(1, *sd);
  });
  REQUIRE_OK(status[0]);
  REQUIRE_OK(status[1]);

  // One rank loads the whole fc1.weight (12 x 8) and the replicated fc2.weight.
  auto store = ValueOrDie(Store::Open(dir.path(), nullptr, StoreOptions{.create_if_missing = false, .read_only = true}));
  at::Tensor fc1 = torch::empty({12, 8});
  at::Tensor fc2 = torch::empty({4, 6});
  at::Tensor steps = torch::empty({1}, at::kLong);
  StateDict req;
  req.Add("fc1", ValueOrDie(ta::Sharded("fc1.weight", fc1)));
  req.Add("fc2", ValueOrDie(ta::Sharded("fc2.weight", fc2)));
  req.Add("steps", ValueOrDie(ta::Sharded("steps", steps)));
  REQUIRE_OK(store->Get(1, &req).status());
  torch::NoGradGuard no_grad;
  CHECK(torch::equal(fc1.slice(0, 0, 6), nets[0]->fc1->weight));
  CHECK(torch::equal(fc1.slice(0, 6, 12), nets[1]->fc1->weight));
  CHECK(torch::equal(fc2, nets[0]->fc2->weight));  // rank 0's copy is the main replica
  CHECK(steps.item<int64_t>() == 7);
  const StepMetadata md = ValueOrDie(store->Metadata(1));
  for (const TensorInfo& t : md.tensors) CHECK(t.key != "fc2.bias");
}

TEST_CASE("torch errors: undefined, sparse, unsupported dtypes", "[torch]") {
  REQUIRE_THAT(ta::Sharded("u", at::Tensor()).status(), StatusIs(StatusCode::kInvalidArgument, "key 'u': tensor is undefined"));
  at::Tensor sparse = torch::eye(3).to_sparse();
  REQUIRE_THAT(ta::Sharded("s", sparse).status(),
               StatusIs(StatusCode::kInvalidArgument, "only strided (dense) tensors can be checkpointed"));
  REQUIRE_THAT(ta::Sharded("c", torch::zeros({2}, at::kComplexHalf)).status(),
               StatusIs(StatusCode::kInvalidArgument, "torch dtype ComplexHalf cannot be stored by dcp"));
  // Lazily conjugated / negated views: their memory is not their values.
  const at::Tensor z = torch::randn({3}, at::TensorOptions().dtype(at::kComplexFloat));
  REQUIRE(z.conj().is_conj());
  REQUIRE_THAT(ta::Sharded("j", z.conj()).status(),
               StatusIs(StatusCode::kInvalidArgument, "key 'j': tensor is a lazily conjugated view"));
  REQUIRE(at::imag(z.conj()).is_neg());
  REQUIRE_THAT(ta::Sharded("n", at::imag(z.conj())).status(),
               StatusIs(StatusCode::kInvalidArgument, "key 'n': tensor is a lazily negated view"));
  CHECK(ta::Sharded("r", z.conj().resolve_conj()).ok());
  ShardedTensor fp8;
  fp8.key = "f8";
  fp8.dtype = DType::kFloat8E4M3;
  fp8.local_shape = {4};
  REQUIRE_THAT(ta::AllocateFor(&fp8, at::kCPU).status(),
               StatusIs(StatusCode::kInvalidArgument, "key 'f8': dtype float8_e4m3 has no equivalent in this LibTorch"));
}

}  // namespace
}  // namespace dcp
