// Copyright (c) dcp authors.
//
// planner_bench: the metadata work of a put and a get at 1k-16k ranks, in
// one process and without data (issue 3, item 11: "planning at scale").
//
// A Megatron-like GPT (by default 83 layers x 12 tensors + embedding, output
// layer and final layernorm = 1,000 tensors; hidden 8192, ffn 28672, vocab
// 128256) is laid out at TP=8, PP = the largest power of two <= min(layer
// count, --max-pp, default 16) that divides N/8, DP = the rest (at 16,384
// ranks: TP8 x PP16 x DP128). Layer-norm and row-parallel biases
// are replicated over TP; everything is replicated over DP. The "distopt"
// variant adds the distributed optimizer's fp32 states (exp_avg, exp_avg_sq,
// main weights: `optimizer.state.<name>.<key>`) as flat slices: each
// (TP, PP) group's local parameters form one flat buffer that DP splits into
// near-equal ranges, so DP ranks hold distinct main replicas.
//
// For every N, the program builds what each rank would declare
// (sharding::DeclareState over ShardedTensors whose views point into a
// reserved, never-touched address range) and times what ONE rank runs in the
// real code path, with the real library functions:
//   decode   the put's exchange of declarations, receiving side: decoding
//            every rank's replica signature and declaration and assembling
//            them (manifest::AssembleGlobalDecls, CheckOwnReplicas); with
//            --exchange plain, the one-round exchange (DecodeRankDecl each)
//   validate sharding::ValidateGlobal
//   assign   fully parallel: write::HeldBoxes + write::WriteAssignment::Compute
//   merge    rank 0 only: protocol::MergeFragments of every rank's fragment
//            (the chunks the assignment gives it) + manifest::EncodeManifest
//   load     every rank: manifest::DecodeManifest + query::StepIndex
//   plan     query::ReadPlanner over the rank's requests in another layout
//            (TP=4, DP doubled: a TP reshard), Finish
//   read-once (optional load mode, reported apart) query::PlanReadOnce over
//            every rank's needs in that layout
// and prints per phase seconds (the fastest of --repeat runs: the machine
// is shared), the declaration bytes every rank receives, manifest bytes,
// chunks and manifest bytes per chunk, plus "figures" in --json (goal: at
// most 1 s per rank at the largest N, rank 0's merge included).

#include <sys/mman.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <fmt/format.h>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "dcp/sharded.h"
#include "engine/protocol/commit.h"
#include "engine/manifest/exchange_codec.h"
#include "engine/manifest/manifest_codec.h"
#include "engine/query/chunk_index.h"
#include "engine/query/planner.h"
#include "engine/query/read_once_schedule.h"
#include "dcp/options.h"
#include "engine/sharding/chunking.h"
#include "engine/sharding/flatten.h"
#include "engine/sharding/pieces.h"
#include "engine/sharding/validation.h"
#include "engine/write/assignment.h"

namespace {

using dcp::Box;
using dcp::DType;
using dcp::Shape;
using dcp::ShardedTensor;

struct Model {
  int layers = 83;
  int64_t hidden = 8192;
  int64_t ffn = 28672;
  int64_t vocab = 128256;
  int64_t kv = 1024;  // grouped-query attention: 8 KV heads of 128
  bool distopt = false;
};

struct Layout {
  int tp = 8, pp = 1, dp = 1;
  int world() const { return tp * pp * dp; }
};

// One parameter of the model: global shape, the axis TP splits (-1:
// replicated over TP), the pipeline stage that holds it.
struct Param {
  std::string key;
  Shape shape;
  int tp_axis;
  int layer;  // -1 embedding (first stage), -2 output side (last stage)
};

std::vector<Param> Params(const Model& m) {
  std::vector<Param> ps;
  const int64_t h = m.hidden, qkv = h + 2 * m.kv;
  ps.push_back({"embedding.word_embeddings.weight", {m.vocab, h}, 0, -1});
  for (int l = 0; l < m.layers; ++l) {
    const std::string p = "decoder.layers." + std::to_string(l) + ".";
    ps.push_back({p + "input_layernorm.weight", {h}, -1, l});
    ps.push_back({p + "input_layernorm.bias", {h}, -1, l});
    ps.push_back({p + "self_attention.linear_qkv.weight", {qkv, h}, 0, l});
    ps.push_back({p + "self_attention.linear_qkv.bias", {qkv}, 0, l});
    ps.push_back({p + "self_attention.linear_proj.weight", {h, h}, 1, l});
    ps.push_back({p + "self_attention.linear_proj.bias", {h}, -1, l});
    ps.push_back({p + "pre_mlp_layernorm.weight", {h}, -1, l});
    ps.push_back({p + "pre_mlp_layernorm.bias", {h}, -1, l});
    ps.push_back({p + "mlp.linear_fc1.weight", {2 * m.ffn, h}, 0, l});
    ps.push_back({p + "mlp.linear_fc1.bias", {2 * m.ffn}, 0, l});
    ps.push_back({p + "mlp.linear_fc2.weight", {h, m.ffn}, 1, l});
    ps.push_back({p + "mlp.linear_fc2.bias", {h}, -1, l});
  }
  ps.push_back({"decoder.final_layernorm.weight", {h}, -1, -2});
  ps.push_back({"decoder.final_layernorm.bias", {h}, -1, -2});
  ps.push_back({"output_layer.weight", {m.vocab, h}, 0, -2});
  return ps;
}

int StageOf(const Param& p, const Model& m, int pp) {
  if (p.layer == -1) return 0;
  if (p.layer == -2) return pp - 1;
  return static_cast<int>(static_cast<int64_t>(p.layer) * pp / m.layers);
}

// A reserved, never-touched address range: views of the fake shards point
// into it, so view arithmetic is valid and no memory is used.
class Arena {
 public:
  explicit Arena(size_t bytes) : size_(bytes) {
    base_ = mmap(nullptr, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base_ == MAP_FAILED) {
      std::perror("mmap");
      std::exit(1);
    }
  }
  ~Arena() { munmap(base_, size_); }
  char* at(size_t offset) const { return static_cast<char*>(base_) + (offset % (size_ / 2)); }

 private:
  void* base_;
  size_t size_;
};

// The shards rank `rank` holds (save) or requests (load) under `lay`.
std::vector<ShardedTensor> RankShards(const Model& m, const std::vector<Param>& params, const Layout& lay, int rank,
                                      const Arena& arena) {
  const int tp = rank % lay.tp, pp = (rank / lay.tp) % lay.pp, dp = rank / (lay.tp * lay.pp);
  std::vector<ShardedTensor> out;
  size_t cursor = 0;
  struct Local {
    const Param* p;
    Shape shape, offset;
    int64_t numel;
  };
  std::vector<Local> locals;
  for (const Param& p : params) {
    if (StageOf(p, m, lay.pp) != pp) continue;
    Shape shape = p.shape, offset(p.shape.size(), 0);
    if (p.tp_axis >= 0) {
      const int64_t n = p.shape[p.tp_axis] / lay.tp;
      shape[p.tp_axis] = n;
      offset[p.tp_axis] = n * tp;
    }
    locals.push_back({&p, shape, offset, dcp::NumElements(shape)});
    ShardedTensor t;
    t.key = p.key;
    t.dtype = DType::kBFloat16;
    t.local_shape = shape;
    t.global_shape = p.shape;
    t.global_offset = offset;
    t.replica_id = {0, p.tp_axis >= 0 ? 0 : tp, dp};
    t.data = dcp::TensorView(arena.at(cursor), t.dtype, shape);
    cursor += static_cast<size_t>(locals.back().numel) * 2 + 64;
    out.push_back(std::move(t));
  }
  if (!m.distopt) return out;
  // The group's flat buffer: its local parameters in order; DP rank d holds
  // [d*S/DP, (d+1)*S/DP) of it.
  int64_t total = 0;
  for (const Local& l : locals) total += l.numel;
  const int64_t lo = total * dp / lay.dp, hi = total * (dp + 1) / lay.dp;
  int64_t at = 0;
  for (const Local& l : locals) {
    const int64_t b = std::max(lo, at), e = std::min(hi, at + l.numel);
    if (b < e) {
      for (const char* state : {"exp_avg", "exp_avg_sq", "fp32_param"}) {
        ShardedTensor t;
        t.key = std::string("optimizer.state.") + state + "." + l.p->key;
        t.dtype = DType::kFloat32;
        t.local_shape = l.shape;
        t.global_shape = l.p->shape;
        t.global_offset = l.offset;
        t.flattened_range = dcp::FlatRange{b - at, e - at};
        t.replica_id = {0, l.p->tp_axis >= 0 ? 0 : tp, 0};
        t.data = dcp::TensorView(arena.at(cursor), t.dtype, Shape{e - b});
        cursor += static_cast<size_t>(e - b) * 4 + 64;
        out.push_back(std::move(t));
      }
    }
    at += l.numel;
  }
  return out;
}

// Runs f `repeat` times; the fastest run's seconds (the machine is shared).
template <typename F>
double Best(int repeat, F&& f) {
  double best = 1e300;
  for (int i = 0; i < std::max(1, repeat); ++i) {
    dcp::bench::Timer t;
    f();
    best = std::min(best, t.Seconds());
  }
  return best;
}

dcp::sharding::FlatState AsFlat(const std::vector<ShardedTensor>& shards) {
  dcp::sharding::FlatState flat;
  for (const ShardedTensor& t : shards) flat.tensors.push_back({t.key, &t});
  return flat;
}

Layout SaveLayout(const Model& m, int n, int max_pp) {
  Layout lay;
  lay.tp = 8;
  const int rest = n / lay.tp;
  lay.pp = 1;
  while (lay.pp * 2 <= std::min(m.layers, max_pp) && rest % (lay.pp * 2) == 0) lay.pp *= 2;
  lay.dp = rest / lay.pp;
  return lay;
}

struct Result {
  int ranks = 0;
  Layout save, load;
  size_t decl_bytes = 0;  // all ranks' declarations (what each rank receives)
  size_t fragment_bytes = 0;
  size_t manifest_bytes = 0;
  size_t chunks = 0;
  size_t tensors = 0;
  size_t shards = 0;
  size_t planned_reads = 0;
  size_t replica_sets = 0;
  size_t needs = 0;  // read-once: chunk needs of all ranks
  size_t read_once_rounds = 0;
  double read_once = 0;  // read-once schedule (not in per_rank: optional)
  double decode = 0, validate = 0, assign = 0, merge = 0, load_manifest = 0, plan = 0;
  double per_rank() const { return decode + validate + assign + load_manifest + plan; }
};

void Die(const dcp::Status& s, const char* what) {
  fmt::print(stderr, "planner_bench: {}: {}\n", what, s.ToString());
  std::exit(1);
}

Result Run(const Model& m, int n, int max_pp, uint64_t chunk_bytes, bool fully_parallel, bool plain_exchange,
           int probe_rank, int repeat, bool read_once) {
  Result res;
  res.ranks = n;
  res.save = SaveLayout(m, n, max_pp);
  res.load = Layout{res.save.tp / 2, res.save.pp, res.save.dp * 2};
  const std::vector<Param> params = Params(m);
  Arena arena(size_t{1} << 44);

  // What every rank sends (built outside the timed region, as each rank
  // builds its own in parallel): compact exchange (manifest/exchange_codec.h)
  // round 1 signatures and round 2 declarations, or the plain exchange's one
  // declaration per rank (--exchange plain: the protocol before the compact
  // one, for comparison).
  std::vector<std::string> all(static_cast<size_t>(n));
  std::vector<std::string> signatures(static_cast<size_t>(n));
  {
    // Pass 1 signatures, pass 2 declarations (each rank's shards rebuilt, so
    // that no more than one rank's declaration is held at a time).
    std::vector<dcp::manifest::ReplicaSignature> sigs;
    auto declare = [&](int r) {
      const std::vector<ShardedTensor> shards = RankShards(m, params, res.save, r, arena);
      return dcp::sharding::DeclareState(AsFlat(shards), dcp::codec::Hash128{});
    };
    for (int r = 0; r < n; ++r) {
      dcp::manifest::RankDecl d = declare(r);
      res.shards += d.tensors.size();
      if (plain_exchange) {
        all[static_cast<size_t>(r)] = dcp::manifest::EncodeRankDecl(d);
        continue;
      }
      sigs.push_back(dcp::manifest::SplitRankDecl(std::move(d)).signature);
      signatures[static_cast<size_t>(r)] = dcp::manifest::EncodeSignature(sigs.back());
      res.decl_bytes += signatures[static_cast<size_t>(r)].size();
    }
    if (!plain_exchange) {
      const std::vector<int> rep = dcp::manifest::Representatives(sigs);
      for (int r = 0; r < n; ++r) {
        all[static_cast<size_t>(r)] = dcp::manifest::EncodeExchangeDecl(dcp::manifest::SplitRankDecl(declare(r)), rep[r] == r);
      }
    }
    for (const std::string& a : all) res.decl_bytes += a.size();
  }
  // The probe rank's own non-main shards (it checks them against its set).
  const dcp::manifest::SplitDecl probe = dcp::manifest::SplitRankDecl(
      dcp::sharding::DeclareState(AsFlat(RankShards(m, params, res.save, probe_rank % n, arena)), {}));

  // One rank: decode every declaration, validate, assign.
  std::vector<dcp::manifest::RankDecl> decls;
  dcp::manifest::GlobalDecls global;
  res.decode = Best(repeat, [&] {
  decls.clear();
  if (plain_exchange) {
    decls.reserve(all.size());
    for (int r = 0; r < n; ++r) {
      auto d = dcp::manifest::DecodeRankDecl(all[static_cast<size_t>(r)], r);
      if (!d.ok()) Die(d.status(), "decode declarations");
      decls.push_back(std::move(d).value());
    }
  } else {
    std::vector<dcp::manifest::ReplicaSignature> sigs;
    for (int r = 0; r < n; ++r) {
      auto sig = dcp::manifest::DecodeSignature(signatures[static_cast<size_t>(r)], r);
      if (!sig.ok()) Die(sig.status(), "decode signatures");
      sigs.push_back(*sig);
    }
    auto g = dcp::manifest::AssembleGlobalDecls(sigs, all);
    if (!g.ok()) Die(g.status(), "assemble declarations");
    global = std::move(g).value();
    if (dcp::Status s = dcp::manifest::CheckOwnReplicas(global, probe_rank % n, probe.replicas); !s.ok()) {
      Die(s, "check own replicas");
    }
    res.replica_sets = global.replica_sets.size();
  }
  });
  all.clear();
  all.shrink_to_fit();

  dcp::Result<std::vector<dcp::manifest::TensorEntry>> entries = dcp::Status::Internal("not run");
  res.validate = Best(repeat, [&] {
    entries = plain_exchange ? dcp::sharding::ValidateGlobal(decls) : dcp::sharding::ValidateGlobal(global);
    if (!entries.ok()) Die(entries.status(), "validate");
  });
  res.tensors = entries->size();

  std::optional<dcp::write::WriteAssignment> assignment;
  if (fully_parallel) {
    res.assign = Best(repeat, [&] {
      assignment = plain_exchange
                       ? dcp::write::WriteAssignment::Compute(dcp::write::HeldBoxes(decls), chunk_bytes)
                       : dcp::write::WriteAssignment::Compute(dcp::write::HeldBoxes(global), chunk_bytes);
    });
  }
  decls.clear();
  decls.shrink_to_fit();
  global = dcp::manifest::GlobalDecls();

  // Every rank's fragment: the chunks it writes (as the writer cuts them),
  // with plausible record references. Built untimed (each rank builds its
  // own while writing).
  std::vector<std::string> fragments(static_cast<size_t>(n));
  for (int r = 0; r < n; ++r) {
    const std::vector<ShardedTensor> shards = RankShards(m, params, res.save, r, arena);
    dcp::write::WriteRequest request;
    for (const ShardedTensor& t : shards) {
      if (assignment) assignment->AddTensor(t, r, &request);
      else if (t.is_main_replica()) request.AddTensor(t);
    }
    std::map<std::string, dcp::manifest::TensorEntry> by_key;
    for (const auto& piece : request.tensors) {
      const ShardedTensor& t = *piece.tensor;
      const size_t elem = dcp::DTypeSize(t.dtype);
      dcp::manifest::TensorEntry& e = by_key[t.key];
      e.key = t.key;
      e.dtype = t.dtype;
      e.global_shape = t.global_shape;
      for (Box& b : dcp::sharding::ChunkBox(piece.piece.box, elem, std::max<uint64_t>(chunk_bytes, elem))) {
        dcp::manifest::ChunkEntry c;
        c.record.store_rank = static_cast<uint32_t>(r);
        c.record.generation = uint64_t{1} << 60;
        c.record.raw_size = static_cast<uint64_t>(b.num_elements()) * elem;
        c.record.stored_size = c.record.raw_size + 48;
        c.record.checksum = {0x9e3779b97f4a7c15ull * (e.chunks.size() + 1) ^ r, 0xc2b2ae3d27d4eb4full + r};
        c.box = std::move(b);
        e.chunks.push_back(std::move(c));
      }
    }
    dcp::manifest::StepManifest fragment;
    for (auto& [key, e] : by_key) fragment.tensors.push_back(std::move(e));
    fragments[static_cast<size_t>(r)] = dcp::manifest::EncodeManifestPayload(fragment);
    res.fragment_bytes += fragments[static_cast<size_t>(r)].size();
  }

  // Rank 0: merge, check, encode.
  dcp::manifest::StepManifest skeleton;
  skeleton.step = 1;
  skeleton.generation = uint64_t{1} << 60;
  skeleton.world_size = static_cast<uint32_t>(n);
  skeleton.tensors = std::move(entries).value();
  std::string manifest_bytes;
  res.merge = Best(repeat, [&] {
    std::vector<std::string_view> views(fragments.begin(), fragments.end());
    auto merged = dcp::protocol::MergeFragments(skeleton, views);
    if (!merged.ok()) Die(merged.status(), "merge");
    res.chunks = 0;
    for (const auto& t : merged->tensors) res.chunks += t.chunks.size();
    manifest_bytes = dcp::manifest::EncodeManifest(*merged);
  });
  fragments.clear();
  fragments.shrink_to_fit();
  res.manifest_bytes = manifest_bytes.size();

  // Every rank: decode the manifest, then plan its requests in the load layout.
  std::unique_ptr<dcp::query::StepIndex> index;
  res.load_manifest = Best(repeat, [&] {
    auto decoded = dcp::manifest::DecodeManifest(manifest_bytes, "simulated manifest");
    if (!decoded.ok()) Die(decoded.status(), "decode manifest");
    index = std::make_unique<dcp::query::StepIndex>(
        std::make_shared<const dcp::manifest::StepManifest>(std::move(decoded).value()));
  });

  // Planning builds the chunk index of each tensor it touches on first use:
  // a fresh StepIndex each time (the manifest shared).
  std::vector<ShardedTensor> requests = RankShards(m, params, res.load, probe_rank % n, arena);
  res.plan = Best(repeat, [&] {
    dcp::query::StepIndex fresh(index->shared_manifest());
    dcp::query::ReadPlanner planner(&fresh);
    for (const ShardedTensor& t : requests) {
      dcp::Status s = planner.AddShard(t, "request '" + t.key + "'");
      if (!s.ok()) Die(s, "plan");
    }
    res.planned_reads = planner.Finish().reads.size();
  });

  if (read_once) {
    // Read-once load (LoadOptions::read_once): every rank computes the same
    // schedule from every rank's needs (manifest ordinals of the chunks it
    // plans to read). The needs are built untimed, each rank's from its own
    // plan; the all-gather and decoding of the needs are not timed either.
    const dcp::manifest::StepManifest& sm = index->manifest();
    std::vector<uint64_t> first(sm.tensors.size() + 1, 0);
    for (size_t i = 0; i < sm.tensors.size(); ++i) first[i + 1] = first[i] + sm.tensors[i].chunks.size();
    std::vector<std::vector<dcp::query::ChunkOrdinal>> needs(static_cast<size_t>(n));
    for (int r = 0; r < n; ++r) {
      const std::vector<ShardedTensor> mine = RankShards(m, params, res.load, r, arena);
      dcp::query::ReadPlanner planner(index.get());
      for (const ShardedTensor& t : mine) {
        if (dcp::Status s = planner.AddShard(t, "request '" + t.key + "'"); !s.ok()) Die(s, "plan");
      }
      auto& v = needs[static_cast<size_t>(r)];
      for (const dcp::query::ChunkRead& c : planner.Finish().reads) {
        const size_t ti = static_cast<size_t>(c.tensor - sm.tensors.data());
        v.push_back(first[ti] + static_cast<uint64_t>(c.chunk - c.tensor->chunks.data()));
      }
      std::sort(v.begin(), v.end());
      res.needs += v.size();
    }
    auto stored = [&](dcp::query::ChunkOrdinal c) {
      const size_t ti = static_cast<size_t>(std::upper_bound(first.begin(), first.end(), c) - first.begin()) - 1;
      return sm.tensors[ti].chunks[c - first[ti]].record.stored_size;
    };
    const uint64_t budget = dcp::LoadOptions().max_inflight_bytes / 4;
    res.read_once = Best(repeat, [&] {
      const dcp::query::ReadOnceSchedule schedule = dcp::query::PlanReadOnce(needs, stored, budget);
      res.read_once_rounds = schedule.rounds();
    });
  }
  return res;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"planner_bench: put/get metadata work per rank at 1k-16k simulated ranks (no data)"};
  Model m;
  std::vector<int> ranks{1024, 4096, 16384};
  uint64_t chunk_mib = 8;
  bool no_fully_parallel = false;
  bool no_read_once = false;
  std::string exchange = "compact";
  std::string variants = "both";
  std::string json_path;
  int probe_rank = -1;
  int max_pp = 16;
  int repeat = 3;
  app.add_option("--ranks", ranks, "simulated world sizes (multiples of 8)");
  app.add_option("--layers", m.layers, "transformer layers (12 tensors each)");
  app.add_option("--hidden", m.hidden, "hidden size");
  app.add_option("--ffn", m.ffn, "MLP size");
  app.add_option("--vocab", m.vocab, "vocabulary (padded)");
  app.add_option("--max-pp", max_pp, "largest pipeline size (a power of two <= layers; the rest is DP)");
  app.add_option("--chunk-mib", chunk_mib, "SaveOptions::chunk_bytes in MiB");
  app.add_option("--variants", variants, "model, distopt or both")->check(CLI::IsMember({"model", "distopt", "both"}));
  app.add_option("--exchange", exchange, "compact (non-main replicas sent once per distinct set) or plain")
      ->check(CLI::IsMember({"compact", "plain"}));
  app.add_flag("--no-read-once", no_read_once, "skip the read-once schedule (it plans every rank's load)");
  app.add_flag("--no-fully-parallel", no_fully_parallel, "plain save: main replicas write (no assignment)");
  app.add_option("--probe-rank", probe_rank, "the rank whose load is planned (default: N/2 + 3)");
  app.add_option("--repeat", repeat, "runs of each timed phase; the fastest counts");
  app.add_option("--json", json_path, "write results here");
  CLI11_PARSE(app, argc, argv);

  nlohmann::json results = nlohmann::json::array();
  std::vector<dcp::bench::Figure> figures;
  fmt::print("planner_bench: {} tensors ({} layers, hidden {}, ffn {}, vocab {}), chunks {} MiB, {}, {} exchange\n",
             12 * m.layers + 4, m.layers, m.hidden, m.ffn, m.vocab, chunk_mib,
             no_fully_parallel ? "main replicas write" : "fully parallel", exchange);
  fmt::print("{:<8} {:>6} {:<12} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>10} {:>10} {:>9} {:>8}\n", "variant",
             "ranks", "save->load", "decode", "valid", "assign", "mload", "plan", "total", "r0 merge", "decl MB",
             "manif MB", "chunks", "B/chunk");
  for (const char* variant : {"model", "distopt"}) {
    if (variants != "both" && variants != variant) continue;
    m.distopt = std::string(variant) == "distopt";
    for (int n : ranks) {
      if (n % 8 != 0) {
        fmt::print(stderr, "planner_bench: --ranks {} is not a multiple of 8\n", n);
        return 2;
      }
      const Result r = Run(m, n, max_pp, chunk_mib << 20, !no_fully_parallel, exchange == "plain",
                           probe_rank >= 0 ? probe_rank : n / 2 + 3, repeat, !no_read_once);
      const double per_chunk = static_cast<double>(r.manifest_bytes) / static_cast<double>(std::max<size_t>(1, r.chunks));
      fmt::print("{:<8} {:>6} {:<12} {:>8.3f} {:>8.3f} {:>8.3f} {:>8.3f} {:>8.3f} {:>8.3f} {:>9.3f} {:>10.1f} {:>10.1f} "
                 "{:>9} {:>8.1f}\n",
                 variant, n,
                 fmt::format("{}x{}x{}>{}x{}x{}", r.save.tp, r.save.pp, r.save.dp, r.load.tp, r.load.pp, r.load.dp),
                 r.decode, r.validate, r.assign, r.load_manifest, r.plan, r.per_rank(), r.merge, r.decl_bytes / 1e6,
                 r.manifest_bytes / 1e6, r.chunks, per_chunk);
      if (!no_read_once) {
        fmt::print("{:<8} {:>6} read-once schedule (optional load mode): {:.3f} s per rank over {} needs, {} rounds\n",
                   "", n, r.read_once, r.needs, r.read_once_rounds);
      }
      std::fflush(stdout);
      results.push_back({{"variant", variant},
                         {"ranks", n},
                         {"save_layout", {r.save.tp, r.save.pp, r.save.dp}},
                         {"load_layout", {r.load.tp, r.load.pp, r.load.dp}},
                         {"tensors", r.tensors},
                         {"shards", r.shards},
                         {"decode_declarations_s", r.decode},
                         {"validate_s", r.validate},
                         {"assign_s", r.assign},
                         {"manifest_load_s", r.load_manifest},
                         {"plan_s", r.plan},
                         {"per_rank_s", r.per_rank()},
                         {"rank0_merge_encode_s", r.merge},
                         {"declaration_bytes", r.decl_bytes},
                         {"fragment_bytes", r.fragment_bytes},
                         {"manifest_bytes", r.manifest_bytes},
                         {"chunks", r.chunks},
                         {"manifest_bytes_per_chunk", per_chunk},
                         {"planned_reads", r.planned_reads},
                         {"exchange", exchange},
                         {"replica_sets", r.replica_sets},
                         {"read_once_schedule_s", r.read_once},
                         {"read_once_needs", r.needs},
                         {"read_once_rounds", r.read_once_rounds}});
      const std::string at = std::string(variant) + " @" + std::to_string(n) + " ranks";
      const bool largest = n == *std::max_element(ranks.begin(), ranks.end());
      figures.push_back({at + ": put+get metadata s per rank", r.per_rank(), largest ? "<= 1" : ""});
      figures.push_back({at + ": rank 0 (with merge+encode) s", r.per_rank() + r.merge, largest ? "<= 1" : ""});
      figures.push_back({at + ": manifest bytes per chunk", per_chunk, ""});
      if (!no_read_once) figures.push_back({at + ": read-once schedule s per rank", r.read_once, ""});
    }
  }
  if (!json_path.empty()) {
    std::ofstream(json_path) << nlohmann::json({{"bench", "planner"},
                                                {"figures", dcp::bench::FiguresJson(figures)},
                                                {"results", results}})
                                    .dump(2)
                             << "\n";
  }
  return 0;
}
