// Copyright (c) dcp authors.
//
// A harness for end-to-end store tests: describe tensors (key, dtype, global
// shape, prepended axes) and a layout per save or load, and it runs Put or Get
// on N in-process ranks with deterministic contents, checking every byte.

#ifndef DCP_TESTS_API_CHECKPOINT_HARNESS_H_
#define DCP_TESTS_API_CHECKPOINT_HARNESS_H_

#include <random>
#include <string>
#include <vector>

#include "dcp/store.h"
#include "tests/testing/layouts.h"
#include "tests/testing/tensor_fill.h"

namespace dcp::testing {

struct TensorSpec {
  std::string key;
  DType dtype = DType::kFloat32;
  Shape global;
  int prepend = 0;    // leading axes that are virtual size-1 axes of each shard
  Shape fragments;    // regular grid of this save/load; must split prepended axes fully
};

// Per-rank outcome of a collective call.
struct RankOutcome {
  std::vector<Status> status;      // element r: rank r's status
  std::vector<std::string> check;  // element r: first data mismatch on rank r (load), empty if none
  std::vector<Value> common;       // element r: common state returned to rank r (load)
};

// The shards rank `rank` of `ranks` holds for `spec`, with their buffers.
struct RankShards {
  std::vector<HostTensor> buffers;
  StateDict dict;
};
RankShards BuildShards(const std::vector<TensorSpec>& specs, int rank, int ranks, bool fill);

// Saves `specs` as `step` from `ranks` in-process ranks (common state: a map
// with "iteration" = step). Returns every rank's status.
RankOutcome SaveAll(const std::string& root, uint64_t step, int ranks, const std::vector<TensorSpec>& specs,
                    const SaveOptions& options = {});

// Loads `specs` (their fragments give the new layout) from `step` with
// `ranks` ranks and checks every byte of every shard.
RankOutcome LoadAll(const std::string& root, uint64_t step, int ranks, const std::vector<TensorSpec>& specs,
                    const LoadOptions& options = {});

// Appends 1 to 4 tensors "k0", "k1", ... of random dtypes and shapes (0 to
// `max_axes` axes of 1 to 12 elements) to both `save` and `load`, each with a
// random regular grid of its own (a property test's save and load layouts).
void AddRandomTensors(std::mt19937* rng, int max_axes, std::vector<TensorSpec>* save, std::vector<TensorSpec>* load);

// True if every rank returned OK and saw correct data.
bool AllOk(const RankOutcome& o, std::string* why);

}  // namespace dcp::testing

#endif  // DCP_TESTS_API_CHECKPOINT_HARNESS_H_
