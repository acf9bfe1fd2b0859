// Copyright (c) dcp authors.
//
// The model reconfiguration matrix and the resharding cases of issue 3 under
// real mpirun (driven by ctest, see CMakeLists.txt):
//
//   matrix_mpi_test matrix ROOT TP PP DP TP PP DP [name=value ...]
//       the synthetic transformer (tests/testing/transformer_state.h) saved
//       by the first TP*PP*DP ranks in the first layout, loaded by the first
//       ranks of the second one; every loaded byte is checked, zero padding of
//       the vocabulary rows included. Settings (default in brackets):
//         save_div, load_div   make_vocab_size_divisible_by of each side [128]
//         save_dist, load_dist distributed-optimizer flat slices [1]
//         fully_parallel       SaveOptions::fully_parallel [1]
//         read_once            LoadOptions::read_once [0]
//         chunk_bytes          SaveOptions::chunk_bytes [8 MiB]
//         save_mode            0 Put, 1 PutAsync, 2 two streaming parts [0]
//         hidden               the hidden size H [16]
//         max_inflight         LoadOptions::max_inflight_bytes [256 MiB]
//   matrix_mpi_test irregular ROOT   (8 ranks) the 1-D tensor split
//       [1,5,7,3,6,2,5,4] loaded split [14,3,6,3,1,1,2,3]; several shards per
//       rank and empty ones; irregular 2-D boxes, whole and as flat slices;
//       loaded directly and read-once
//   matrix_mpi_test errors ROOT      (4 ranks) bad input on one rank: each case
//       fails with the same code and message on every rank, commits nothing,
//       and step 1 still loads
//   matrix_mpi_test keys ROOT        (4 ranks) metadata, a plain load on rank 0,
//       every strict key handling mode, tensors removed into a new step and in
//       place, the source step deleted and its garbage collected
//
// Exit code 0 iff every check passed on every rank (the world's verdict).

#include <mpi.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "dcp/dcp.h"
#include "tests/api/shard_layouts.h"
#include "tests/mpi/mpi_checks.h"
#include "tests/testing/transformer_state.h"

namespace {

using dcp::Box;
using dcp::Communicator;
using dcp::DType;
using dcp::Shape;
using dcp::StateDict;
using dcp::Status;
using dcp::StatusCode;
using dcp::testing::Placement;
using dcp::testing::RankShards;

// Collects this rank's failed checks.
class Checks {
 public:
  explicit Checks(int rank) : rank_(rank) {}
  bool operator()(bool ok, const std::string& what) {
    if (!ok) failures_ += "rank " + std::to_string(rank_) + ": " + what + "\n";
    return ok;
  }
  const std::string& failures() const { return failures_; }

 private:
  int rank_;
  std::string failures_;
};

// The world's verdict: 0 on every rank iff no rank failed a check; rank 0
// prints every rank's failures.
int Verdict(Communicator* world, const Checks& checks, const std::string& passed) {
  std::vector<std::string> all;
  if (!world->AllGather(checks.failures(), &all).ok()) return 1;
  std::string failures;
  for (const std::string& f : all) failures += f;
  if (world->rank() == 0) {
    if (failures.empty()) {
      std::printf("PASSED: %s\n", passed.c_str());
    } else {
      std::fprintf(stderr, "FAILED: %s\n%s", passed.c_str(), failures.c_str());
    }
  }
  return failures.empty() ? 0 : 1;
}

// A communicator over ranks [0, n) of MPI_COMM_WORLD; nullptr on the others.
// Collective over the world.
std::unique_ptr<Communicator> FirstRanks(int n) {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm sub = MPI_COMM_NULL;
  MPI_Comm_split(MPI_COMM_WORLD, rank < n ? 0 : MPI_UNDEFINED, rank, &sub);
  if (sub == MPI_COMM_NULL) return nullptr;
  auto comm = dcp::NewMpiCommunicatorFromFortranHandle(MPI_Comm_c2f(sub));
  MPI_Comm_free(&sub);  // dcp holds its own duplicate
  if (!comm.ok()) {
    std::fprintf(stderr, "rank %d: %s\n", rank, comm.status().ToString().c_str());
    std::abort();
  }
  return std::move(*comm);
}

// Checks that every rank of `comm` got the same error (mpi_checks.h) with
// code `code` and a message containing `fragment`.
void SameErrorEverywhere(Communicator* comm, Checks& check, const std::string& what, const Status& s, StatusCode code,
                         const std::string& fragment) {
  check(dcp::testing::SameErrorEverywhere(comm, s, {fragment}),
        what + ": got '" + s.ToString() + "', wanted the same error on every rank with '" + fragment + "'");
  check(s.code() == code, what + ": code " + std::to_string(static_cast<int>(s.code())) + ", wanted " +
                              std::to_string(static_cast<int>(code)));
}

// Sum over the ranks of `comm`.
uint64_t Sum(Communicator* comm, uint64_t v) {
  std::vector<std::string> all;
  uint64_t sum = 0;
  if (!comm->AllGather(std::to_string(v), &all).ok()) return 0;
  for (const std::string& a : all) sum += std::stoull(a);
  return sum;
}

// "<prefix><i>" (built by append: GCC 12 warns, wrongly, on "literal" + string).
std::string Indexed(const char* prefix, int i) {
  std::string s = prefix;
  s += std::to_string(i);
  return s;
}

// --- The reconfiguration matrix --------------------------------------------

// Saves `sd` as step 1: save_mode 0 with Put, 1 with PutAsync (the buffers
// are scribbled on before the put is collected), 2 as a streaming step of two
// parts (the model and the common state, then the optimizer).
Status Save(dcp::Store* store, StateDict& sd, const dcp::SaveOptions& options, int64_t save_mode,
            dcp::SaveReport* report) {
  if (save_mode == 1) {
    DCP_RETURN_IF_ERROR(store->PutAsync(1, sd, options));
    // The snapshot is taken: the training may change its tensors.
    std::vector<std::vector<char>> saved;
    std::function<void(StateDict&)> scribble = [&](StateDict& d) {
      for (size_t i = 0; i < d.size(); ++i) {
        if (d.kind(i) == StateDict::Kind::kDict) scribble(d.dict(i));
        dcp::TensorView v;
        if (d.kind(i) == StateDict::Kind::kTensor) v = d.tensor(i).data;
        if (d.kind(i) == StateDict::Kind::kFactory) v = d.factory(i).data;
        if (v.data() == nullptr || v.size_bytes() == 0) continue;
        char* p = static_cast<char*>(v.data());
        saved.emplace_back(p, p + v.size_bytes());
        std::memset(p, 0x5A, v.size_bytes());
      }
    };
    scribble(sd);
    const Status s = store->WaitForPut(report);
    // Put the values back (the caller's state is checked later as "saved").
    size_t k = 0;
    std::function<void(StateDict&)> restore = [&](StateDict& d) {
      for (size_t i = 0; i < d.size(); ++i) {
        if (d.kind(i) == StateDict::Kind::kDict) restore(d.dict(i));
        dcp::TensorView v;
        if (d.kind(i) == StateDict::Kind::kTensor) v = d.tensor(i).data;
        if (d.kind(i) == StateDict::Kind::kFactory) v = d.factory(i).data;
        if (v.data() == nullptr || v.size_bytes() == 0) continue;
        std::memcpy(v.data(), saved[k].data(), saved[k].size());
        ++k;
      }
    };
    restore(sd);
    return s;
  }
  if (save_mode == 2) {
    StateDict model_part, optimizer_part;
    for (size_t i = 0; i < sd.size(); ++i) {
      if (sd.key(i) == "optimizer") {
        optimizer_part.Add(sd.key(i), sd.dict(i));
      } else if (sd.kind(i) == StateDict::Kind::kDict) {
        model_part.Add(sd.key(i), sd.dict(i));
      } else if (sd.kind(i) == StateDict::Kind::kValue) {
        model_part.Add(sd.key(i), sd.value(i));
      }
    }
    DCP_RETURN_IF_ERROR(store->BeginStep(1, options));
    dcp::SaveReport second;
    Status s = store->PutPart(model_part, report);
    if (s.ok()) s = store->PutPart(optimizer_part, &second);
    if (!s.ok()) {
      (void)store->AbortStep();
      return s;
    }
    report->raw_bytes_written += second.raw_bytes_written;
    report->raw_bytes_referenced += second.raw_bytes_referenced;
    return store->CommitStep();
  }
  return store->Put(1, sd, options, report);
}

int Matrix(Communicator* world, const std::string& root, const dcp::synthetic::Layout& from,
           const dcp::synthetic::Layout& to, const std::map<std::string, int64_t>& settings) {
  Checks check(world->rank());
  auto setting = [&](const std::string& name, int64_t def) {
    auto it = settings.find(name);
    return it == settings.end() ? def : it->second;
  };
  dcp::synthetic::TransformerConfig save_config, load_config;
  save_config.hidden = load_config.hidden = setting("hidden", save_config.hidden);
  save_config.vocab_divisible_by = setting("save_div", 128);
  load_config.vocab_divisible_by = setting("load_div", 128);
  save_config.distributed_optimizer = setting("save_dist", 1) != 0;
  load_config.distributed_optimizer = setting("load_dist", 1) != 0;
  dcp::SaveOptions save_options;
  save_options.fully_parallel = setting("fully_parallel", 1) != 0;
  save_options.chunk_bytes = static_cast<uint64_t>(setting("chunk_bytes", int64_t{8} << 20));
  save_options.overwrite = true;  // a rerun without the fixture's cleanup
  dcp::LoadOptions load_options;
  load_options.read_once = setting("read_once", 0) != 0;
  load_options.max_inflight_bytes = static_cast<uint64_t>(setting("max_inflight", int64_t{256} << 20));
  load_options.strict = dcp::StrictHandling::kRaiseAll;  // the key sets must match exactly
  const std::string name = from.ToString() + " (Vp " +
                           std::to_string(dcp::synthetic::PaddedVocab(save_config, from.tp)) + ") -> " + to.ToString() +
                           " (Vp " + std::to_string(dcp::synthetic::PaddedVocab(load_config, to.tp)) + ")";
  if (world->size() < std::max(from.world(), to.world())) {
    if (world->rank() == 0)
      std::fprintf(stderr, "%s needs %d ranks\n", name.c_str(), std::max(from.world(), to.world()));
    return 2;
  }

  std::unique_ptr<Communicator> saver = FirstRanks(from.world());
  if (saver != nullptr) {
    auto state = dcp::synthetic::TransformerState::Make(save_config, from, saver->rank(), true);
    auto store = dcp::Store::Open(root, saver.get());
    if (check(state.ok() && store.ok(), "save setup: " + state.status().ToString() + " " + store.status().ToString())) {
      dcp::SaveReport report;
      const Status s = Save(store->get(), (*state)->state_dict(), save_options, setting("save_mode", 0), &report);
      check(s.ok(), "put: " + s.ToString());
      // Fully parallel: data-parallel replicas share the writing, so every
      // rank writes (or references) something; otherwise (and in PutAsync,
      // which writes from main replicas only) the replicas of data-parallel
      // rank 0 write everything but the flat slices.
      const bool dp0 = saver->rank() / from.tp % from.dp == 0;
      const bool shared = save_options.fully_parallel && setting("save_mode", 0) != 1;
      const uint64_t mine = report.raw_bytes_written + report.raw_bytes_referenced;
      if (shared || dp0) check(mine > 0, "rank wrote nothing");
      if (!shared && !dp0 && !save_config.distributed_optimizer) {
        check(mine == 0, "a data-parallel replica wrote without fully_parallel");
      }
    }
  }
  if (Verdict(world, check, "save " + name) != 0) return 1;

  std::unique_ptr<Communicator> loader = FirstRanks(to.world());
  if (loader != nullptr) {
    auto state = dcp::synthetic::TransformerState::Make(load_config, to, loader->rank(), false);
    dcp::StoreOptions ro;
    ro.read_only = true;
    ro.create_if_missing = false;
    auto store = dcp::Store::Open(root, loader.get(), ro);
    if (check(state.ok() && store.ok(), "load setup: " + state.status().ToString() + " " + store.status().ToString())) {
      auto loaded = (*store)->Get(1, &(*state)->state_dict(), load_options);
      if (check(loaded.ok(), "get: " + loaded.status().ToString())) {
        const dcp::Value* iteration = loaded->common_state.Find("iteration");
        const dcp::Value* args = loaded->common_state.Find("args");
        const dcp::Value* vp = args != nullptr ? args->Find("padded_vocab_size") : nullptr;
        const int64_t saved_vp = dcp::synthetic::PaddedVocab(save_config, from.tp);
        check(iteration != nullptr && iteration->as_int() == 1000, "common state 'iteration'");
        check(vp != nullptr && vp->as_int() == saved_vp, "common state 'args.padded_vocab_size'");
        const std::string bad = (*state)->Verify(vp != nullptr ? vp->as_int() : saved_vp);
        check(bad.empty(), bad);
        // Read-once: replicated chunks travel between ranks, and only then.
        const uint64_t received = Sum(loader.get(), loaded->report.chunks_received);
        if (load_options.read_once && to.dp > 1) check(received > 0, "read-once load exchanged no chunk");
        if (!load_options.read_once) check(received == 0, "a direct load exchanged chunks");
      }
    }
  }
  return Verdict(world, check, "load " + name);
}

// --- Irregular shards -------------------------------------------------------

// Rank `rank`'s shards of the irregular tensors: "split" (1-D, one shard per
// rank), "several" (1-D, several per rank, empty ones), "boxes" (2-D
// irregular boxes) and "flat" (those boxes as flat slices: 2 per box at save,
// 3 at load), per `split`, `several` and `boxes`.
RankShards Irregular(int rank, const std::vector<std::vector<int64_t>>& split,
                     const std::vector<std::vector<int64_t>>& several, const std::vector<std::vector<Box>>& boxes,
                     bool fill) {
  RankShards s;
  int i = 0;
  for (const Placement& p : dcp::testing::SplitPlacements(split, rank)) {
    s.Add(Indexed("split.", i++), "irregular.split", DType::kFloat32, {33}, 0, p, fill);
  }
  i = 0;
  for (const Placement& p : dcp::testing::SplitPlacements(several, rank)) {
    s.Add(Indexed("several.", i++), "irregular.several", DType::kBFloat16, {40}, 0, p, fill);
  }
  i = 0;
  for (const Box& b : boxes[static_cast<size_t>(rank)]) {
    s.Add(Indexed("boxes.", i++), "irregular.boxes", DType::kInt16, {6, 8}, 0, Placement{b, {}, {}}, fill);
  }
  // The same irregular boxes as distributed-optimizer slices: the box of
  // rank r is sliced unevenly into `slices` flat ranges held by ranks r,
  // r + 3, r + 6, ... (mod 8), so a rank holds slices of other ranks' boxes.
  const int slices = fill ? 2 : 3;
  i = 0;
  for (int owner = 0; owner < static_cast<int>(boxes.size()); ++owner) {
    for (const Box& b : boxes[static_cast<size_t>(owner)]) {
      const std::vector<int64_t> bounds = dcp::synthetic::UnevenSliceBounds(b.num_elements(), slices);
      for (int k = 0; k < slices; ++k) {
        if ((owner + 3 * k) % 8 != rank) continue;
        const dcp::FlatRange range{bounds[static_cast<size_t>(k)], bounds[static_cast<size_t>(k) + 1]};
        s.Add(Indexed("flat.", i++), "irregular.flat", DType::kFloat32, {6, 8}, 0, Placement{b, range, {}}, fill);
      }
    }
  }
  return s;
}

int IrregularCases(Communicator* world, const std::string& root) {
  Checks check(world->rank());
  if (world->size() != 8) {
    if (world->rank() == 0) std::fprintf(stderr, "irregular needs 8 ranks\n");
    return 2;
  }
  const int rank = world->rank();
  // Save: every element of each tensor exactly once.
  const std::vector<std::vector<int64_t>> split_save = {{1}, {5}, {7}, {3}, {6}, {2}, {5}, {4}};
  const std::vector<std::vector<int64_t>> several_save = {{1, 0, 4}, {7},    {},     {3, 6, 2},
                                                          {0},       {5, 4}, {2, 2}, {1, 3, 0}};
  const std::vector<std::vector<Box>> boxes_save = {{Box{{0, 0}, {2, 3}}},
                                                    {Box{{0, 3}, {2, 5}}},
                                                    {Box{{2, 0}, {3, 1}}},
                                                    {Box{{2, 1}, {3, 5}}},
                                                    {Box{{2, 6}, {3, 2}}, Box{{5, 0}, {1, 2}}},  // two boxes
                                                    {Box{{5, 2}, {1, 3}}},
                                                    {Box{{3, 0}, {0, 8}}},  // empty
                                                    {Box{{5, 5}, {1, 3}}}};
  // Load: another irregular cover, plus requests that overlap (allowed at
  // load): rank 7 asks for the whole 2-D tensor.
  const std::vector<std::vector<int64_t>> split_load = {{14}, {3}, {6}, {3}, {1}, {1}, {2}, {3}};
  const std::vector<std::vector<int64_t>> several_load = {{14, 3}, {6, 0}, {3, 1, 1, 2, 2}, {}, {1}, {0, 2}, {5}, {0}};
  const std::vector<std::vector<Box>> boxes_load = {
      {Box{{0, 0}, {4, 2}}}, {Box{{0, 2}, {1, 6}}}, {Box{{1, 2}, {3, 3}}, Box{{1, 5}, {3, 3}}},
      {Box{{4, 0}, {2, 7}}}, {Box{{4, 7}, {2, 1}}}, {},
      {Box{{4, 0}, {0, 3}}}, {Box{{0, 0}, {6, 8}}}};
  {
    RankShards save = Irregular(rank, split_save, several_save, boxes_save, true);
    auto store = dcp::Store::Open(root, world);
    if (check(store.ok(), store.status().ToString())) {
      dcp::SaveOptions so;
      so.overwrite = true;
      so.chunk_bytes = 8;  // several chunks per shard
      const Status s = (*store)->Put(1, save.dict(), so);
      check(s.ok(), "put: " + s.ToString());
    }
  }
  if (Verdict(world, check, "irregular save") != 0) return 1;
  for (bool read_once : {false, true}) {
    RankShards load = Irregular(rank, split_load, several_load, boxes_load, false);
    dcp::StoreOptions ro;
    ro.read_only = true;
    auto store = dcp::Store::Open(root, world, ro);
    if (!check(store.ok(), store.status().ToString())) break;
    dcp::LoadOptions lo;
    lo.read_once = read_once;
    auto loaded = (*store)->Get(1, &load.dict(), lo);
    if (check(loaded.ok(), "get: " + loaded.status().ToString())) {
      const std::string bad = load.Verify();
      check(bad.empty(), std::string(read_once ? "read-once: " : "") + bad);
      if (read_once) check(Sum(world, loaded->report.chunks_received) > 0, "read-once load exchanged no chunk");
    }
  }
  // The whole 1-D tensor on every rank, read-once (every chunk is shared).
  {
    RankShards whole;
    whole.Add("split", "irregular.split", DType::kFloat32, {33}, 0, Placement{Box{{0}, {33}}, {}, {}}, false);
    dcp::StoreOptions ro;
    ro.read_only = true;
    auto store = dcp::Store::Open(root, world, ro);
    dcp::LoadOptions lo;
    lo.read_once = true;
    auto loaded = store.ok() ? (*store)->Get(1, &whole.dict(), lo) : store.status();
    if (check(loaded.ok(), "whole get: " + loaded.status().ToString())) check(whole.Verify().empty(), whole.Verify());
  }
  return Verdict(world, check, "irregular loads (direct, read-once, whole)");
}

// --- Bad input --------------------------------------------------------------

// What one bad-input case changes on rank 1 (the others stay right).
enum class Bad {
  kNone,
  kOverlap,        // rank 2 adds a shard of "v" inside rank 1's
  kGap,            // rank 1's second shard of "v" is one element short
  kFlatOverlap,    // rank 1's range of "f" starts one element early
  kFlatHole,       // rank 1's range of "f" starts one element late
  kMixedFlat,      // rank 1 saves its box of "f" whole, not flattened
  kObjectCell,     // rank 1 asks for an object cell never saved
  kFactoryPieces,  // rank 1's fc1 merge receives only the v piece
  kDtype,          // rank 1 asks for "v" as int32 (saved int16)
  kTwoErrors,      // rank 1 asks for "v" as int32, rank 3 for an object cell never saved
  kShapeNoFlag,    // every rank asks for another padded vocabulary; rank 1
                   // without allow_shape_mismatch on its embedding shard
};

// The error test's state on 4 ranks: the synthetic transformer (TP2 x DP2,
// whose fc1 weights are SwiGLU factories), an irregular 1-D tensor "v"
// (16 int16: [0,3) | [3,8) [8,10) | - | [10,14) [14,16)), a flat tensor "f"
// ((8, 6) float32: TP 2 row boxes, each sliced over DP 2: [0, 13) [13, 24))
// and an object "obj" with one cell per rank.
struct ErrorsState {
  std::unique_ptr<dcp::synthetic::TransformerState> model;
  RankShards shards;
  StateDict sd;
};

constexpr int kBadRank = 1;

std::unique_ptr<ErrorsState> MakeErrorsState(const dcp::synthetic::Layout& layout, int rank, bool fill, Bad bad) {
  auto e = std::make_unique<ErrorsState>();
  dcp::synthetic::TransformerConfig config;
  if (bad == Bad::kShapeNoFlag) config.vocab_divisible_by = 8;  // 512 -> 304 rows
  auto model = dcp::synthetic::TransformerState::Make(config, layout, rank, fill);
  if (!model.ok()) return nullptr;
  e->model = std::move(*model);
  const bool me = rank == kBadRank;
  if (bad == Bad::kShapeNoFlag && me) {
    StateDict& emb = e->model->state_dict().Child("model").Child("embedding").Child("word_embeddings");
    emb.tensor(emb.Find("weight")).allow_shape_mismatch = false;
  }

  std::vector<Placement> v = dcp::testing::SplitPlacements({{3}, {5, 2}, {}, {4, 2}}, rank);
  if (bad == Bad::kOverlap && rank == 2) v.push_back(Placement{Box{{5}, {2}}, {}, {}});
  if (bad == Bad::kGap && me) v[1].box.shape = {1};
  int i = 0;
  for (const Placement& p : v) {
    e->shards.Add(Indexed("v", i++), "v",
                  (bad == Bad::kDtype || bad == Bad::kTwoErrors) && me ? DType::kInt32 : DType::kInt16, {16}, 0, p,
                  fill);
  }
  std::vector<Placement> f = dcp::testing::GridPlacements({8, 6}, {2, 1}, 2, rank, 4);
  if (me) {
    if (bad == Bad::kFlatOverlap) f[0].range->begin -= 1;
    if (bad == Bad::kFlatHole) f[0].range->begin += 1;
    if (bad == Bad::kMixedFlat) f[0].range.reset();
  }
  i = 0;
  for (const Placement& p : f) e->shards.Add(Indexed("f", i++), "f", DType::kFloat32, {8, 6}, 0, p, fill);

  e->sd = e->model->state_dict();
  e->sd.Add("extra", e->shards.dict());
  dcp::ShardedObject obj;
  obj.key = "obj";
  obj.global_shape = {4};
  obj.global_offset = {rank};
  if ((bad == Bad::kObjectCell && me) || (bad == Bad::kTwoErrors && rank == 3)) {
    obj.global_offset = {5};
    obj.global_shape = {6};
  }
  if (fill) obj.data = "object cell " + std::to_string(rank);
  e->sd.Add("obj", std::move(obj));

  if (bad == Bad::kFactoryPieces && me) {
    StateDict& layer = e->sd.Child("model").Child("decoder").Child("layers").Child("0");
    dcp::ShardedTensorFactory& fc1 = layer.factory(layer.Find("fc1_weight"));
    dcp::FactoryBuildFn right = fc1.build;
    fc1.build = [right](const dcp::ShardedTensorFactory& f, dcp::FactoryPhase phase, dcp::FactoryArena* arena,
                        StateDict* pieces) -> Status {
      StateDict all;
      DCP_RETURN_IF_ERROR(right(f, phase, arena, &all));
      if (phase == dcp::FactoryPhase::kLoad) {
        pieces->Add("v", all.tensor(all.Find("v")));  // the w piece is lost
      } else {
        *pieces = std::move(all);
      }
      return Status::OK();
    };
  }
  return e;
}

std::string VerifyErrorsState(const ErrorsState& e, int rank) {
  std::string bad = e.model->Verify(e.model->padded_vocab());
  if (bad.empty()) bad = e.shards.Verify();
  const dcp::ShardedObject& obj = e.sd.object(e.sd.Find("obj"));
  if (bad.empty() && obj.data != "object cell " + std::to_string(rank)) bad = "object 'obj' holds '" + obj.data + "'";
  return bad;
}

int Errors(Communicator* world, const std::string& root) {
  Checks check(world->rank());
  if (world->size() != 4) {
    if (world->rank() == 0) std::fprintf(stderr, "errors needs 4 ranks\n");
    return 2;
  }
  const int rank = world->rank();
  const dcp::synthetic::Layout layout{2, 1, 2};
  auto store = dcp::Store::Open(root, world);
  if (!check(store.ok(), store.status().ToString())) return Verdict(world, check, "errors: open");
  dcp::SaveOptions overwrite;
  overwrite.overwrite = true;
  {
    auto good = MakeErrorsState(layout, rank, true, Bad::kNone);
    const Status s = (*store)->Put(1, good->sd, overwrite);
    check(s.ok(), "put of step 1: " + s.ToString());
  }
  if (Verdict(world, check, "errors: step 1 saved") != 0) return 1;

  struct Case {
    const char* name;
    Bad bad;
    bool put;  // a bad put of step 2, else a bad get of step 1
    StatusCode code;
    std::string fragment;
  };
  const std::vector<Case> cases = {
      {"overlapping irregular shards", Bad::kOverlap, true, StatusCode::kInvalidArgument,
       "key 'v': main replicas on ranks 1 and 2 overlap at [5:7] (offsets (3,) and (5,))"},
      {"gapped irregular shards", Bad::kGap, true, StatusCode::kInvalidArgument,
       "key 'v': main replicas leave 1 of 16 elements uncovered (a hole in coverage at [9:10])"},
      {"overlapping flat ranges", Bad::kFlatOverlap, true, StatusCode::kInvalidArgument,
       "key 'f' at offset (0, 0): flattened ranges [0, 13) (rank 0) and [12, 24) (rank 1) overlap"},
      {"flat ranges with a hole", Bad::kFlatHole, true, StatusCode::kInvalidArgument,
       "key 'f' at offset (0, 0): flattened ranges leave [13, 14) of [0, 24) uncovered"},
      {"flattened and non-flattened shards of one key", Bad::kMixedFlat, true, StatusCode::kInvalidArgument,
       "key 'f' mixes flattened and non-flattened shards (ranks 0 and 1)"},
      {"an object cell never saved", Bad::kObjectCell, false, StatusCode::kNotFound,
       "rank 1: state dict entry 'obj': object 'obj/shard_5_6' is not in step 1"},
      {"a factory merge with the wrong pieces", Bad::kFactoryPieces, false, StatusCode::kInvalidArgument,
       "rank 1: state dict entry 'model.decoder.layers.0.fc1_weight' (factory "
       "'decoder.layers.mlp.linear_fc1.weight'): SwiGLU factory 'decoder.layers.mlp.linear_fc1.weight': merge "
       "expected pieces 'w' and 'v'"},
      {"a request with another dtype", Bad::kDtype, false, StatusCode::kInvalidArgument,
       "rank 1: state dict entry 'extra.v0': requests dtype int32 but step 1 holds tensor 'v' as int16"},
      {"different errors on two ranks (the lower rank's wins)", Bad::kTwoErrors, false, StatusCode::kInvalidArgument,
       "rank 1: state dict entry 'extra.v0': requests dtype int32 but step 1 holds tensor 'v' as int16 (2 ranks "
       "failed; the lowest is shown)"},
      {"another global shape without allow_shape_mismatch", Bad::kShapeNoFlag, false, StatusCode::kInvalidArgument,
       "rank 1: state dict entry 'model.embedding.word_embeddings.weight': requests global shape (304, 16) but step 1 "
       "holds tensor 'embedding.word_embeddings.weight' with global shape (512, 16) (set allow_shape_mismatch to pad "
       "or clip)"},
  };
  for (const Case& c : cases) {
    auto state = MakeErrorsState(layout, rank, c.put, c.bad);
    Status s;
    if (c.put) {
      s = (*store)->Put(2, state->sd);
    } else {
      s = (*store)->Get(1, &state->sd).status();
    }
    SameErrorEverywhere(world, check, c.name, s, c.code, c.fragment);
    auto steps = (*store)->Steps();
    check(steps.ok() && *steps == std::vector<uint64_t>{1}, std::string(c.name) + ": a step was committed");
    if (world->rank() == 0) std::printf("%s: %s\n", c.name, s.ToString().c_str());
  }
  // The same bad input through PutAsync (found in the background: the
  // outcome agrees) and through a streaming step (the refused part leaves
  // the session usable; it is then aborted).
  {
    auto state = MakeErrorsState(layout, rank, true, Bad::kFlatHole);
    Status s = (*store)->PutAsync(2, state->sd);
    if (s.ok()) s = (*store)->WaitForPut();
    SameErrorEverywhere(world, check, "async: flat ranges with a hole", s, StatusCode::kInvalidArgument,
                        "key 'f' at offset (0, 0): flattened ranges leave [13, 14) of [0, 24) uncovered");
    s = (*store)->BeginStep(2);
    check(s.ok(), "begin step 2: " + s.ToString());
    SameErrorEverywhere(world, check, "streaming: overlapping irregular shards",
                        (*store)->PutPart(MakeErrorsState(layout, rank, true, Bad::kOverlap)->sd),
                        StatusCode::kInvalidArgument, "key 'v': main replicas on ranks 1 and 2 overlap at [5:7]");
    s = (*store)->AbortStep();
    check(s.ok(), "abort step 2: " + s.ToString());
    auto steps = (*store)->Steps();
    check(steps.ok() && *steps == std::vector<uint64_t>{1}, "async / streaming: a step was committed");
  }
  if (Verdict(world, check, "errors: every bad input refused alike") != 0) return 1;

  // Step 1 still loads, read-once, and the store still takes a good step.
  {
    auto state = MakeErrorsState(layout, rank, false, Bad::kNone);
    dcp::LoadOptions lo;
    lo.read_once = true;
    auto loaded = (*store)->Get(1, &state->sd, lo);
    if (check(loaded.ok(), "get of step 1: " + loaded.status().ToString())) {
      const std::string bad = VerifyErrorsState(*state, rank);
      check(bad.empty(), bad);
    }
    auto good = MakeErrorsState(layout, rank, true, Bad::kNone);
    const Status s = (*store)->Put(2, good->sd, overwrite);
    check(s.ok(), "put of step 2 after the refused ones: " + s.ToString());
  }
  return Verdict(world, check, "errors: step 1 intact, step 2 saved");
}

// --- Strict key handling, metadata, plain load, tensor removal ------------

// The keys test's request: the transformer in `layout` (with or without its
// optimizer) and, on rank 2 when `extra`, a tensor the step does not hold.
struct KeysRequest {
  std::unique_ptr<dcp::synthetic::TransformerState> model;
  std::vector<float> extra_buffer = std::vector<float>(4, -1.0f);
  StateDict sd;
};

std::unique_ptr<KeysRequest> MakeKeysRequest(const dcp::synthetic::Layout& layout, int rank, bool optimizer,
                                             bool extra) {
  auto r = std::make_unique<KeysRequest>();
  dcp::synthetic::TransformerConfig config;
  config.optimizer = optimizer;
  auto model = dcp::synthetic::TransformerState::Make(config, layout, rank, false);
  if (!model.ok()) return nullptr;
  r->model = std::move(*model);
  r->sd = r->model->state_dict();
  dcp::ShardedObject rng;  // each rank its saved cell (4 ranks save and load)
  rng.key = "rng_state";
  rng.global_shape = {4};
  rng.global_offset = {rank};
  r->sd.Add("rng_state", std::move(rng));
  if (extra && rank == 2) {
    r->sd.Child("extra").Add(
        "t", dcp::ShardedTensor::Whole("no.such.key", dcp::TensorView(r->extra_buffer.data(), DType::kFloat32, {4})));
  }
  return r;
}

int Keys(Communicator* world, const std::string& root) {
  Checks check(world->rank());
  if (world->size() != 4) {
    if (world->rank() == 0) std::fprintf(stderr, "keys needs 4 ranks\n");
    return 2;
  }
  const int rank = world->rank();
  const dcp::synthetic::Layout saved{2, 2, 1}, other{4, 1, 1};
  auto store = dcp::Store::Open(root, world);
  if (!check(store.ok(), store.status().ToString())) return Verdict(world, check, "keys: open");
  dcp::Store* st = store->get();
  {
    auto state = dcp::synthetic::TransformerState::Make({}, saved, rank, true);
    dcp::ShardedObject rng;
    rng.key = "rng_state";
    rng.global_shape = {4};
    rng.global_offset = {rank};
    rng.data = "rng of rank " + std::to_string(rank);
    StateDict sd = (*state)->state_dict();
    sd.Add("rng_state", std::move(rng));
    dcp::SaveOptions so;
    so.overwrite = true;
    const Status s = st->Put(1, sd, so);
    check(s.ok(), "put: " + s.ToString());
  }
  if (Verdict(world, check, "keys: step 1 saved") != 0) return 1;

  // Metadata: every tensor with its dtype and global shape, every object cell.
  const dcp::synthetic::TransformerConfig config;
  const int64_t vp = dcp::synthetic::PaddedVocab(config, saved.tp);
  const int64_t H = config.hidden, L = config.layers, F = config.ffn;
  auto md = st->Metadata(1);
  std::vector<std::string> optimizer_keys;
  if (check(md.ok(), "metadata: " + md.status().ToString())) {
    check(md->tensors.size() == 9 * 4, "metadata lists " + std::to_string(md->tensors.size()) + " tensors, not 36");
    const dcp::TensorInfo* emb = md->FindTensor("embedding.word_embeddings.weight");
    check(emb != nullptr && emb->dtype == DType::kBFloat16 && emb->global_shape == Shape{vp, H}, "embedding info");
    const dcp::TensorInfo* fc1 = md->FindTensor("optimizer.state.exp_avg_sq.decoder.layers.mlp.linear_fc1.weight");
    check(fc1 != nullptr && fc1->dtype == DType::kFloat32 && fc1->global_shape == Shape{L, 2 * F, H}, "fc1 state info");
    check(md->objects.size() == 4, "metadata lists " + std::to_string(md->objects.size()) + " objects, not 4");
    for (size_t i = 0; i < md->objects.size() && i < 4; ++i) {
      check(md->objects[i].unique_key == "rng_state/shard_" + std::to_string(i) + "_4", md->objects[i].unique_key);
    }
    for (const dcp::TensorInfo& t : md->tensors) {
      if (t.key.rfind("optimizer.", 0) == 0) optimizer_keys.push_back(t.key);
    }
  }

  // Plain load on one process: whole tensors, objects, common state.
  if (rank == 0) {
    auto plain = st->LoadPlain(1);
    if (check(plain.ok(), "plain load: " + plain.status().ToString()) && md.ok()) {
      check(plain->tensors.size() == md->tensors.size(), "plain load tensor count");
      for (const dcp::PlainTensor& t : plain->tensors) {
        const std::string want = dcp::synthetic::TransformerTensorBytes(t.key(), t.dtype(), t.shape(),
                                                                        Box{Shape(t.shape().size(), 0), t.shape()});
        check(want.size() == t.size_bytes() && std::memcmp(want.data(), t.data(), want.size()) == 0,
              "plain tensor '" + t.key() + "' differs");
      }
      const dcp::ShardedObject* o = plain->FindObject("rng_state/shard_3_4");
      check(o != nullptr && o->data == "rng of rank 3", "plain object cell 3");
      const dcp::Value* it = plain->common_state.Find("iteration");
      check(it != nullptr && it->as_int() == 1000, "plain common state");
    }
  }

  // Strict key handling, in another layout. Rank 2 asks for a key the step
  // lacks; without the optimizer, its 27 keys are requested by no rank.
  struct Mode {
    dcp::StrictHandling strict;
    bool optimizer, extra;
    StatusCode code;  // kOk: loads
    std::string fragment;
  };
  const std::string unexpected =
      "strict key handling: unexpected keys (requested, not in step 1): rank 2: 'no.such.key'";
  const std::vector<Mode> modes = {
      {dcp::StrictHandling::kAssumeOkUnexpected, true, true, StatusCode::kNotFound,
       "rank 2: state dict entry 'extra.t': tensor 'no.such.key' is not in step 1"},
      {dcp::StrictHandling::kRaiseUnexpected, false, true, StatusCode::kNotFound, unexpected},
      {dcp::StrictHandling::kRaiseAll, false, false, StatusCode::kInvalidArgument,
       "strict key handling: missing keys (in step 1, requested by no rank): "},
      {dcp::StrictHandling::kRaiseAll, true, false, StatusCode::kOk, ""},
      {dcp::StrictHandling::kLogAll, false, true, StatusCode::kOk, ""},
      {dcp::StrictHandling::kReturnUnexpected, false, true, StatusCode::kOk, ""},
      {dcp::StrictHandling::kReturnAll, false, true, StatusCode::kOk, ""},
      {dcp::StrictHandling::kIgnoreAll, true, true, StatusCode::kOk, ""},
  };
  for (const Mode& m : modes) {
    const std::string what = "strict mode " + std::to_string(static_cast<int>(m.strict)) +
                             (m.optimizer ? " with" : " without") + " optimizer" + (m.extra ? ", extra key" : "");
    auto request = MakeKeysRequest(other, rank, m.optimizer, m.extra);
    if (!check(request != nullptr, what + ": request")) break;
    dcp::LoadOptions lo;
    lo.strict = m.strict;
    auto loaded = st->Get(1, &request->sd, lo);
    if (m.code != StatusCode::kOk) {
      SameErrorEverywhere(world, check, what, loaded.status(), m.code, m.fragment);
      continue;
    }
    if (!check(loaded.ok(), what + ": " + loaded.status().ToString())) continue;
    const std::string bad = request->model->Verify(vp);
    check(bad.empty(), what + ": " + bad);
    check(request->extra_buffer == std::vector<float>(4, -1.0f), what + ": the unexpected entry was written");
    const dcp::ShardedObject& rng = request->sd.object(request->sd.Find("rng_state"));
    check(rng.data == "rng of rank " + std::to_string(rank), what + ": object cell holds '" + rng.data + "'");
    const bool returns_unexpected =
        m.strict == dcp::StrictHandling::kReturnUnexpected || m.strict == dcp::StrictHandling::kReturnAll;
    const std::vector<std::string> want_unexpected = returns_unexpected && m.extra && rank == 2
                                                         ? std::vector<std::string>{"no.such.key"}
                                                         : std::vector<std::string>{};
    check(loaded->unexpected_keys == want_unexpected, what + ": unexpected keys");
    const bool returns_missing = m.strict == dcp::StrictHandling::kReturnAll;
    check(loaded->missing_keys == (returns_missing && !m.optimizer ? optimizer_keys : std::vector<std::string>{}),
          what + ": missing keys (" + std::to_string(loaded->missing_keys.size()) + ")");
  }
  if (Verdict(world, check, "keys: metadata, plain load, strict key handling") != 0) return 1;

  // A new step without the optimizer, then a tensor removed from it in place;
  // step 1 keeps everything.
  auto removed = st->RemoveTensors(1, "optimizer.", dcp::RemoveTensorsOptions{.into_step = 2, .overwrite = true});
  if (check(removed.ok(), "remove into step 2: " + removed.status().ToString())) {
    check(*removed == optimizer_keys, "removed keys");
  }
  auto removed_in_place = st->RemoveTensors(2, "decoder.final_layernorm");
  check(removed_in_place.ok() && *removed_in_place == std::vector<std::string>{"decoder.final_layernorm.weight"},
        "remove in place: " + removed_in_place.status().ToString());
  auto md1 = st->Metadata(1);
  auto md2 = st->Metadata(2);
  check(md1.ok() && md1->tensors.size() == 36, "step 1 lost tensors");
  check(md2.ok() && md2->tensors.size() == 8 && md2->objects.size() == 4, "step 2 holds the wrong tensors");
  {
    auto request = MakeKeysRequest(other, rank, false, false);
    // The final layernorm (on the last stage) is gone from step 2.
    StateDict& decoder = request->sd.Child("model").Child("decoder");
    const size_t ln = decoder.Find("final_layernorm");
    dcp::LoadOptions lo;
    lo.strict = dcp::StrictHandling::kReturnAll;
    auto loaded = st->Get(2, &request->sd, lo);
    if (check(loaded.ok(), "get of step 2: " + loaded.status().ToString())) {
      check(loaded->missing_keys.empty(), "step 2: missing keys");
      check(
          loaded->unexpected_keys == (ln != StateDict::npos ? std::vector<std::string>{"decoder.final_layernorm.weight"}
                                                            : std::vector<std::string>{}),
          "step 2: unexpected keys");
      // The layernorm's destination was left as it was (checked below);
      // everything else holds the saved values.
      const std::string bad = request->model->Verify(vp, "decoder.final_layernorm.");
      check(bad.empty(), bad);
      check(request->model->Verify(vp) != "", "step 2: the removed layernorm was loaded");
    }
  }
  if (Verdict(world, check, "keys: tensors removed into a new step and in place") != 0) return 1;

  // Step 2 references step 1's records: deleting step 1 and collecting
  // garbage must leave it whole.
  Status s = st->DeleteStep(1);
  check(s.ok(), "delete step 1: " + s.ToString());
  s = st->CollectGarbage();
  check(s.ok(), "collect garbage: " + s.ToString());
  {
    auto request = MakeKeysRequest(saved, rank, false, false);
    dcp::LoadOptions lo;
    lo.strict = dcp::StrictHandling::kIgnoreAll;
    lo.read_once = true;
    auto loaded = st->Get(2, &request->sd, lo);
    if (check(loaded.ok(), "get of step 2 after GC: " + loaded.status().ToString())) {
      const std::string bad = request->model->Verify(vp, "decoder.final_layernorm.");
      check(bad.empty(), "after GC: " + bad);
    }
  }
  return Verdict(world, check, "keys: step 2 loads after step 1 is deleted and collected");
}

}  // namespace

int main(int argc, char** argv) {
  auto mpi = dcp::MpiRuntime::Init(&argc, &argv);
  if (!mpi.ok() || argc < 3) {
    std::fprintf(stderr,
                 "usage: matrix_mpi_test matrix|irregular|errors|keys ROOT [TP PP DP TP PP DP [name=value ...]]\n");
    return 2;
  }
  auto world = dcp::NewMpiWorldCommunicator();
  if (!world.ok()) return 1;
  const std::string mode = argv[1], root = argv[2];
  if (mode == "irregular") return IrregularCases(world->get(), root);
  if (mode == "errors") return Errors(world->get(), root);
  if (mode == "keys") return Keys(world->get(), root);
  if (mode != "matrix" || argc < 9) return 2;
  const dcp::synthetic::Layout from{std::atoi(argv[3]), std::atoi(argv[4]), std::atoi(argv[5])};
  const dcp::synthetic::Layout to{std::atoi(argv[6]), std::atoi(argv[7]), std::atoi(argv[8])};
  std::map<std::string, int64_t> settings;
  for (int i = 9; i < argc; ++i) {
    const std::string a = argv[i];
    const size_t eq = a.find('=');
    if (eq == std::string::npos) return 2;
    settings[a.substr(0, eq)] = std::atoll(a.c_str() + eq + 1);
  }
  return Matrix(world->get(), root, from, to, settings);
}
