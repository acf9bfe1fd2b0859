// Copyright (c) dcp authors.

#include "tests/testing/transformer_state.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>

#include "dcp/factory.h"
#include "dcp/optimizer.h"
#include "dcp/sharded.h"
#include "dcp/value.h"

namespace dcp::synthetic {
namespace {

uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t KeyHash(const std::string& key) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : key) h = (h ^ c) * 1099511628211ULL;
  return h;
}

// Element `index` (row-major, global) of tensor `key`: about N(0, 0.02) from
// four 16-bit uniforms; squared for second moments.
float ElementValue(uint64_t key_hash, bool square, int64_t index) {
  const uint64_t bits = Mix(key_hash + static_cast<uint64_t>(index));
  const float u = static_cast<float>(bits & 0xffff) + static_cast<float>((bits >> 16) & 0xffff) +
                  static_cast<float>((bits >> 32) & 0xffff) + static_cast<float>((bits >> 48) & 0xffff);
  const float v = (u / 65536.0f - 2.0f) * (0.02f * 1.7320508f);
  return square ? v * v : v;
}

void Encode(DType dtype, float v, char* out) {
  if (dtype == DType::kFloat32) {
    std::memcpy(out, &v, 4);
    return;
  }
  uint32_t b;  // bfloat16: the upper half of the float
  std::memcpy(&b, &v, 4);
  const uint16_t h = static_cast<uint16_t>(b >> 16);
  std::memcpy(out, &h, 2);
}

// Appends the bytes of `box` of tensor `key` (global shape `global`) to
// `out`; rows (axis 0) at or beyond `zero_rows_from` are zeros.
void AppendBox(const std::string& key, DType dtype, const Shape& global, const Box& box, int64_t zero_rows_from,
               std::string* out) {
  const int64_t n = box.num_elements();
  if (n == 0) return;
  const uint64_t kh = KeyHash(key);
  const bool square = key.find("exp_avg_sq") != std::string::npos;
  const size_t elem = DTypeSize(dtype);
  const size_t rank = box.shape.size();
  std::vector<int64_t> idx(rank, 0);
  char tmp[8];
  for (int64_t i = 0; i < n; ++i) {
    int64_t index = 0;
    for (size_t d = 0; d < rank; ++d) index = index * global[d] + box.origin[d] + idx[d];
    const bool zero = rank > 0 && box.origin[0] + idx[0] >= zero_rows_from;
    Encode(dtype, zero ? 0.0f : ElementValue(kh, square, index), tmp);
    out->append(tmp, elem);
    for (size_t d = rank; d-- > 0;) {
      if (++idx[d] < box.shape[d]) break;
      idx[d] = 0;
    }
  }
}

StateDict& At(StateDict& root, const std::vector<std::string>& path) {
  StateDict* d = &root;
  for (const std::string& p : path) d = &d->Child(p);
  return *d;
}

std::string Join(const std::vector<std::string>& path, const std::string& leaf) {
  std::string s;
  for (const std::string& p : path) s += p + ".";
  return s + leaf;
}

const char* const kStates[] = {"exp_avg", "exp_avg_sq", "fp32_param"};

}  // namespace

int64_t PaddedVocab(const TransformerConfig& config, int tp) {
  const int64_t m = config.vocab_divisible_by * tp;
  return (config.vocab + m - 1) / m * m;
}

std::vector<int64_t> UnevenSliceBounds(int64_t n, int parts) {
  std::vector<int64_t> b(static_cast<size_t>(parts) + 1, 0);
  for (int k = 1; k <= parts; ++k) {
    int64_t x = n * k / parts;
    if (k < parts) x += (k % 2 == 1) ? 1 : -1;
    b[static_cast<size_t>(k)] = std::clamp<int64_t>(x, b[static_cast<size_t>(k) - 1], n);
  }
  b.back() = n;
  return b;
}

std::string TransformerTensorBytes(const std::string& key, DType dtype, const Shape& global, const Box& box) {
  std::string out;
  AppendBox(key, dtype, global, box, std::numeric_limits<int64_t>::max(), &out);
  return out;
}

TransformerState::TransformerState(const TransformerConfig& config, const Layout& layout, int rank)
    : config_(config), layout_(layout), rank_(rank), padded_vocab_(PaddedVocab(config, layout.tp)) {}

Result<std::unique_ptr<TransformerState>> TransformerState::Make(const TransformerConfig& config, const Layout& layout,
                                                                 int rank, bool fill) {
  if (layout.tp < 1 || layout.pp < 1 || layout.dp < 1 || rank < 0 || rank >= layout.world() ||
      config.hidden % layout.tp != 0 || config.ffn % layout.tp != 0 || config.layers % layout.pp != 0 ||
      config.vocab < 1 || config.vocab_divisible_by < 1) {
    return Status::InvalidArgument("synthetic transformer: layout " + layout.ToString() + " (rank " +
                                   std::to_string(rank) + ") does not fit hidden " + std::to_string(config.hidden) +
                                   ", ffn " + std::to_string(config.ffn) + ", layers " + std::to_string(config.layers));
  }
  std::unique_ptr<TransformerState> s(new TransformerState(config, layout, rank));
  DCP_RETURN_IF_ERROR(s->Build(fill));
  return s;
}

TransformerState::Shard* TransformerState::NewShard(std::string key, DType dtype, Shape global, std::vector<Box> boxes,
                                                    std::optional<FlatRange> range, bool vocab_padded, bool fill) {
  auto s = std::make_unique<Shard>();
  s->key = std::move(key);
  s->dtype = dtype;
  s->global = std::move(global);
  s->boxes = std::move(boxes);
  s->range = range;
  s->vocab_padded = vocab_padded;
  int64_t n = 0;
  for (const Box& b : s->boxes) n += b.num_elements();
  if (range) n = range->size();
  const size_t bytes = static_cast<size_t>(n) * DTypeSize(dtype);
  // At least one byte, so that an empty slice still has a valid address.
  s->data.assign(std::max<size_t>(bytes, 1), static_cast<char>(0xA5));
  if (fill) {
    std::string whole;
    for (const Box& b : s->boxes) AppendBox(s->key, dtype, s->global, b, std::numeric_limits<int64_t>::max(), &whole);
    const size_t skip = range ? static_cast<size_t>(range->begin) * DTypeSize(dtype) : 0;
    std::memcpy(s->data.data(), whole.data() + skip, bytes);
  }
  shards_.push_back(std::move(s));
  return shards_.back().get();
}

Status TransformerState::Build(bool fill) {
  const int T = layout_.tp, P = layout_.pp, D = layout_.dp;
  const int tp = rank_ % T;
  const int dp = (rank_ / T) % D;
  const int pp = rank_ / (T * D);
  const int64_t V = padded_vocab_, H = config_.hidden, L = config_.layers, F = config_.ffn;
  const int64_t lpp = L / P;
  const DType wdt = config_.weight_dtype;
  const bool dist = config_.optimizer && config_.distributed_optimizer;

  StateDict& model = sd_.Child("model");
  StateDict* optim = config_.optimizer ? &sd_.Child("optimizer") : nullptr;
  OptimizerStateViews views;  // for OptimizerStateDict (not distributed)

  // A plain parameter: its box of the global tensor, and its states.
  auto param = [&](const std::vector<std::string>& dirs, const std::string& leaf, const std::string& key,
                   const Shape& global, const Box& box, int prepend, bool tp_replicated, bool vocab_padded) -> Status {
    const ReplicaId replica = {0, tp_replicated ? tp : 0, dp};
    Shard* w = NewShard(key, wdt, global, {box}, std::nullopt, vocab_padded, fill);
    ShardedTensor t;
    t.key = key;
    t.dtype = wdt;
    t.local_shape.assign(box.shape.begin() + prepend, box.shape.end());
    t.data = TensorView(w->data.data(), wdt, t.local_shape);
    t.global_shape = global;
    t.global_offset = box.origin;
    t.prepend_axis_num = prepend;
    t.replica_id = replica;
    t.allow_shape_mismatch = vocab_padded;
    if (optim != nullptr) {
      if (dist) {
        const std::vector<int64_t> b = UnevenSliceBounds(NumElements(t.local_shape), D);
        const FlatRange range{b[static_cast<size_t>(dp)], b[static_cast<size_t>(dp) + 1]};
        for (const char* s : kStates) {
          const std::string skey = OptimizerStateKey(s, key);
          Shard* o = NewShard(skey, DType::kFloat32, global, {box}, range, vocab_padded, fill);
          DCP_ASSIGN_OR_RETURN(
              ShardedTensor st,
              FlatOptimizerStateTensor(t, s, range, TensorView(o->data.data(), DType::kFloat32, {range.size()})));
          At(*optim, dirs).Child(leaf).Add(s, std::move(st));
        }
      } else {
        for (const char* s : kStates) {
          Shard* o =
              NewShard(OptimizerStateKey(s, key), DType::kFloat32, global, {box}, std::nullopt, vocab_padded, fill);
          views[Join(dirs, leaf)][s] = TensorView(o->data.data(), DType::kFloat32, t.local_shape);
        }
      }
    }
    At(model, dirs).Add(leaf, std::move(t));
    return Status::OK();
  };

  // Vocabulary-parallel embedding and output layer.
  const Box vocab_box{{tp * (V / T), 0}, {V / T, H}};
  if (pp == 0) {
    DCP_RETURN_IF_ERROR(param({"embedding", "word_embeddings"}, "weight", "embedding.word_embeddings.weight", {V, H},
                              vocab_box, 0, false, true));
  }
  const std::string l = "decoder.layers.";
  for (int64_t k = 0; k < lpp; ++k) {
    const int64_t layer = pp * lpp + k;
    const std::vector<std::string> dirs = {"decoder", "layers", std::to_string(k)};
    const int64_t q = 3 * H / T, c = H / T, f = F / T;
    DCP_RETURN_IF_ERROR(param(dirs, "qkv_weight", l + "self_attention.linear_qkv.weight", {L, 3 * H, H},
                              Box{{layer, tp * q, 0}, {1, q, H}}, 1, false, false));
    DCP_RETURN_IF_ERROR(param(dirs, "proj_weight", l + "self_attention.linear_proj.weight", {L, H, H},
                              Box{{layer, 0, tp * c}, {1, H, c}}, 1, false, false));
    DCP_RETURN_IF_ERROR(param(dirs, "fc2_weight", l + "mlp.linear_fc2.weight", {L, H, F},
                              Box{{layer, 0, tp * f}, {1, H, f}}, 1, false, false));
    DCP_RETURN_IF_ERROR(
        param(dirs, "input_layernorm", l + "input_layernorm.weight", {L, H}, Box{{layer, 0}, {1, H}}, 1, true, false));
    DCP_RETURN_IF_ERROR(param(dirs, "pre_mlp_layernorm", l + "pre_mlp_layernorm.weight", {L, H},
                              Box{{layer, 0}, {1, H}}, 1, true, false));

    // Fused SwiGLU fc1: local [2F/T, H] = this rank's w rows, then its v rows.
    const std::string key = l + "mlp.linear_fc1.weight";
    const Shape global = {L, 2 * F, H};
    const std::vector<Box> halves = {Box{{layer, tp * f, 0}, {1, f, H}}, Box{{layer, F + tp * f, 0}, {1, f, H}}};
    Shard* w = NewShard(key, wdt, global, halves, std::nullopt, false, fill);
    DCP_ASSIGN_OR_RETURN(ShardedTensorFactory fc1, SwiGluFactory(key, TensorView(w->data.data(), wdt, {2 * f, H}), tp,
                                                                 T, {0, 0, dp}, 1, {{0, layer, L}}));
    if (optim != nullptr) {
      for (const char* s : kStates) {
        Shard* o = NewShard(OptimizerStateKey(s, key), DType::kFloat32, global, halves, std::nullopt, false, fill);
        const TensorView view(o->data.data(), DType::kFloat32, {2 * f, H});
        if (dist) {
          DCP_ASSIGN_OR_RETURN(ShardedTensorFactory sf, OptimizerStateFactory(fc1, s, view));
          At(*optim, dirs).Child("fc1_weight").Add(s, std::move(sf));
        } else {
          views[Join(dirs, "fc1_weight")][s] = view;
        }
      }
    }
    At(model, dirs).Add("fc1_weight", std::move(fc1));
  }
  if (pp == P - 1) {
    DCP_RETURN_IF_ERROR(param({"decoder", "final_layernorm"}, "weight", "decoder.final_layernorm.weight", {H},
                              Box{{0}, {H}}, 0, true, false));
    DCP_RETURN_IF_ERROR(param({"output_layer"}, "weight", "output_layer.weight", {V, H}, vocab_box, 0, false, true));
  }
  if (optim != nullptr && !dist) {
    DCP_ASSIGN_OR_RETURN(StateDict states, OptimizerStateDict(model, views));
    *optim = std::move(states);
  }

  sd_.Add("iteration", Value(static_cast<int64_t>(1000)));
  StateDict& args = sd_.Child("args");
  args.Add("hidden_size", Value(H)).Add("num_layers", Value(L)).Add("ffn_hidden_size", Value(F));
  args.Add("padded_vocab_size", Value(V)).Add("tensor_model_parallel_size", Value(static_cast<int64_t>(T)));
  args.Add("pipeline_model_parallel_size", Value(static_cast<int64_t>(P)));
  args.Add("use_distributed_optimizer", Value(dist));
  return Status::OK();
}

std::string TransformerState::Verify(int64_t saved_padded_vocab, std::string_view skip_prefix) const {
  for (const auto& sp : shards_) {
    const Shard& s = *sp;
    if (!skip_prefix.empty() && s.key.compare(0, skip_prefix.size(), skip_prefix) == 0) continue;
    std::string expected;
    for (const Box& b : s.boxes) {
      AppendBox(s.key, s.dtype, s.global, b, s.vocab_padded ? saved_padded_vocab : std::numeric_limits<int64_t>::max(),
                &expected);
    }
    const size_t elem = DTypeSize(s.dtype);
    if (s.range)
      expected =
          expected.substr(static_cast<size_t>(s.range->begin) * elem, static_cast<size_t>(s.range->size()) * elem);
    if (std::memcmp(expected.data(), s.data.data(), expected.size()) != 0) {
      size_t at = 0;
      while (at < expected.size() && expected[at] == s.data[at]) ++at;
      std::string where;
      for (const Box& b : s.boxes) where += (where.empty() ? "" : " + ") + b.ToString();
      if (s.range) {
        where += " flat [" + std::to_string(s.range->begin) + ", " + std::to_string(s.range->end) + ")";
      }
      return "rank " + std::to_string(rank_) + ": tensor '" + s.key + "' " + where + " differs at element " +
             std::to_string(at / elem);
    }
  }
  return "";
}

}  // namespace dcp::synthetic
