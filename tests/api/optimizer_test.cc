// Copyright (c) dcp authors.
//
// Optimizer-state helpers (dcp/optimizer.h): keys, geometry and replica ids
// taken from the parameter, errors naming the path, and Adam states plus
// fp32 master weights saved with a model and loaded in other TP/DP layouts.

#include "dcp/optimizer.h"

#include <catch2/catch.hpp>

#include <cstdint>
#include <functional>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "dcp/factory.h"
#include "dcp/state_dict.h"
#include "dcp/store.h"
#include "tests/testing/rank_runner.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace dcp {
namespace {

using testing::StatusIs;

TEST_CASE("OptimizerStateKey follows Megatron's layout", "[api][optimizer]") {
  CHECK(OptimizerStateKey(kExpAvg, "decoder.fc1.weight") == "optimizer.state.exp_avg.decoder.fc1.weight");
  CHECK(OptimizerStateKey(kExpAvgSq, "w") == "optimizer.state.exp_avg_sq.w");
  CHECK(OptimizerStateKey(kFp32Param, "w") == "optimizer.state.fp32_param.w");
}

TEST_CASE("OptimizerStateTensor keeps the parameter's sharding and takes the state's view", "[api][optimizer]") {
  std::vector<uint16_t> weight(4 * 6);
  std::vector<float> moment(4 * 6);
  auto param = ValueOrDie(ShardedTensorFromRankOffsets(
      "layers.qkv", TensorView(weight.data(), DType::kBFloat16, {4, 6}), {{0, 2, 4}, {2, 1, 2}}, {0, 1, 3}, 1));
  param.allow_shape_mismatch = true;
  auto t = ValueOrDie(OptimizerStateTensor(param, kExpAvg, TensorView(moment.data(), DType::kFloat32, {4, 6})));
  CHECK(t.key == "optimizer.state.exp_avg.layers.qkv");
  CHECK(t.dtype == DType::kFloat32);
  CHECK(t.data.data() == moment.data());
  CHECK(t.local_shape == param.local_shape);
  CHECK(t.global_shape == param.global_shape);
  CHECK(t.global_offset == param.global_offset);
  CHECK(t.prepend_axis_num == 1);
  CHECK(t.replica_id == ReplicaId{0, 1, 3});
  CHECK(t.allow_shape_mismatch);
  CHECK_FALSE(t.flattened_range.has_value());

  CHECK_THAT(OptimizerStateTensor(param, kExpAvg, TensorView(moment.data(), DType::kFloat32, {6, 4})).status(),
             StatusIs(StatusCode::kInvalidArgument,
                      "optimizer state 'exp_avg' of parameter 'layers.qkv': view shape (6, 4) differs from the "
                      "parameter's local shape (4, 6)"));
  CHECK_THAT(OptimizerStateTensor(param, "", TensorView(moment.data(), DType::kFloat32, {4, 6})).status(),
             StatusIs(StatusCode::kInvalidArgument, "optimizer state of parameter 'layers.qkv': the state name is empty"));
  CHECK_THAT(OptimizerStateTensor(param, kExpAvg, TensorView(static_cast<void*>(nullptr), DType::kFloat32, {4, 6})).status(),
             StatusIs(StatusCode::kInvalidArgument, "optimizer state 'exp_avg' of parameter 'layers.qkv': view of "
                                                    "shape (4, 6) has a null data pointer"));
}

TEST_CASE("OptimizerStateTensor of a flat parameter wants the 1-D slice", "[api][optimizer]") {
  std::vector<float> slice(5);
  auto param = ValueOrDie(ShardedTensorFromRankOffsetsFlat("w", TensorView(slice.data(), DType::kFloat32, {5}),
                                                           {3, 4}, {{0, 1, 2}}, FlatRange{3, 8}, {0, 0, 1}));
  auto t = ValueOrDie(OptimizerStateTensor(param, kExpAvg, TensorView(slice.data(), DType::kFloat32, {5})));
  REQUIRE(t.flattened_range.has_value());
  CHECK(*t.flattened_range == FlatRange{3, 8});
  CHECK(t.local_shape == Shape{3, 4});
  CHECK_THAT(OptimizerStateTensor(param, kExpAvg, TensorView(slice.data(), DType::kFloat32, {4})).status(),
             StatusIs(StatusCode::kInvalidArgument, "optimizer state 'exp_avg' of parameter 'w': view shape (4,) is not "
                                                    "the 1-D slice of 5 elements of the parameter's flattened range"));
}

TEST_CASE("FlatOptimizerStateTensor: a DP slice of a parameter's state", "[api][optimizer]") {
  std::vector<uint16_t> weight(3 * 4);
  std::vector<float> slice(7);
  auto param = ValueOrDie(ShardedTensorFromRankOffsets("fc2", TensorView(weight.data(), DType::kBFloat16, {3, 4}),
                                                       {{1, 1, 2}}, {0, 1, 3}));
  auto t = ValueOrDie(
      FlatOptimizerStateTensor(param, kExpAvgSq, FlatRange{2, 9}, TensorView(slice.data(), DType::kFloat32, {7})));
  CHECK(t.key == "optimizer.state.exp_avg_sq.fc2");
  CHECK(t.dtype == DType::kFloat32);
  CHECK(t.local_shape == Shape{3, 4});
  CHECK(t.global_shape == Shape{3, 8});
  CHECK(t.global_offset == Shape{0, 4});
  REQUIRE(t.flattened_range.has_value());
  CHECK(*t.flattened_range == FlatRange{2, 9});
  CHECK(t.replica_id == ReplicaId{0, 1, 0});  // the DP component cleared; TP replication kept
  CHECK(t.data.data() == slice.data());

  param.replica_id = {};
  CHECK(ValueOrDie(FlatOptimizerStateTensor(param, kExpAvg, FlatRange{0, 0}, TensorView(slice.data(), DType::kFloat32, {0})))
            .replica_id.empty());

  const TensorView seven(slice.data(), DType::kFloat32, {7});
  CHECK_THAT(FlatOptimizerStateTensor(param, kExpAvg, FlatRange{6, 13}, seven).status(),
             StatusIs(StatusCode::kInvalidArgument, "optimizer state 'exp_avg' of parameter 'fc2': flattened range "
                                                    "[6, 13) is not within the 12 elements of local shape (3, 4)"));
  CHECK_THAT(FlatOptimizerStateTensor(param, kExpAvg, FlatRange{5, 4}, seven).status(),
             StatusIs(StatusCode::kInvalidArgument, "flattened range [5, 4) is not within"));
  CHECK_THAT(FlatOptimizerStateTensor(param, kExpAvg, FlatRange{0, 6}, seven).status(),
             StatusIs(StatusCode::kInvalidArgument,
                      "view shape (7,) is not the 1-D slice of 6 elements of flattened range [0, 6)"));
  CHECK_THAT(FlatOptimizerStateTensor(param, kExpAvg, FlatRange{0, 7}, TensorView(slice.data(), DType::kFloat32, {7, 1}))
                 .status(),
             StatusIs(StatusCode::kInvalidArgument, "view shape (7, 1) is not the 1-D slice"));
  CHECK_THAT(FlatOptimizerStateTensor(t, kExpAvg, FlatRange{0, 7}, seven).status(),
             StatusIs(StatusCode::kInvalidArgument, "the parameter already has a flattened range"));
}

TEST_CASE("OptimizerStateFactory swaps key and view and keeps build and merge", "[api][optimizer]") {
  std::vector<uint16_t> weight(4 * 2);
  std::vector<float> moment(4 * 2);
  auto param = ValueOrDie(SwiGluFactory("fc1", TensorView(weight.data(), DType::kBFloat16, {4, 2}), 1, 2, {0, 0, 1}));
  auto f = ValueOrDie(OptimizerStateFactory(param, kExpAvg, TensorView(moment.data(), DType::kFloat32, {4, 2})));
  CHECK(f.key == "optimizer.state.exp_avg.fc1");
  CHECK(f.replica_id == ReplicaId{0, 0, 1});
  FactoryArena arena;
  StateDict pieces;
  REQUIRE_OK(f.build(f, FactoryPhase::kSave, &arena, &pieces));
  REQUIRE(pieces.size() == 2);
  const ShardedTensor& w = pieces.tensor(pieces.Find("w"));
  const ShardedTensor& v = pieces.tensor(pieces.Find("v"));
  CHECK(w.key == "optimizer.state.exp_avg.fc1");
  CHECK(w.dtype == DType::kFloat32);
  CHECK(w.data.data() == moment.data());
  CHECK(v.data.data() == moment.data() + 4);
  CHECK(w.global_offset == Shape{2, 0});
  CHECK(v.global_offset == Shape{6, 0});
  REQUIRE_OK(f.merge(f, pieces));

  CHECK_THAT(OptimizerStateFactory(param, kExpAvg, TensorView(moment.data(), DType::kFloat32, {8})).status(),
             StatusIs(StatusCode::kInvalidArgument, "optimizer state 'exp_avg' of parameter 'fc1': view shape (8,) "
                                                    "differs from the parameter's local shape (4, 2)"));
}

// A model state dict: nested tensors, a factory, a value and an object.
struct SmallModel {
  std::vector<uint16_t> emb = std::vector<uint16_t>(8);
  std::vector<uint16_t> fc1 = std::vector<uint16_t>(8);
  std::vector<float> ln = std::vector<float>(2);
  StateDict dict;

  SmallModel() {
    dict.Add("embedding", ShardedTensor::Whole("embedding", TensorView(emb.data(), DType::kBFloat16, {4, 2})));
    StateDict& layer = dict.Child("decoder").Child("0");
    layer.Add("fc1", ValueOrDie(SwiGluFactory("decoder.0.fc1", TensorView(fc1.data(), DType::kBFloat16, {4, 2}), 0, 1)));
    layer.Add("ln", ShardedTensor::Whole("decoder.0.ln", TensorView(ln.data(), DType::kFloat32, {2})));
    dict.Add("iteration", Value(int64_t{3}));
    ShardedObject o;
    o.key = "rng";
    o.global_shape = {1};
    o.global_offset = {0};
    dict.Add("rng", o);
  }
};

TEST_CASE("OptimizerStateDict mirrors the model's nesting", "[api][optimizer]") {
  SmallModel m;
  std::vector<float> a(8), b(8), c(2);
  OptimizerStateViews states;
  states["decoder.0.fc1"][std::string(kExpAvg)] = TensorView(a.data(), DType::kFloat32, {4, 2});
  states["decoder.0.fc1"][std::string(kExpAvgSq)] = TensorView(b.data(), DType::kFloat32, {4, 2});
  states["decoder.0.ln"][std::string(kFp32Param)] = TensorView(c.data(), DType::kFloat32, {2});
  const StateDict opt = ValueOrDie(OptimizerStateDict(m.dict, states));

  // embedding has no state: left out. decoder.0.{fc1,ln}.<state>.
  REQUIRE(opt.size() == 1);
  REQUIRE(opt.key(0) == "decoder");
  const StateDict& layer = opt.dict(0).dict(opt.dict(0).Find("0"));
  REQUIRE(layer.size() == 2);
  const StateDict& fc1 = layer.dict(layer.Find("fc1"));
  REQUIRE(fc1.size() == 2);
  REQUIRE(fc1.kind(fc1.Find("exp_avg")) == StateDict::Kind::kFactory);
  CHECK(fc1.factory(fc1.Find("exp_avg")).key == "optimizer.state.exp_avg.decoder.0.fc1");
  CHECK(fc1.factory(fc1.Find("exp_avg_sq")).data.data() == b.data());
  const StateDict& ln = layer.dict(layer.Find("ln"));
  REQUIRE(ln.kind(ln.Find("fp32_param")) == StateDict::Kind::kTensor);
  CHECK(ln.tensor(ln.Find("fp32_param")).key == "optimizer.state.fp32_param.decoder.0.ln");
}

TEST_CASE("OptimizerStateDict names the path of a bad parameter", "[api][optimizer][errors]") {
  SmallModel m;
  std::vector<float> a(8);
  auto with = [&](const std::string& path, Shape shape) {
    OptimizerStateViews states;
    states[path][std::string(kExpAvg)] = TensorView(a.data(), DType::kFloat32, std::move(shape));
    return OptimizerStateDict(m.dict, states).status();
  };
  CHECK_THAT(with("decoder.0.fc2", {4, 2}),
             StatusIs(StatusCode::kInvalidArgument,
                      "optimizer state for 'decoder.0.fc2': no parameter at that path in the model state dict"));
  CHECK_THAT(with("decoder.0", {4, 2}),
             StatusIs(StatusCode::kInvalidArgument,
                      "optimizer state for 'decoder.0': the model state dict entry is a dict, not a tensor or factory"));
  CHECK_THAT(with("iteration", {1}),
             StatusIs(StatusCode::kInvalidArgument, "the model state dict entry is a value, not a tensor or factory"));
  CHECK_THAT(with("rng", {1}),
             StatusIs(StatusCode::kInvalidArgument, "the model state dict entry is a object, not a tensor or factory"));
  CHECK_THAT(with("embedding", {2, 4}),
             StatusIs(StatusCode::kInvalidArgument,
                      "state dict entry 'embedding': optimizer state 'exp_avg' of parameter 'embedding': view shape "
                      "(2, 4) differs from the parameter's local shape (4, 2)"));
  CHECK_THAT(with("decoder.0.fc1", {8}),
             StatusIs(StatusCode::kInvalidArgument, "state dict entry 'decoder.0.fc1': optimizer state 'exp_avg' of "
                                                    "parameter 'decoder.0.fc1': view shape (8,) differs"));
  // A key with a dot makes "decoder.0.ln" name two entries.
  m.dict.Add("decoder.0", StateDict().Add("ln", ShardedTensor::Whole("x", TensorView(a.data(), DType::kFloat32, {2}))));
  CHECK_THAT(with("decoder.0.ln", {2}),
             StatusIs(StatusCode::kInvalidArgument,
                      "optimizer state for 'decoder.0.ln': the path names two entries of the model state dict"));
}

// ---------------------------------------------------------------------------
// Adam states and fp32 master weights of a small TP/DP model, saved with the
// model in one layout and loaded in others.
//
// Parameters (h = 4 columns): an embedding [8, 4] split over TP on axis 0, a
// fused SwiGLU fc1 [2*4, 4] (a SwiGluFactory), and a layernorm [4]
// replicated over TP. Every element of every stored tensor holds a value
// derived from (tensor, stored global index), so any layout can be checked.

constexpr int64_t kH = 4;
constexpr int64_t kVocab = 8;
constexpr int64_t kFfn = 4;  // rows of each SwiGLU projection
const char* const kStates[] = {"exp_avg", "exp_avg_sq", "fp32_param"};

struct Param {
  std::string path;  // in the model dict, and the model key
  Shape local;
  // Stored global linear index of local linear index i at TP rank t of tp.
  std::function<int64_t(int64_t i, int t, int tp)> stored_index;
};

std::vector<Param> Params(int tp) {
  return {
      {"embedding.weight", {kVocab / tp, kH},
       [](int64_t i, int t, int tp) { return (t * (kVocab / tp)) * kH + i; }},
      {"decoder.fc1.weight", {2 * kFfn / tp, kH},
       [](int64_t i, int t, int tp) {
         const int64_t rows = kFfn / tp, r = i / kH, col = i % kH;
         return ((r / rows) * kFfn + t * rows + r % rows) * kH + col;
       }},
      {"decoder.ln.weight", {kH}, [](int64_t i, int, int) { return i; }},
  };
}

float StateValue(size_t state, size_t param, int64_t stored) {
  return static_cast<float>(1 + state * 10000 + param * 1000 + stored);
}
uint16_t ModelValue(size_t param, int64_t stored) { return static_cast<uint16_t>(param * 1000 + stored); }

struct RankState {
  std::vector<std::vector<uint16_t>> weights;               // per param
  std::vector<std::vector<std::vector<float>>> states;      // per param, per state
  StateDict dict;
};

Result<RankState> BuildRankState(int tp, int dp, int rank, bool fill) {
  const int t = rank % tp, d = rank / tp;
  const auto params = Params(tp);
  RankState rs;
  rs.weights.resize(params.size());
  rs.states.resize(params.size());
  StateDict model;
  OptimizerStateViews views;
  for (size_t p = 0; p < params.size(); ++p) {
    const int64_t n = NumElements(params[p].local);
    rs.weights[p].assign(static_cast<size_t>(n), 0xffff);
    rs.states[p].assign(std::size(kStates), std::vector<float>(static_cast<size_t>(n), -1.0f));
    if (fill) {
      for (int64_t i = 0; i < n; ++i) {
        const int64_t g = params[p].stored_index(i, t, tp);
        rs.weights[p][i] = ModelValue(p, g);
        for (size_t s = 0; s < std::size(kStates); ++s) rs.states[p][s][i] = StateValue(s, p, g);
      }
    }
    const TensorView w(rs.weights[p].data(), DType::kBFloat16, params[p].local);
    const std::string& path = params[p].path;
    StateDict& parent = model.Child(path.substr(0, path.rfind('.')));
    const std::string leaf = path.substr(path.rfind('.') + 1);
    if (p == 0) {
      DCP_ASSIGN_OR_RETURN(auto st, ShardedTensorFromRankOffsets(path, w, {{0, t, tp}}, {0, 0, d}));
      parent.Add(leaf, std::move(st));
    } else if (p == 1) {
      DCP_ASSIGN_OR_RETURN(auto f, SwiGluFactory(path, w, t, tp, {0, 0, d}));
      parent.Add(leaf, std::move(f));
    } else {
      DCP_ASSIGN_OR_RETURN(auto st, ShardedTensorFromRankOffsets(path, w, {}, {0, t, d}));
      parent.Add(leaf, std::move(st));
    }
    for (size_t s = 0; s < std::size(kStates); ++s) {
      views[path][kStates[s]] = TensorView(rs.states[p][s].data(), DType::kFloat32, params[p].local);
    }
  }
  // The model dict nests each parameter under its module: "decoder.fc1" -> "weight".
  DCP_ASSIGN_OR_RETURN(StateDict optimizer, OptimizerStateDict(model, views));
  rs.dict.Add("model", std::move(model));
  rs.dict.Add("optimizer", std::move(optimizer));
  return rs;
}

std::string CheckRankState(int tp, int rank, const RankState& rs) {
  const int t = rank % tp;
  const auto params = Params(tp);
  for (size_t p = 0; p < params.size(); ++p) {
    for (int64_t i = 0; i < NumElements(params[p].local); ++i) {
      const int64_t g = params[p].stored_index(i, t, tp);
      if (rs.weights[p][i] != ModelValue(p, g)) {
        return "rank " + std::to_string(rank) + " " + params[p].path + " element " + std::to_string(i) + " wrong";
      }
      for (size_t s = 0; s < std::size(kStates); ++s) {
        if (rs.states[p][s][i] != StateValue(s, p, g)) {
          return "rank " + std::to_string(rank) + " " + kStates[s] + " of " + params[p].path + " element " +
                 std::to_string(i) + ": got " + std::to_string(rs.states[p][s][i]) + ", want " +
                 std::to_string(StateValue(s, p, g));
        }
      }
    }
  }
  return "";
}

TEST_CASE("Adam states and fp32 master weights round-trip across TP and DP layouts", "[api][optimizer]") {
  testing::TempDir dir;
  std::vector<Status> saved(4);
  testing::RunRanks(4, [&](int rank, Communicator* comm) {  // TP2 x DP2
    auto rs = BuildRankState(2, 2, rank, true);
    if (!rs.ok()) {
      saved[rank] = rs.status();
      return;
    }
    auto store = Store::Open(dir.path(), comm);
    saved[rank] = store.ok() ? (*store)->Put(5, rs->dict) : store.status();
  });
  for (int r = 0; r < 4; ++r) {
    INFO("rank " << r);
    REQUIRE_OK(saved[r]);
  }

  auto store = ValueOrDie(Store::Open(dir.path(), nullptr, StoreOptions{.create_if_missing = false, .read_only = true}));
  const StepMetadata md = ValueOrDie(store->Metadata(5));
  std::vector<std::string> keys;
  for (const auto& t : md.tensors) keys.push_back(t.key);
  CHECK(keys == std::vector<std::string>{"decoder.fc1.weight", "decoder.ln.weight", "embedding.weight",
                                         "optimizer.state.exp_avg.decoder.fc1.weight",
                                         "optimizer.state.exp_avg.decoder.ln.weight",
                                         "optimizer.state.exp_avg.embedding.weight",
                                         "optimizer.state.exp_avg_sq.decoder.fc1.weight",
                                         "optimizer.state.exp_avg_sq.decoder.ln.weight",
                                         "optimizer.state.exp_avg_sq.embedding.weight",
                                         "optimizer.state.fp32_param.decoder.fc1.weight",
                                         "optimizer.state.fp32_param.decoder.ln.weight",
                                         "optimizer.state.fp32_param.embedding.weight"});
  // Replicas (DP, and TP for the layernorm) are written once.
  uint64_t state_bytes = 0;
  for (const auto& t : md.tensors) {
    if (t.key.rfind("optimizer.", 0) == 0) state_bytes += t.raw_bytes;
  }
  CHECK(state_bytes == 3 * 4 * (kVocab * kH + 2 * kFfn * kH + kH));

  struct Target {
    int tp, dp;
  };
  for (const Target& target : {Target{4, 1}, Target{1, 1}, Target{1, 3}, Target{2, 2}}) {
    INFO("load at TP" << target.tp << " DP" << target.dp);
    const int ranks = target.tp * target.dp;
    std::vector<std::string> problems(ranks);
    testing::RunRanks(ranks, [&](int rank, Communicator* comm) {
      auto rs = BuildRankState(target.tp, target.dp, rank, false);
      if (!rs.ok()) {
        problems[rank] = rs.status().ToString();
        return;
      }
      auto s = Store::Open(dir.path(), comm, StoreOptions{.create_if_missing = false, .read_only = true});
      if (!s.ok()) {
        problems[rank] = s.status().ToString();
        return;
      }
      auto loaded = (*s)->Get(5, &rs->dict);
      problems[rank] = loaded.ok() ? CheckRankState(target.tp, rank, *rs) : loaded.status().ToString();
    });
    for (int r = 0; r < ranks; ++r) {
      INFO("rank " << r);
      REQUIRE(problems[r] == "");
    }
  }
}

}  // namespace
}  // namespace dcp
