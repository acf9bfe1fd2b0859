// Copyright (c) dcp authors.
//
// A small synthetic transformer training state for the model reconfiguration
// matrix (tests/mpi/matrix_mpi_test.cc): every sharding feature a Megatron-Core
// checkpoint uses at once, so that saving in one (TP, PP, DP) layout and
// loading in another exercises them together.
//
// Layout: ranks are ordered tensor-parallel fastest, then data-parallel, then
// pipeline-parallel (rank = tp + TP * (dp + DP * pp)), as in gpt_state.h.
// Model state (weight dtype, "model" sub-dict), global shapes:
//   embedding.word_embeddings.weight [Vp, H]  stage 0, vocab split over TP
//   output_layer.weight [Vp, H]               last stage, vocab split over TP
//     Vp is the vocabulary padded as Megatron pads it: to a multiple of
//     vocab_divisible_by * TP, so a change of TP (or of the setting) changes
//     the global shape; both are requested with allow_shape_mismatch.
//   decoder.layers.* stacked on a prepended layer axis [L, ...], one shard
//   per local layer, PP stage s holding layers [s*L/PP, (s+1)*L/PP):
//     self_attention.linear_qkv.weight [L, 3H, H]  column parallel (axis 1)
//     self_attention.linear_proj.weight [L, H, H]  row parallel (axis 2)
//     mlp.linear_fc1.weight [L, 2F, H]             fused SwiGLU, a SwiGluFactory
//                                                  (w and v halves, 2*TP fragments)
//     mlp.linear_fc2.weight [L, H, F]              row parallel (axis 2)
//     input_layernorm.weight, pre_mlp_layernorm.weight [L, H]  replicated over TP
//   decoder.final_layernorm.weight [H]          last stage, replicated over TP
// Model replica ids are (0, tp or 0 when replicated over TP, dp).
//
// Optimizer state ("optimizer" sub-dict, float32): Adam's exp_avg,
// exp_avg_sq and fp32 master weights of every parameter, keyed
// optimizer.state.<name>.<model key>. With distributed_optimizer, each state
// of a plain parameter is this DP rank's slice of the row-major flattening of
// the parameter's local shard (FlatOptimizerStateTensor), the DP slices
// uneven by +-1 element (so some are empty); otherwise the states have the
// parameter's sharding (OptimizerStateDict). The SwiGLU weight's states are
// factories either way (OptimizerStateFactory; dcp's SwiGLU factory has no
// flat form). Common state: "iteration" and "args".
//
// Values are a deterministic function of (tensor key, global element index),
// so any rank of any layout checks any element bit for bit. Rows of the
// vocab-padded tensors at or beyond the saved padded vocabulary must load as
// zeros (allow_shape_mismatch pads with zeros).
//
// Thread safety: a value owning its buffers; the state dict views them.

#ifndef DCP_TESTS_TESTING_TRANSFORMER_STATE_H_
#define DCP_TESTS_TESTING_TRANSFORMER_STATE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dcp/state_dict.h"
#include "dcp/status.h"
#include "tools/synthetic/gpt_state.h"

namespace dcp::synthetic {

struct TransformerConfig {
  int64_t vocab = 300;                // the true vocabulary
  int64_t vocab_divisible_by = 128;   // Megatron's make_vocab_size_divisible_by
  int64_t hidden = 16;                // H
  int64_t layers = 8;                 // L
  int64_t ffn = 32;                   // F: rows of each SwiGLU projection
  bool optimizer = true;              // include the Adam states
  bool distributed_optimizer = true;  // optimizer states as flat DP slices
  DType weight_dtype = DType::kBFloat16;
};

// The padded vocabulary of `config` at tensor-parallel size `tp`: the
// smallest multiple of vocab_divisible_by * tp that is >= vocab.
int64_t PaddedVocab(const TransformerConfig& config, int tp);

// Bounds 0 = b0 <= ... <= b_parts = n of `parts` slices of n elements: the
// even split with every inner bound moved by one element, alternately up and
// down (clamped), as a distributed optimizer's bucket padding does.
std::vector<int64_t> UnevenSliceBounds(int64_t n, int parts);

// The saved bytes of `box` of tensor `key` (global shape `global`), as any
// TransformerState that holds it fills them (row-major, contiguous): for
// checking whole tensors of a plain load.
std::string TransformerTensorBytes(const std::string& key, DType dtype, const Shape& global, const Box& box);

class TransformerState {
 public:
  // This rank's state. With `fill`, buffers hold the deterministic values;
  // otherwise a 0xA5 byte pattern that a load must overwrite (padding rows
  // included). Returns InvalidArgument if the layout does not fit: tp must
  // divide hidden and ffn, pp must divide layers, rank must be in [0, world).
  static Result<std::unique_ptr<TransformerState>> Make(const TransformerConfig& config, const Layout& layout, int rank,
                                                        bool fill);

  StateDict& state_dict() { return sd_; }
  int64_t padded_vocab() const { return padded_vocab_; }
  size_t num_shards() const { return shards_.size(); }

  // Empty if every buffer holds its deterministic values, rows of the
  // vocab-padded tensors at or beyond `saved_padded_vocab` being zero;
  // otherwise the first mismatch (key, region, rank). Buffers of tensors
  // whose key starts with a non-empty `skip_prefix` are not checked (entries
  // a load left alone).
  std::string Verify(int64_t saved_padded_vocab, std::string_view skip_prefix = {}) const;

 private:
  // One buffer: the concatenation of `boxes` of tensor `key` (two for a
  // SwiGLU shard: its w rows, then its v rows), or, with `range`, elements
  // [range.begin, range.end) of that concatenation.
  struct Shard {
    std::string key;
    DType dtype;
    Shape global;
    std::vector<Box> boxes;
    std::optional<FlatRange> range;
    bool vocab_padded = false;
    std::vector<char> data;
  };
  TransformerState(const TransformerConfig& config, const Layout& layout, int rank);
  Status Build(bool fill);
  Shard* NewShard(std::string key, DType dtype, Shape global, std::vector<Box> boxes, std::optional<FlatRange> range,
                  bool vocab_padded, bool fill);

  TransformerConfig config_;
  Layout layout_;
  int rank_;
  int64_t padded_vocab_;
  std::vector<std::unique_ptr<Shard>> shards_;
  StateDict sd_;
};

}  // namespace dcp::synthetic

#endif  // DCP_TESTS_TESTING_TRANSFORMER_STATE_H_
