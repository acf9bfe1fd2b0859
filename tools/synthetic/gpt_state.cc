// Copyright (c) dcp authors.

#include "tools/synthetic/gpt_state.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace dcp::synthetic {
namespace {

uint64_t SplitMix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t KeySeed(const std::string& key, uint64_t seed) {
  uint64_t h = 1469598103934665603ULL ^ seed;
  for (unsigned char c : key) h = (h ^ c) * 1099511628211ULL;
  return h;
}

// About N(0, 0.02): a scaled sum of four uniforms (Irwin-Hall).
float Normalish(uint64_t bits) {
  const float u = static_cast<float>(bits & 0xffff) + static_cast<float>((bits >> 16) & 0xffff) +
                  static_cast<float>((bits >> 32) & 0xffff) + static_cast<float>((bits >> 48) & 0xffff);
  return (u / 65536.0f - 2.0f) * (0.02f * 1.7320508f);
}

void Encode(DType dtype, float v, char* out) {
  if (dtype == DType::kFloat32) {
    std::memcpy(out, &v, 4);
  } else {  // bfloat16: upper half of the float
    uint32_t b;
    std::memcpy(&b, &v, 4);
    const uint16_t h = static_cast<uint16_t>(b >> 16);
    std::memcpy(out, &h, 2);
  }
}

// Fills (or checks) a contiguous buffer holding `box` of a tensor.
template <bool kCheck>
bool Generate(const std::string& key, uint64_t seed, DType dtype, const Shape& global, const Box& box, char* data) {
  const uint64_t kseed = KeySeed(key, seed);
  const bool square = key.find("exp_avg_sq") != std::string::npos;
  const size_t elem = DTypeSize(dtype);
  const size_t rank = box.shape.size();
  if (box.num_elements() == 0) return true;
  const int64_t row = rank ? box.shape[rank - 1] : 1;
  std::vector<int64_t> idx(rank ? rank - 1 : 0, 0);
  char tmp[8];
  for (;;) {
    int64_t base = 0;
    for (size_t d = 0; d + 1 < rank; ++d) base = base * global[d] + box.origin[d] + idx[d];
    if (rank) base = base * global[rank - 1] + box.origin[rank - 1];
    for (int64_t j = 0; j < row; ++j) {
      float v = Normalish(SplitMix(kseed + static_cast<uint64_t>(base + j)));
      if (square) v = v * v;
      if (kCheck) {
        Encode(dtype, v, tmp);
        if (std::memcmp(tmp, data, elem) != 0) return false;
      } else {
        Encode(dtype, v, data);
      }
      data += elem;
    }
    size_t d = idx.size();
    for (;;) {
      if (d == 0) return true;
      --d;
      if (++idx[d] < box.shape[d]) break;
      idx[d] = 0;
    }
  }
}

}  // namespace

std::string Layout::ToString() const {
  return "TP" + std::to_string(tp) + "xPP" + std::to_string(pp) + "xDP" + std::to_string(dp);
}

std::string RngStateBytes(int pp, int tp) {
  std::string s = "rng-state pp=" + std::to_string(pp) + " tp=" + std::to_string(tp) + ";";
  for (int i = 0; i < 64; ++i) s.push_back(static_cast<char>(SplitMix(static_cast<uint64_t>(pp * 1000 + tp * 10 + i))));
  return s;
}

uint64_t GlobalBytes(const GptConfig& c) {
  const uint64_t w = DTypeSize(c.weight_dtype);
  const int64_t H = c.hidden, L = c.layers, F = c.ffn, V = c.vocab;
  const uint64_t weights = static_cast<uint64_t>(2 * V * H + L * (3 * H * H + 3 * H + H * H + H + F * H + F + H * F + H + 4 * H) + H);
  return weights * w + (c.optimizer ? weights * 4 * 3 : 0);
}

GptState::GptState(const GptConfig& config, const Layout& layout, int rank, bool fill)
    : config_(config), layout_(layout), rank_(rank) {
  const int T = layout.tp, P = layout.pp;
  const int tp = rank % T;
  const int dp = (rank / T) % layout.dp;
  const int pp = rank / (T * layout.dp);
  const int64_t V = config.vocab, H = config.hidden, L = config.layers, F = config.ffn;
  const int64_t lpp = L / P;

  struct Param {
    std::string key;
    Shape global;
    int split_axis;  // -1: replicated over TP
    int prepend;
  };
  std::vector<Param> params;
  if (pp == 0) params.push_back({"embedding.word_embeddings.weight", {V, H}, 0, 0});
  const std::string l = "decoder.layers.";
  params.push_back({l + "self_attention.linear_qkv.weight", {L, 3 * H, H}, 1, 1});
  params.push_back({l + "self_attention.linear_qkv.bias", {L, 3 * H}, 1, 1});
  params.push_back({l + "self_attention.linear_proj.weight", {L, H, H}, 2, 1});
  params.push_back({l + "self_attention.linear_proj.bias", {L, H}, -1, 1});
  params.push_back({l + "mlp.linear_fc1.weight", {L, F, H}, 1, 1});
  params.push_back({l + "mlp.linear_fc1.bias", {L, F}, 1, 1});
  params.push_back({l + "mlp.linear_fc2.weight", {L, H, F}, 2, 1});
  params.push_back({l + "mlp.linear_fc2.bias", {L, H}, -1, 1});
  params.push_back({l + "input_layernorm.weight", {L, H}, -1, 1});
  params.push_back({l + "input_layernorm.bias", {L, H}, -1, 1});
  params.push_back({l + "pre_mlp_layernorm.weight", {L, H}, -1, 1});
  params.push_back({l + "pre_mlp_layernorm.bias", {L, H}, -1, 1});
  if (pp == P - 1) {
    params.push_back({"decoder.final_layernorm.weight", {H}, -1, 0});
    params.push_back({"output_layer.weight", {V, H}, 0, 0});
  }

  StateDict& model = sd_.Child("model");
  StateDict* optim = config.optimizer ? &sd_.Child("optimizer") : nullptr;
  size_t n = 0;
  for (const Param& p : params) n += p.prepend ? static_cast<size_t>(lpp) : 1;
  shards_.reserve(n * (config.optimizer ? 4 : 1));
  for (const Param& p : params) {
    const ReplicaId replica = {0, p.split_axis < 0 ? tp : 0, dp};
    const int64_t copies = p.prepend ? lpp : 1;
    for (int64_t k = 0; k < copies; ++k) {
      Box box{Shape(p.global.size(), 0), p.global};
      if (p.prepend) {
        box.origin[0] = pp * lpp + k;
        box.shape[0] = 1;
      }
      if (p.split_axis >= 0) {
        box.shape[p.split_axis] = p.global[p.split_axis] / T;
        box.origin[p.split_axis] = tp * box.shape[p.split_axis];
      }
      AddTensor(p.key, config.weight_dtype, p.global, box, p.prepend, replica, fill, &model);
      if (optim != nullptr) {
        for (const char* s : {"exp_avg", "exp_avg_sq", "fp32_param"}) {
          AddTensor(std::string("optimizer.state.") + s + "." + p.key, DType::kFloat32, p.global, box, p.prepend,
                    replica, fill, optim);
        }
      }
    }
  }
  ShardedObject rng;
  rng.key = "rng_state";
  rng.global_shape = {P, T};
  rng.global_offset = {pp, tp};
  rng.replica_id = {dp};
  rng.data = RngStateBytes(pp, tp);
  sd_.Add("rng_state", std::move(rng));
  sd_.Add("iteration", Value(static_cast<int64_t>(0)));
  StateDict& args = sd_.Child("args");
  args.Add("hidden_size", Value(H)).Add("num_layers", Value(L)).Add("ffn_hidden_size", Value(F));
  args.Add("padded_vocab_size", Value(V)).Add("lr", Value(3e-4)).Add("optimizer", Value("adam"));
}

void GptState::AddTensor(const std::string& key, DType dtype, const Shape& global, const Box& box, int prepend,
                         const ReplicaId& replica, bool fill, StateDict* where) {
  auto shard = std::make_unique<Shard>();
  shard->key = key;
  shard->global = global;
  shard->box = box;
  const uint64_t bytes = static_cast<uint64_t>(box.num_elements()) * DTypeSize(dtype);
  shard->data.assign(bytes, 0);
  if (fill) Generate<false>(key, seed_, dtype, global, box, shard->data.data());
  local_bytes_ += bytes;
  shard->main = IsMainReplica(replica);
  if (shard->main) main_bytes_ += bytes;
  ShardedTensor t;
  t.key = key;
  t.dtype = dtype;
  t.local_shape.assign(box.shape.begin() + prepend, box.shape.end());
  t.data = TensorView(shard->data.data(), dtype, t.local_shape);
  t.global_shape = global;
  t.global_offset = box.origin;
  t.prepend_axis_num = prepend;
  t.replica_id = replica;
  std::string name = key;
  if (prepend) name += "." + std::to_string(box.origin[0]);
  where->Add(name, std::move(t));
  shards_.push_back(std::move(shard));
  dtypes_.push_back(dtype);
}

void GptState::RequestSavedObjectCells(const StepMetadata& saved) {
  ShardedObject& rng = sd_.object(sd_.Find("rng_state"));
  for (const ObjectInfo& o : saved.objects) {
    if (o.key != rng.key || o.global_shape.size() != 2) continue;
    rng.global_offset = {rng.global_offset[0] % o.global_shape[0], rng.global_offset[1] % o.global_shape[1]};
    rng.global_shape = o.global_shape;
    return;
  }
}

std::vector<std::pair<const char*, size_t>> GptState::MainReplicaBuffers() const {
  std::vector<std::pair<const char*, size_t>> out;
  for (const auto& s : shards_) {
    if (s->main && !s->data.empty()) out.emplace_back(s->data.data(), s->data.size());
  }
  return out;
}

std::vector<std::pair<const char*, size_t>> GptState::LocalBuffers() const {
  std::vector<std::pair<const char*, size_t>> out;
  for (const auto& s : shards_) {
    if (!s->data.empty()) out.emplace_back(s->data.data(), s->data.size());
  }
  return out;
}

std::vector<GptState::MainShard> GptState::MainShards() {
  std::vector<MainShard> out;
  for (size_t i = 0; i < shards_.size(); ++i) {
    Shard& s = *shards_[i];
    if (s.main && !s.data.empty()) out.push_back({s.key, s.box, dtypes_[i], s.data.data()});
  }
  return out;
}

std::string GptState::Verify() const {
  for (size_t i = 0; i < shards_.size(); ++i) {
    const Shard& s = *shards_[i];
    std::vector<char> copy = s.data;
    if (!Generate<true>(s.key, seed_, dtypes_[i], s.global, s.box, copy.data())) {
      return "tensor '" + s.key + "' region " + s.box.ToString() + " differs on rank " + std::to_string(rank_);
    }
  }
  const size_t obj = sd_.Find("rng_state");
  if (obj != StateDict::npos) {
    const ShardedObject& o = sd_.object(obj);
    if (o.data != RngStateBytes(static_cast<int>(o.global_offset[0]), static_cast<int>(o.global_offset[1]))) {
      return "object 'rng_state' cell differs on rank " + std::to_string(rank_);
    }
  }
  return "";
}

void GptState::Perturb(uint64_t seed) {
  seed_ = seed;
  for (size_t i = 0; i < shards_.size(); ++i) {
    Shard& s = *shards_[i];
    Generate<false>(s.key, seed_, dtypes_[i], s.global, s.box, s.data.data());
  }
}

void GptState::Clear() {
  for (auto& s : shards_) std::fill(s->data.begin(), s->data.end(), 0);
}

}  // namespace dcp::synthetic
