// Copyright (c) dcp authors.
//
// A synthetic GPT-like training state, sharded the way Megatron-Core shards
// it, for the demo, the multi-process tests and the benchmarks.
//
// Layout: ranks are ordered tensor-parallel fastest, then data-parallel, then
// pipeline-parallel (rank = tp + TP * (dp + DP * pp)). Per tensor:
//   embedding / output layer [V, H]      vocab split over TP (axis 0)
//   per-layer weights, stacked on a prepended layer axis (one shard per local
//   layer, PP stage s holding layers [s*L/PP, (s+1)*L/PP)):
//     qkv [L, 3H, H] and fc1 [L, F, H] (+ biases) split on axis 1 (column parallel)
//     proj [L, H, H] and fc2 [L, H, F] split on axis 2 (row parallel)
//     proj/fc2 biases and layernorms replicated over TP (replica id (0, tp, dp))
//   final layernorm [H] on the last stage, replicated over TP
//   Adam moments (exp_avg, exp_avg_sq, fp32) for every weight, same sharding
//   an RNG-state object per (pp, tp) cell, and common state (iteration, args)
// Data-parallel ranks hold replicas (replica id (0, 0, dp)); only dp 0 writes.
//
// Values are a deterministic function of (tensor key, global element index),
// drawn from about N(0, 0.02) (exp_avg_sq: its square), so any rank of any
// layout can check any shard bit for bit.

#ifndef DCP_TOOLS_SYNTHETIC_GPT_STATE_H_
#define DCP_TOOLS_SYNTHETIC_GPT_STATE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dcp/metadata.h"
#include "dcp/state_dict.h"

namespace dcp::synthetic {

struct GptConfig {
  int64_t vocab = 1024;
  int64_t hidden = 256;
  int64_t layers = 4;
  int64_t ffn = 1024;
  bool optimizer = true;  // include Adam moments
  DType weight_dtype = DType::kBFloat16;
};

struct Layout {
  int tp = 1;
  int pp = 1;
  int dp = 1;
  int world() const { return tp * pp * dp; }
  std::string ToString() const;  // "TP2xPP2xDP1"
};

// Bytes of the whole (deduplicated) state.
uint64_t GlobalBytes(const GptConfig& config);

class GptState {
 public:
  // This rank's shards. With `fill`, buffers hold the deterministic values;
  // otherwise they are zero (a load destination).
  // REQUIRES: tp divides vocab, 3*hidden, hidden and ffn; pp divides layers.
  GptState(const GptConfig& config, const Layout& layout, int rank, bool fill);

  StateDict& state_dict() { return sd_; }
  // Bytes of this rank's shards (replicas included).
  uint64_t local_bytes() const { return local_bytes_; }
  // Bytes this rank's main replicas contribute.
  uint64_t main_bytes() const { return main_bytes_; }
  size_t num_shards() const { return shards_.size(); }

  // Objects are not reshardable: a load asks for exactly a saved cell. Points
  // this rank's RNG-object request at the cell of the saved grid (in `saved`)
  // that it maps to, so a load in another layout finds it.
  void RequestSavedObjectCells(const StepMetadata& saved);

  // The buffers of this rank's main-replica shards (what its put writes).
  std::vector<std::pair<const char*, size_t>> MainReplicaBuffers() const;
  // The buffers of all this rank's shards, replicas included.
  std::vector<std::pair<const char*, size_t>> LocalBuffers() const;

  // This rank's main-replica shards: key, region of the global tensor, dtype
  // and contiguous data (for benchmarks that change chosen parts).
  struct MainShard {
    std::string key;
    Box box;
    DType dtype;
    char* data;
  };
  std::vector<MainShard> MainShards();

  // Empty if every shard holds exactly its deterministic values (and the RNG
  // object has its cell's bytes); otherwise the first mismatch.
  std::string Verify() const;
  // Refills every shard with values from a different seed (a "later step").
  void Perturb(uint64_t seed);
  // Zeroes every shard (a load destination again); Verify still expects the
  // current values.
  void Clear();

 private:
  struct Shard {
    std::string key;
    Shape global;
    Box box;
    std::vector<char> data;
    bool main = true;
  };
  void AddTensor(const std::string& key, DType dtype, const Shape& global, const Box& box, int prepend,
                 const ReplicaId& replica, bool fill, StateDict* where);

  GptConfig config_;
  Layout layout_;
  int rank_;
  uint64_t seed_ = 0;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::vector<DType> dtypes_;
  StateDict sd_;
  uint64_t local_bytes_ = 0;
  uint64_t main_bytes_ = 0;
};

// The RNG-state bytes of object cell (pp, tp).
std::string RngStateBytes(int pp, int tp);

}  // namespace dcp::synthetic

#endif  // DCP_TOOLS_SYNTHETIC_GPT_STATE_H_
