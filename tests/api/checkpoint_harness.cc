// Copyright (c) dcp authors.

#include "tests/api/checkpoint_harness.h"

#include "tests/testing/rank_runner.h"

namespace dcp::testing {

RankShards BuildShards(const std::vector<TensorSpec>& specs, int rank, int ranks, bool fill) {
  RankShards out;
  // Reserve so views stay valid while buffers are appended.
  size_t total = 0;
  for (const TensorSpec& s : specs) total += RegularLayout(s.global, s.fragments, ranks)[rank].size();
  out.buffers.reserve(total);
  out.dict.Child("model");
  for (const TensorSpec& s : specs) {
    const auto layout = RegularLayout(s.global, s.fragments, ranks)[rank];
    for (size_t i = 0; i < layout.size(); ++i) {
      const ShardSpec& shard = layout[i];
      Shape local(shard.box.shape.begin() + s.prepend, shard.box.shape.end());
      out.buffers.emplace_back(s.dtype, local);
      TensorView view = out.buffers.back().view();
      if (fill) FillRegion(s.key, s.global, shard.box, view);
      ShardedTensor t;
      t.key = s.key;
      t.data = view;
      t.dtype = s.dtype;
      t.local_shape = local;
      t.global_shape = s.global;
      t.global_offset = shard.box.origin;
      t.prepend_axis_num = s.prepend;
      t.replica_id = shard.replica;
      out.dict.Child("model").Add(s.key + "#" + std::to_string(i), std::move(t));
    }
  }
  return out;
}

RankOutcome SaveAll(const std::string& root, uint64_t step, int ranks, const std::vector<TensorSpec>& specs,
                    const SaveOptions& options) {
  RankOutcome o;
  o.status.resize(ranks);
  o.check.resize(ranks);
  o.common.resize(ranks);
  RunRanks(ranks, [&](int rank, Communicator* comm) {
    RankShards shards = BuildShards(specs, rank, ranks, /*fill=*/true);
    shards.dict.Add("iteration", Value(static_cast<int64_t>(step)));
    auto store = Store::Open(root, comm);
    if (!store.ok()) {
      o.status[rank] = store.status();
      return;
    }
    o.status[rank] = (*store)->Put(step, shards.dict, options);
  });
  return o;
}

RankOutcome LoadAll(const std::string& root, uint64_t step, int ranks, const std::vector<TensorSpec>& specs,
                    const LoadOptions& options) {
  RankOutcome o;
  o.status.resize(ranks);
  o.check.resize(ranks);
  o.common.resize(ranks);
  RunRanks(ranks, [&](int rank, Communicator* comm) {
    RankShards shards = BuildShards(specs, rank, ranks, /*fill=*/false);
    StoreOptions so;
    so.read_only = true;
    auto store = Store::Open(root, comm, so);
    if (!store.ok()) {
      o.status[rank] = store.status();
      return;
    }
    auto loaded = (*store)->Get(step, &shards.dict, options);
    o.status[rank] = loaded.status();
    if (!loaded.ok()) return;
    o.common[rank] = loaded->common_state;
    const StateDict& model = shards.dict.dict(shards.dict.Find("model"));
    for (size_t i = 0; i < model.size() && o.check[rank].empty(); ++i) {
      const ShardedTensor& t = model.tensor(i);
      o.check[rank] = CheckRegion(t.key, t.global_shape, t.global_box(), t.data);
    }
  });
  return o;
}

bool AllOk(const RankOutcome& o, std::string* why) {
  for (size_t r = 0; r < o.status.size(); ++r) {
    if (!o.status[r].ok()) {
      *why = "rank " + std::to_string(r) + ": " + o.status[r].ToString();
      return false;
    }
    if (!o.check[r].empty()) {
      *why = "rank " + std::to_string(r) + ": " + o.check[r];
      return false;
    }
  }
  return true;
}

void AddRandomTensors(std::mt19937* rng, int max_axes, std::vector<TensorSpec>* save, std::vector<TensorSpec>* load) {
  const auto& dtypes = AllDTypes();
  const int ntensors = std::uniform_int_distribution<int>(1, 4)(*rng);
  for (int k = 0; k < ntensors; ++k) {
    const int axes = std::uniform_int_distribution<int>(0, max_axes)(*rng);
    Shape global;
    for (int d = 0; d < axes; ++d) global.push_back(std::uniform_int_distribution<int>(1, 12)(*rng));
    const DType dt = dtypes[std::uniform_int_distribution<size_t>(0, dtypes.size() - 1)(*rng)];
    const std::string key = "k" + std::to_string(k);
    save->push_back({key, dt, global, 0, RandomFragments(global, rng)});
    load->push_back({key, dt, global, 0, RandomFragments(global, rng)});
  }
}

}  // namespace dcp::testing
