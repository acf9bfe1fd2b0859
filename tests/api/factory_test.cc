// Copyright (c) dcp authors.
//
// Sharded tensor factories end to end (in-process ranks): the fused SwiGLU
// weight across TP/PP/DP changes, a factory with a real merge (a transposed
// copy in an owned buffer), factories in async puts, and bad factories and
// merges failing the same way on every rank.

#include "dcp/factory.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "dcp/state_dict.h"
#include "dcp/store.h"
#include "tests/testing/rank_runner.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace dcp {
namespace {

using testing::StatusIs;

// ---------------------------------------------------------------------------
// The fused SwiGLU fc1 weight of a small model: L layers, each a w projection
// and a v projection of h rows and d columns. Element (layer, proj, row, col)
// holds a distinct small integer, exact in float32.

struct Model {
  int64_t layers = 1;
  int64_t h = 8;
  int64_t d = 3;
  bool stacked = false;  // layers stacked on a prepended axis (one key), else one key per layer
};

float Element(int64_t layer, int64_t proj, int64_t row, int64_t col) {
  return static_cast<float>(layer * 100000 + proj * 10000 + row * 100 + col + 1);
}

struct Layout {
  int tp = 1;
  int pp = 1;
  int dp = 1;
  int ranks() const { return tp * pp * dp; }
};

struct Coords {
  int tp_rank, pp_rank, dp_rank;
};

Coords CoordsOf(const Layout& l, int rank) {
  return {rank % l.tp, rank / l.tp % l.pp, rank / (l.tp * l.pp)};
}

// One rank's fc1 buffers (one per local layer) and its state dict of
// SwiGLU factories; `fill` writes the values, else a sentinel.
struct RankModel {
  std::vector<std::unique_ptr<std::vector<float>>> buffers;
  std::vector<int64_t> global_layers;
  StateDict dict;
};

std::string Fc1Key(const Model& m, int64_t layer) {
  return m.stacked ? "decoder.layers.fc1" : "decoder.layers." + std::to_string(layer) + ".fc1";
}

Result<RankModel> BuildRankModel(const Model& m, const Layout& l, int rank, bool fill) {
  const Coords c = CoordsOf(l, rank);
  const int64_t rows = m.h / l.tp;  // of each projection
  RankModel rm;
  const int64_t per_stage = m.layers / l.pp;
  for (int64_t i = 0; i < per_stage; ++i) {
    const int64_t layer = c.pp_rank * per_stage + i;
    auto buf = std::make_unique<std::vector<float>>(static_cast<size_t>(2 * rows * m.d), -1.0f);
    if (fill) {
      for (int64_t r = 0; r < 2 * rows; ++r) {
        const int64_t proj = r < rows ? 0 : 1;
        const int64_t row = c.tp_rank * rows + (r % rows);
        for (int64_t col = 0; col < m.d; ++col) (*buf)[r * m.d + col] = Element(layer, proj, row, col);
      }
    }
    const TensorView view(buf->data(), DType::kFloat32, {2 * rows, m.d});
    std::vector<AxisFragmentation> other;
    if (m.stacked) other.push_back({0, layer, m.layers});
    DCP_ASSIGN_OR_RETURN(auto f, SwiGluFactory(Fc1Key(m, layer), view, c.tp_rank, l.tp, {0, 0, c.dp_rank},
                                               m.stacked ? 1 : 0, other));
    rm.dict.Child("model").Child("decoder").Child(std::to_string(i)).Add("fc1", std::move(f));
    rm.buffers.push_back(std::move(buf));
    rm.global_layers.push_back(layer);
  }
  return rm;
}

// Empty if rank `rank`'s loaded buffers hold its rows of every layer.
std::string CheckRankModel(const Model& m, const Layout& l, int rank, const RankModel& rm) {
  const Coords c = CoordsOf(l, rank);
  const int64_t rows = m.h / l.tp;
  for (size_t i = 0; i < rm.buffers.size(); ++i) {
    for (int64_t r = 0; r < 2 * rows; ++r) {
      const int64_t proj = r < rows ? 0 : 1;
      const int64_t row = c.tp_rank * rows + (r % rows);
      for (int64_t col = 0; col < m.d; ++col) {
        const float want = Element(rm.global_layers[i], proj, row, col);
        const float got = (*rm.buffers[i])[r * m.d + col];
        if (got != want) {
          return "rank " + std::to_string(rank) + " layer " + std::to_string(rm.global_layers[i]) + " local row " +
                 std::to_string(r) + " col " + std::to_string(col) + ": got " + std::to_string(got) + ", want " +
                 std::to_string(want);
        }
      }
    }
  }
  return "";
}

std::vector<Status> SaveModel(const std::string& root, uint64_t step, const Model& m, const Layout& l) {
  std::vector<Status> out(l.ranks());
  testing::RunRanks(l.ranks(), [&](int rank, Communicator* comm) {
    auto rm = BuildRankModel(m, l, rank, true);
    if (!rm.ok()) {
      out[rank] = rm.status();
      return;
    }
    auto store = Store::Open(root, comm);
    out[rank] = store.ok() ? (*store)->Put(step, rm->dict) : store.status();
  });
  return out;
}

// Loads into layout `l` and checks every element; statuses and mismatches per rank.
std::vector<std::string> LoadModel(const std::string& root, uint64_t step, const Model& m, const Layout& l) {
  std::vector<std::string> out(l.ranks());
  testing::RunRanks(l.ranks(), [&](int rank, Communicator* comm) {
    auto rm = BuildRankModel(m, l, rank, false);
    if (!rm.ok()) {
      out[rank] = rm.status().ToString();
      return;
    }
    auto store = Store::Open(root, comm, StoreOptions{.create_if_missing = false, .read_only = true});
    if (!store.ok()) {
      out[rank] = store.status().ToString();
      return;
    }
    auto loaded = (*store)->Get(step, &rm->dict);
    out[rank] = loaded.ok() ? CheckRankModel(m, l, rank, *rm) : loaded.status().ToString();
  });
  return out;
}

void RequireAllOk(const std::vector<Status>& s) {
  for (size_t r = 0; r < s.size(); ++r) {
    INFO("rank " << r);
    REQUIRE_OK(s[r]);
  }
}

void RequireAllEmpty(const std::vector<std::string>& problems) {
  for (size_t r = 0; r < problems.size(); ++r) {
    INFO("rank " << r);
    REQUIRE(problems[r] == "");
  }
}

void RequireAll(const std::vector<Status>& s, StatusCode code, const std::string& fragment) {
  for (size_t r = 0; r < s.size(); ++r) {
    INFO("rank " << r);
    REQUIRE_THAT(s[r], StatusIs(code, fragment));
    CHECK(s[r] == s[0]);  // the same error on every rank
  }
}

std::unique_ptr<Store> OpenReadOnly(const std::string& root) {
  return ValueOrDie(Store::Open(root, nullptr, StoreOptions{.create_if_missing = false, .read_only = true}));
}

// The stored tensor `key` of one layer holds all w rows, then all v rows.
void RequireStoredAsWThenV(const std::string& root, uint64_t step, const Model& m, int64_t layer) {
  auto store = OpenReadOnly(root);
  std::vector<float> whole(static_cast<size_t>(2 * m.h * m.d));
  Box box{{0, 0}, {2 * m.h, m.d}};
  Shape dest_shape = {2 * m.h, m.d};
  if (m.stacked) {
    box = Box{{layer, 0, 0}, {1, 2 * m.h, m.d}};
    dest_shape = {1, 2 * m.h, m.d};
  }
  REQUIRE_OK(store->Read(step, Fc1Key(m, layer), box, TensorView(whole.data(), DType::kFloat32, dest_shape)));
  for (int64_t r = 0; r < 2 * m.h; ++r) {
    for (int64_t col = 0; col < m.d; ++col) {
      INFO("global row " << r << " col " << col);
      REQUIRE(whole[r * m.d + col] == Element(layer, r < m.h ? 0 : 1, r % m.h, col));
    }
  }
}

TEST_CASE("SwiGLU factory round-trips across TP changes 2 -> 4 -> 1", "[api][factory]") {
  testing::TempDir dir;
  const Model m;  // one layer, h = 8
  RequireAllOk(SaveModel(dir.path(), 1, m, {.tp = 2}));
  RequireStoredAsWThenV(dir.path(), 1, m, 0);
  auto md = ValueOrDie(OpenReadOnly(dir.path())->Metadata(1));
  REQUIRE(md.tensors.size() == 1);
  CHECK(md.tensors[0].key == "decoder.layers.0.fc1");
  CHECK(md.tensors[0].global_shape == Shape{16, 3});

  RequireAllEmpty(LoadModel(dir.path(), 1, m, {.tp = 4}));
  RequireAllEmpty(LoadModel(dir.path(), 1, m, {.tp = 1}));
  // Saved at TP4, loaded at TP2 and TP8 (one row of each projection per rank).
  RequireAllOk(SaveModel(dir.path(), 2, m, {.tp = 4}));
  RequireStoredAsWThenV(dir.path(), 2, m, 0);
  RequireAllEmpty(LoadModel(dir.path(), 2, m, {.tp = 2}));
  RequireAllEmpty(LoadModel(dir.path(), 2, m, {.tp = 8}));
}

TEST_CASE("SwiGLU factory with layers stacked on a prepended axis, across TP and PP", "[api][factory]") {
  testing::TempDir dir;
  const Model m{.layers = 4, .h = 8, .d = 2, .stacked = true};
  RequireAllOk(SaveModel(dir.path(), 1, m, {.tp = 2, .pp = 2}));
  auto md = ValueOrDie(OpenReadOnly(dir.path())->Metadata(1));
  REQUIRE(md.tensors.size() == 1);
  CHECK(md.tensors[0].global_shape == Shape{4, 16, 2});
  for (int64_t layer = 0; layer < m.layers; ++layer) RequireStoredAsWThenV(dir.path(), 1, m, layer);

  RequireAllEmpty(LoadModel(dir.path(), 1, m, {.tp = 4, .pp = 1}));
  RequireAllEmpty(LoadModel(dir.path(), 1, m, {.tp = 1, .pp = 1}));
  RequireAllEmpty(LoadModel(dir.path(), 1, m, {.tp = 1, .pp = 4}));
  RequireAllEmpty(LoadModel(dir.path(), 1, m, {.tp = 8, .pp = 2}));
}

TEST_CASE("SwiGLU factories with data-parallel replicas are written once", "[api][factory]") {
  testing::TempDir dir;
  const Model m{.layers = 2, .h = 4, .d = 5, .stacked = true};
  RequireAllOk(SaveModel(dir.path(), 1, m, {.tp = 2, .pp = 1, .dp = 2}));
  auto md = ValueOrDie(OpenReadOnly(dir.path())->Metadata(1));
  REQUIRE(md.tensors.size() == 1);
  CHECK(md.tensors[0].raw_bytes == static_cast<uint64_t>(m.layers * 2 * m.h * m.d * 4));  // once, not twice
  CHECK(md.info.raw_bytes == md.tensors[0].raw_bytes);
  // Loaded with three DP replicas of a TP1 layout, and TP4 x DP2.
  RequireAllEmpty(LoadModel(dir.path(), 1, m, {.tp = 1, .pp = 1, .dp = 3}));
  RequireAllEmpty(LoadModel(dir.path(), 1, m, {.tp = 4, .pp = 2, .dp = 1}));
}

TEST_CASE("SwiGLU factories in an async put are built before PutAsync returns", "[api][factory][async]") {
  testing::TempDir dir;
  const Model m{.layers = 2, .h = 4, .d = 3, .stacked = true};
  const Layout l{.tp = 2};
  std::vector<Status> started(2), finished(2);
  testing::RunRanks(2, [&](int rank, Communicator* comm) {
    auto rm = ValueOrDie(BuildRankModel(m, l, rank, true));
    auto store = ValueOrDie(Store::Open(dir.path(), comm));
    started[rank] = store->PutAsync(1, rm.dict);
    for (auto& b : rm.buffers) std::fill(b->begin(), b->end(), 7.0f);  // the training step goes on
    finished[rank] = store->WaitForPut();
  });
  RequireAllOk(started);
  RequireAllOk(finished);
  RequireAllEmpty(LoadModel(dir.path(), 1, m, {.tp = 4}));
}

// ---------------------------------------------------------------------------
// A factory with a real merge: the local [rows, cols] block of a [R, C]
// tensor is stored transposed, as its [cols, rows] block of a [C, R] tensor,
// through a buffer the build allocates; the merge transposes it back.

void CopyTransposed(const TensorView& src, const TensorView& dst) {
  const size_t elem = DTypeSize(src.dtype());
  const char* s = static_cast<const char*>(src.data());
  char* d = static_cast<char*>(dst.data());
  for (int64_t i = 0; i < src.shape()[0]; ++i) {
    for (int64_t j = 0; j < src.shape()[1]; ++j) {
      std::memcpy(d + (j * dst.strides()[0] + i * dst.strides()[1]) * elem,
                  s + (i * src.strides()[0] + j * src.strides()[1]) * elem, elem);
    }
  }
}

// Counts merges, to show they run once per factory per load.
struct MergeLog {
  std::atomic<int> merges{0};
};

ShardedTensorFactory TransposeFactory(std::string key, TensorView data, int64_t row_offset, int64_t global_rows,
                                      ReplicaId replica, MergeLog* log = nullptr) {
  ShardedTensorFactory f;
  f.key = std::move(key);
  f.data = std::move(data);
  f.replica_id = std::move(replica);
  f.build = [row_offset, global_rows](const ShardedTensorFactory& self, FactoryPhase phase, FactoryArena* arena,
                                      StateDict* pieces) {
    const int64_t rows = self.data.shape()[0], cols = self.data.shape()[1];
    ShardedTensor t;
    t.key = self.key;
    t.dtype = self.data.dtype();
    t.data = arena->Allocate(t.dtype, {cols, rows});
    if (phase == FactoryPhase::kSave) CopyTransposed(self.data, t.data);
    t.local_shape = {cols, rows};
    t.global_shape = {cols, global_rows};
    t.global_offset = {0, row_offset};
    t.replica_id = self.replica_id;
    pieces->Add("transposed", std::move(t));
    return Status::OK();
  };
  f.merge = [log](const ShardedTensorFactory& self, const StateDict& loaded) {
    const size_t i = loaded.Find("transposed");
    if (loaded.size() != 1 || i == StateDict::npos || loaded.kind(i) != StateDict::Kind::kTensor) {
      return Status::InvalidArgument("transpose factory '" + self.key + "' expected one piece 'transposed'");
    }
    CopyTransposed(loaded.tensor(i).data, self.data);
    if (log != nullptr) ++log->merges;
    return Status::OK();
  };
  return f;
}

float TElement(int64_t row, int64_t col) { return static_cast<float>(row * 1000 + col); }

// Rank r of a rows split `splits` (boundaries) holds rows [splits[r], splits[r+1]).
std::vector<float> TBlock(int64_t begin, int64_t end, int64_t cols, bool fill) {
  std::vector<float> b(static_cast<size_t>((end - begin) * cols), -1.0f);
  if (fill) {
    for (int64_t r = begin; r < end; ++r) {
      for (int64_t c = 0; c < cols; ++c) b[(r - begin) * cols + c] = TElement(r, c);
    }
  }
  return b;
}

TEST_CASE("a factory whose merge transposes an owned buffer back round-trips across layouts",
          "[api][factory]") {
  testing::TempDir dir;
  const int64_t R = 10, C = 3;
  const std::vector<int64_t> save_split = {0, 4, 10};
  std::vector<Status> saved(2);
  testing::RunRanks(2, [&](int rank, Communicator* comm) {
    auto block = TBlock(save_split[rank], save_split[rank + 1], C, true);
    StateDict sd;
    sd.Child("model").Add(
        "emb", TransposeFactory("emb", TensorView(block.data(), DType::kFloat32, {save_split[rank + 1] - save_split[rank], C}),
                                save_split[rank], R, {}));
    auto store = ValueOrDie(Store::Open(dir.path(), comm));
    saved[rank] = store->Put(1, sd);
  });
  RequireAllOk(saved);

  // Stored transposed: element (c, r) of "emb" is TElement(r, c).
  {
    auto store = OpenReadOnly(dir.path());
    std::vector<float> t(static_cast<size_t>(C * R));
    REQUIRE_OK(store->Read(1, "emb", Box{{0, 0}, {C, R}}, TensorView(t.data(), DType::kFloat32, {C, R})));
    for (int64_t c = 0; c < C; ++c) {
      for (int64_t r = 0; r < R; ++r) REQUIRE(t[c * R + r] == TElement(r, c));
    }
  }

  // Loaded with three uneven row blocks, one of them a strided view.
  const std::vector<int64_t> load_split = {0, 3, 7, 10};
  std::vector<std::string> problems(3);
  MergeLog log;
  testing::RunRanks(3, [&](int rank, Communicator* comm) {
    const int64_t begin = load_split[rank], end = load_split[rank + 1];
    // A [rows, C] view with a row stride of C + 2 (padding columns must stay untouched).
    std::vector<float> padded(static_cast<size_t>((end - begin) * (C + 2)), -5.0f);
    const TensorView view(padded.data(), DType::kFloat32, {end - begin, C}, {C + 2, 1});
    StateDict sd;
    sd.Child("model").Add("emb", TransposeFactory("emb", view, begin, R, {}, &log));
    auto store = ValueOrDie(Store::Open(dir.path(), comm, StoreOptions{.create_if_missing = false, .read_only = true}));
    auto got = store->Get(1, &sd);
    if (!got.ok()) {
      problems[rank] = got.status().ToString();
      return;
    }
    for (int64_t r = begin; r < end; ++r) {
      for (int64_t c = 0; c < C + 2; ++c) {
        const float want = c < C ? TElement(r, c) : -5.0f;
        if (padded[(r - begin) * (C + 2) + c] != want) {
          problems[rank] = "row " + std::to_string(r) + " col " + std::to_string(c) + " wrong";
          return;
        }
      }
    }
  });
  RequireAllEmpty(problems);
  CHECK(log.merges == 3);
}

TEST_CASE("a factory's owned buffer outlives PutAsync's snapshot", "[api][factory][async]") {
  testing::TempDir dir;
  const int64_t R = 6, C = 4;
  std::vector<Status> started(2), finished(2);
  testing::RunRanks(2, [&](int rank, Communicator* comm) {
    auto block = TBlock(rank * 3, rank * 3 + 3, C, true);
    StateDict sd;
    sd.Add("emb", TransposeFactory("emb", TensorView(block.data(), DType::kFloat32, {3, C}), rank * 3, R, {}));
    auto store = ValueOrDie(Store::Open(dir.path(), comm));
    started[rank] = store->PutAsync(1, sd);
    std::fill(block.begin(), block.end(), 0.0f);
    finished[rank] = store->WaitForPut();
  });
  RequireAllOk(started);
  RequireAllOk(finished);
  std::vector<float> whole(static_cast<size_t>(R * C), -1.0f);
  StateDict sd;
  sd.Add("emb", TransposeFactory("emb", TensorView(whole.data(), DType::kFloat32, {R, C}), 0, R, {}));
  REQUIRE_OK(OpenReadOnly(dir.path())->Get(1, &sd).status());
  for (int64_t r = 0; r < R; ++r) {
    for (int64_t c = 0; c < C; ++c) REQUIRE(whole[r * C + c] == TElement(r, c));
  }
}

TEST_CASE("a factory whose key the step lacks is left untouched when unexpected keys are ignored",
          "[api][factory]") {
  testing::TempDir dir;
  const int64_t R = 4, C = 2;
  auto block = TBlock(0, R, C, true);
  std::vector<Status> saved(1);
  testing::RunRanks(1, [&](int rank, Communicator* comm) {
    StateDict sd;
    sd.Add("emb", TransposeFactory("emb", TensorView(block.data(), DType::kFloat32, {R, C}), 0, R, {}));
    saved[rank] = ValueOrDie(Store::Open(dir.path(), comm))->Put(1, sd);
  });
  RequireAllOk(saved);

  std::vector<float> emb(static_cast<size_t>(R * C), -1.0f), other(static_cast<size_t>(R * C), -2.0f);
  MergeLog log;
  StateDict sd;
  sd.Add("emb", TransposeFactory("emb", TensorView(emb.data(), DType::kFloat32, {R, C}), 0, R, {}, &log));
  sd.Add("new", TransposeFactory("new_key", TensorView(other.data(), DType::kFloat32, {R, C}), 0, R, {}, &log));
  LoadOptions options;
  options.strict = StrictHandling::kIgnoreAll;
  REQUIRE_OK(OpenReadOnly(dir.path())->Get(1, &sd, options).status());
  CHECK(log.merges == 1);
  CHECK(emb == block);
  CHECK(other == std::vector<float>(static_cast<size_t>(R * C), -2.0f));  // not overwritten by an unloaded buffer
}

// ---------------------------------------------------------------------------
// Bad factories and bad merges: the same error on every rank, nothing
// committed.

// Rebuilds a SwiGLU factory's pieces through `edit` (the merge is kept).
ShardedTensorFactory WithEditedBuild(ShardedTensorFactory f,
                                     std::function<void(const StateDict& right, FactoryArena*, StateDict* out)> edit) {
  FactoryBuildFn original = f.build;
  f.build = [original, edit](const ShardedTensorFactory& self, FactoryPhase phase, FactoryArena* arena,
                             StateDict* pieces) {
    StateDict right;
    DCP_RETURN_IF_ERROR(original(self, phase, arena, &right));
    edit(right, arena, pieces);
    return Status::OK();
  };
  return f;
}

// Loads step 1 of a TP2 single-layer SwiGLU model with factories edited by `edit` on ranks where `bad(rank)`.
std::vector<Status> LoadEdited(const std::string& root, const std::function<bool(int)>& bad,
                               const std::function<void(const StateDict&, FactoryArena*, StateDict*)>& edit) {
  const Model m;
  const Layout l{.tp = 2};
  std::vector<Status> out(2);
  testing::RunRanks(2, [&](int rank, Communicator* comm) {
    auto rm = ValueOrDie(BuildRankModel(m, l, rank, false));
    StateDict& layer = rm.dict.Child("model").Child("decoder").Child("0");
    StateDict request;
    if (bad(rank)) {
      auto f = WithEditedBuild(layer.factory(layer.Find("fc1")), edit);
      request.Child("model").Child("decoder").Child("0").Add("fc1", std::move(f));
    } else {
      request = rm.dict;
    }
    auto store = ValueOrDie(Store::Open(root, comm, StoreOptions{.create_if_missing = false, .read_only = true}));
    out[rank] = store->Get(1, &request).status();
  });
  return out;
}

TEST_CASE("a SwiGLU merge that receives the wrong pieces fails on every rank", "[api][factory][errors]") {
  testing::TempDir dir;
  RequireAllOk(SaveModel(dir.path(), 1, Model{}, {.tp = 2}));
  auto always = [](int) { return true; };

  SECTION("only the w piece") {
    auto s = LoadEdited(dir.path(), always, [](const StateDict& right, FactoryArena*, StateDict* out) {
      out->Add("w", right.tensor(right.Find("w")));
    });
    RequireAll(s, StatusCode::kInvalidArgument,
               "state dict entry 'model.decoder.0.fc1' (factory 'decoder.layers.0.fc1'): SwiGLU factory "
               "'decoder.layers.0.fc1': merge expected pieces 'w' and 'v', tensors 'decoder.layers.0.fc1' (4, 3) "
               "viewing the two halves of the destination (8, 3), got 'w' tensor 'decoder.layers.0.fc1' (4, 3)");
  }
  SECTION("the halves swapped") {
    auto s = LoadEdited(dir.path(), always, [](const StateDict& right, FactoryArena*, StateDict* out) {
      ShardedTensor w = right.tensor(right.Find("w")), v = right.tensor(right.Find("v"));
      std::swap(w.data, v.data);
      out->Add("w", w).Add("v", v);
    });
    RequireAll(s, StatusCode::kInvalidArgument, "got 'w' tensor 'decoder.layers.0.fc1' (4, 3), 'v' tensor");
  }
  SECTION("copies instead of views of the destination") {
    auto s = LoadEdited(dir.path(), always, [](const StateDict& right, FactoryArena* arena, StateDict* out) {
      for (const char* name : {"w", "v"}) {
        ShardedTensor t = right.tensor(right.Find(name));
        t.data = arena->Allocate(t.dtype, t.local_shape);
        out->Add(name, t);
      }
    });
    RequireAll(s, StatusCode::kInvalidArgument,
               "got 'w' tensor 'decoder.layers.0.fc1' (4, 3) (not a view of the destination), 'v' tensor "
               "'decoder.layers.0.fc1' (4, 3) (not a view of the destination)");
  }
  SECTION("an extra piece") {
    auto s = LoadEdited(dir.path(), always, [](const StateDict& right, FactoryArena*, StateDict* out) {
      *out = right;
      ShardedTensor extra = right.tensor(right.Find("w"));
      out->Add("x", extra);
    });
    RequireAll(s, StatusCode::kInvalidArgument, "got 'w' tensor 'decoder.layers.0.fc1' (4, 3), 'v' tensor "
                                                "'decoder.layers.0.fc1' (4, 3), 'x' tensor");
  }
  SECTION("a bad merge on one rank fails every rank") {
    auto s = LoadEdited(dir.path(), [](int rank) { return rank == 1; },
                        [](const StateDict& right, FactoryArena*, StateDict* out) {
                          out->Add("v", right.tensor(right.Find("v")));
                        });
    RequireAll(s, StatusCode::kInvalidArgument, "rank 1: state dict entry 'model.decoder.0.fc1'");
    CHECK(s[0].message().find("got 'v' tensor") != std::string::npos);
  }
}

std::vector<Status> PutOne(const std::string& root, uint64_t step, int ranks,
                           const std::function<void(int rank, StateDict*)>& make) {
  std::vector<Status> out(ranks);
  testing::RunRanks(ranks, [&](int rank, Communicator* comm) {
    StateDict sd;
    make(rank, &sd);
    auto store = Store::Open(root, comm);
    out[rank] = store.ok() ? (*store)->Put(step, sd) : store.status();
  });
  return out;
}

TEST_CASE("bad factories fail the put on every rank and commit nothing", "[api][factory][errors]") {
  testing::TempDir dir;
  std::vector<float> data(8, 1.0f);
  auto swiglu = [&](int rank) {
    return ValueOrDie(SwiGluFactory("fc1", TensorView(data.data(), DType::kFloat32, {4, 2}), rank, 2));
  };
  RequireAllOk(PutOne(dir.path(), 1, 2, [&](int rank, StateDict* sd) { sd->Add("fc1", swiglu(rank)); }));

  SECTION("no build function") {
    auto s = PutOne(dir.path(), 2, 2, [&](int rank, StateDict* sd) {
      ShardedTensorFactory f = swiglu(rank);
      if (rank == 1) f.build = nullptr;
      sd->Add("fc1", f);
    });
    RequireAll(s, StatusCode::kInvalidArgument,
               "rank 1: state dict entry 'fc1' (factory 'fc1') has no build function");
  }
  SECTION("a build that fails") {
    auto s = PutOne(dir.path(), 2, 2, [&](int rank, StateDict* sd) {
      ShardedTensorFactory f = swiglu(rank);
      f.build = [](const ShardedTensorFactory&, FactoryPhase, FactoryArena*, StateDict*) {
        return Status::FailedPrecondition("not ready");
      };
      sd->Add("fc1", f);
    });
    RequireAll(s, StatusCode::kFailedPrecondition, "state dict entry 'fc1' (factory 'fc1'): not ready");
  }
  SECTION("a build that throws") {
    auto s = PutOne(dir.path(), 2, 2, [&](int rank, StateDict* sd) {
      ShardedTensorFactory f = swiglu(rank);
      if (rank == 0) {
        f.build = [](const ShardedTensorFactory&, FactoryPhase, FactoryArena*, StateDict*) -> Status {
          throw std::runtime_error("boom");
        };
      }
      sd->Add("fc1", f);
    });
    RequireAll(s, StatusCode::kInternal, "rank 0: state dict entry 'fc1' (factory 'fc1'): build threw: boom");
  }
  SECTION("a build that makes a common-state value or a factory") {
    auto v = PutOne(dir.path(), 2, 2, [&](int rank, StateDict* sd) {
      ShardedTensorFactory f = WithEditedBuild(swiglu(rank), [](const StateDict& right, FactoryArena*, StateDict* out) {
        *out = right;
        out->Child("extra").Add("lr", Value(0.1));
      });
      sd->Add("fc1", f);
    });
    RequireAll(v, StatusCode::kInvalidArgument,
               "state dict entry 'fc1.extra.lr': a factory's build made a common-state value");
    auto nested = PutOne(dir.path(), 2, 2, [&](int rank, StateDict* sd) {
      ShardedTensorFactory inner = swiglu(rank);
      ShardedTensorFactory f = swiglu(rank);
      f.build = [inner](const ShardedTensorFactory&, FactoryPhase, FactoryArena*, StateDict* out) {
        out->Add("inner", inner);
        return Status::OK();
      };
      sd->Add("fc1", f);
    });
    RequireAll(nested, StatusCode::kInvalidArgument,
               "state dict entry 'fc1.inner': a factory's build made a factory (factories do not nest)");
  }
  SECTION("pieces that collide with another entry") {
    auto s = PutOne(dir.path(), 2, 2, [&](int rank, StateDict* sd) {
      sd->Add("fc1", swiglu(rank));
      ShardedTensorFactory again = swiglu(rank);
      sd->Add("fc1_again", again);
    });
    RequireAll(s, StatusCode::kInvalidArgument, "key 'fc1' at offset (" );
    CHECK(s[0].message().find("appears twice on this rank (entries 'fc1.w' and 'fc1_again.w')") !=
          std::string::npos);
  }
  auto store = OpenReadOnly(dir.path());
  CHECK(ValueOrDie(store->Steps()) == std::vector<uint64_t>{1});
}

TEST_CASE("SwiGluFactory refuses bad arguments", "[api][factory][errors]") {
  std::vector<float> data(12);
  const TensorView v(data.data(), DType::kFloat32, {4, 3});
  CHECK_THAT(SwiGluFactory("fc1", TensorView(data.data(), DType::kFloat32, {3, 4}), 0, 2).status(),
             StatusIs(StatusCode::kInvalidArgument, "SwiGLU factory 'fc1': output extent 3 of local shape (3, 4) is odd"));
  CHECK_THAT(SwiGluFactory("fc1", TensorView(data.data(), DType::kFloat32, {}), 0, 2).status(),
             StatusIs(StatusCode::kInvalidArgument, "SwiGLU factory 'fc1': the local tensor is 0-d"));
  CHECK_THAT(SwiGluFactory("fc1", v, 2, 2).status(),
             StatusIs(StatusCode::kInvalidArgument, "SwiGLU factory 'fc1': tp_rank 2 is outside [0, 2)"));
  CHECK_THAT(SwiGluFactory("fc1", v, 0, 0).status(),
             StatusIs(StatusCode::kInvalidArgument, "SwiGLU factory 'fc1': tp_size 0 < 1"));
  CHECK_THAT(SwiGluFactory("fc1", v, 0, 1, {}, 1, {{1, 0, 2}}).status(),
             StatusIs(StatusCode::kInvalidArgument, "other_axes names axis 1, the output axis the factory splits"));
  CHECK_THAT(SwiGluFactory("fc1", v, 0, 1, {}, 1, {{0, 3, 2}}).status(),
             StatusIs(StatusCode::kInvalidArgument, "axis 0 has rank offset 3 outside [0, 2)"));
}

TEST_CASE("SwiGLU pieces are views of the two halves with fragments 2*tp", "[api][factory]") {
  std::vector<float> data(4 * 2 * 3);
  const TensorView v(data.data(), DType::kFloat32, {4, 2, 3}, {}, Device::Host());
  auto f = ValueOrDie(SwiGluFactory("fc1", v, 1, 3, {0, 0, 5}, 1, {{0, 2, 7}}));
  FactoryArena arena;
  StateDict pieces;
  REQUIRE_OK(f.build(f, FactoryPhase::kSave, &arena, &pieces));
  CHECK(arena.bytes() == 0);
  REQUIRE(pieces.size() == 2);
  const ShardedTensor& w = pieces.tensor(pieces.Find("w"));
  const ShardedTensor& vv = pieces.tensor(pieces.Find("v"));
  CHECK(w.key == "fc1");
  CHECK(w.data.data() == data.data());
  CHECK(vv.data.data() == data.data() + 2 * 2 * 3);
  CHECK(w.local_shape == Shape{2, 2, 3});
  CHECK(w.global_shape == Shape{7, 12, 2, 3});
  CHECK(w.global_offset == Shape{2, 2, 0, 0});   // fragment 1 of 6
  CHECK(vv.global_offset == Shape{2, 8, 0, 0});  // fragment 1 + 3 of 6
  CHECK(w.prepend_axis_num == 1);
  CHECK(w.replica_id == ReplicaId{0, 0, 5});
  REQUIRE_OK(f.merge(f, pieces));
}

}  // namespace
}  // namespace dcp
