// Copyright (c) dcp authors.
//
// The writer of the crash-consistency tests, and its checker.
//
//   crash_writer run ROOT STEPS   writes STEPS more steps after the latest
//                                 committed one, exercising every write path:
//                                 incremental puts, streaming sessions, async
//                                 puts, retention (keep the last 3) and garbage
//                                 collection after every step
//   crash_writer check ROOT       verifies the store after a crash: every
//                                 committed step loads bit-exact, the store
//                                 reopens for writing, and garbage collection
//                                 then leaves no leftovers
//
// Two ranks: in-process threads, or MPI ranks when started by mpirun. Values
// are a function of (row block, step), with a quarter of the blocks changing
// at each step, so any committed step can be checked on its own.
// Exit code: 0 if everything held, 1 otherwise (with a message).

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "dcp/dcp.h"
#include "engine/store/key_layout.h"
#include "tests/testing/rank_runner.h"

namespace {

constexpr int kRanks = 2;
constexpr int64_t kRows = 64, kCols = 1024, kBlock = 4;  // rows per chunk

// The step at which row block `b` last changed, as of step `s`.
int64_t Version(int64_t b, int64_t s) {
  const int64_t v = s - ((b + s) % 4);
  return v < 0 ? 0 : v;
}

float Value(int64_t row, int64_t col, int64_t step) {
  return static_cast<float>((row / kBlock) * 100000 + Version(row / kBlock, step)) + static_cast<float>(col) * 1e-3f;
}

void Fill(std::vector<float>* rows, int64_t first_row, int64_t step) {
  for (int64_t r = 0; r < static_cast<int64_t>(rows->size()) / kCols; ++r) {
    for (int64_t c = 0; c < kCols; ++c) (*rows)[r * kCols + c] = Value(first_row + r, c, step);
  }
}

void Check(const dcp::Status& s, const std::string& what) {
  if (!s.ok()) throw std::runtime_error(what + ": " + s.ToString());
}

// Rank `rank`'s part of step `step`.
struct Part {
  std::vector<float> rows = std::vector<float>(kRows / kRanks * kCols);
  dcp::StateDict tensors, objects;
  Part(int rank, int64_t step) {
    const int64_t first = rank * kRows / kRanks;
    Fill(&rows, first, step);
    dcp::ShardedTensor t;
    t.key = "w";
    t.data = dcp::TensorView(rows.data(), dcp::DType::kFloat32, {kRows / kRanks, kCols});
    t.dtype = dcp::DType::kFloat32;
    t.local_shape = {kRows / kRanks, kCols};
    t.global_shape = {kRows, kCols};
    t.global_offset = {first, 0};
    tensors.Add("w", t);
    tensors.Add("step", dcp::Value(step));
    objects.Add("rng", dcp::ShardedObject{"rng", "rng-" + std::to_string(rank) + "-" + std::to_string(step / 2),
                                          {kRanks}, {rank}, {}});
  }
};

void Writer(int rank, dcp::Communicator* comm, const std::string& root, int64_t count) {
  auto opened = dcp::Store::Open(root, comm);
  Check(opened.status(), "open");
  dcp::Store& store = **opened;
  auto latest = store.LatestStep();
  Check(latest.status(), "latest");
  const int64_t first = latest->has_value() ? static_cast<int64_t>(**latest) + 1 : 1;
  dcp::SaveOptions options;
  options.chunk_bytes = kBlock * kCols * 4;
  for (int64_t step = first; step < first + count; ++step) {
    Part part(rank, step);
    const uint64_t s = static_cast<uint64_t>(step);
    if (step % 5 == 0) {  // streaming: tensors, then objects
      Check(store.BeginStep(s, options), "begin");
      Check(store.PutPart(part.tensors), "part 1");
      Check(store.PutPart(part.objects), "part 2");
      Check(store.CommitStep(), "commit");
    } else {
      dcp::StateDict all = part.tensors;
      all.Add("rng", part.objects.object(0));
      if (step % 4 == 0) {
        Check(store.PutAsync(s, all, options), "put async");
        Check(store.WaitForPut(), "wait");
      } else {
        Check(store.Put(s, all, options), "put");
      }
    }
    dcp::RetentionPolicy keep;
    keep.keep_last = 3;
    Check(store.ApplyRetention(keep).status(), "retention");
    dcp::GcOptions eager;
    eager.compact_dead_fraction = step % 2 == 0 ? 0.0 : 0.5;  // both paths get exercised
    Check(store.CollectGarbage(nullptr, eager), "gc");
    if (rank == 0) {
      std::printf("committed %lld\n", static_cast<long long>(step));
      std::fflush(stdout);
    }
  }
}

// Loads `step` on one process and compares every value.
std::string VerifyStep(dcp::Store* store, uint64_t step) {
  std::vector<float> all(kRows * kCols), want(kRows * kCols);
  dcp::StateDict req;
  req.Add("w", dcp::ShardedTensor::Whole("w", dcp::TensorView(all.data(), dcp::DType::kFloat32, {kRows, kCols})));
  for (int r = 0; r < kRanks; ++r) {
    req.Add("rng" + std::to_string(r), dcp::ShardedObject{"rng", "", {kRanks}, {r}, {}});
  }
  auto loaded = store->Get(step, &req);
  if (!loaded.ok()) return "step " + std::to_string(step) + ": " + loaded.status().ToString();
  Fill(&want, 0, static_cast<int64_t>(step));
  if (all != want) return "step " + std::to_string(step) + ": tensor values differ";
  for (int r = 0; r < kRanks; ++r) {
    const std::string expect = "rng-" + std::to_string(r) + "-" + std::to_string(step / 2);
    if (req.object(req.Find("rng" + std::to_string(r))).data != expect) {
      return "step " + std::to_string(step) + ": object differs";
    }
  }
  const dcp::Value* s = loaded->common_state.Find("step");
  if (s == nullptr || s->as_int() != static_cast<int64_t>(step)) return "step " + std::to_string(step) + ": common state";
  return "";
}

int CheckStore(const std::string& root) {
  namespace fs = std::filesystem;
  try {
    auto opened = dcp::Store::Open(root, nullptr, dcp::StoreOptions{.create_if_missing = false});
    Check(opened.status(), "reopen for writing");
    dcp::Store& store = **opened;
    auto steps = store.Steps();
    Check(steps.status(), "steps");
    for (uint64_t s : *steps) {
      if (std::string e = VerifyStep(&store, s); !e.empty()) throw std::runtime_error("before gc: " + e);
    }
    dcp::GcReport first, second;
    dcp::GcOptions eager;
    eager.compact_dead_fraction = 0;
    Check(store.CollectGarbage(&first, eager), "gc");
    for (uint64_t s : *steps) {
      if (std::string e = VerifyStep(&store, s); !e.empty()) throw std::runtime_error("after gc: " + e);
    }
    Check(store.CollectGarbage(&second, eager), "second gc");
    if (second.generations_removed != 0 || second.records_removed != 0 || second.temporary_files_removed != 0) {
      throw std::runtime_error("a second garbage collection still found garbage (" +
                               std::to_string(second.generations_removed) + " generations, " +
                               std::to_string(second.records_removed) + " records, " +
                               std::to_string(second.temporary_files_removed) + " temporary files; the first removed " +
                               std::to_string(first.generations_removed) + ", " +
                               std::to_string(first.records_removed) + ", " +
                               std::to_string(first.temporary_files_removed) + ")");
    }
    for (const auto& e : fs::directory_iterator(dcp::storage::StepsDir(root))) {
      if (e.path().filename().string().rfind(".tmp", 0) == 0) throw std::runtime_error("leftover " + e.path().string());
    }
    for (const auto& e : fs::directory_iterator(dcp::storage::RanksDir(root))) {
      const auto ingest = dcp::storage::RankIngestDir(e.path().string());
      if (fs::exists(ingest) && !fs::is_empty(ingest)) {
        throw std::runtime_error("leftover table files in " + ingest);
      }
    }
    std::printf("OK: %zu committed steps verified (gc removed %llu generations, %llu records, %llu temporary files)\n",
                steps->size(), static_cast<unsigned long long>(first.generations_removed),
                static_cast<unsigned long long>(first.records_removed),
                static_cast<unsigned long long>(first.temporary_files_removed));
    return 0;
  } catch (const std::exception& e) {
    std::printf("FAILED: %s\n", e.what());
    return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: crash_writer run ROOT STEPS | check ROOT\n");
    return 2;
  }
  const std::string mode = argv[1], root = argv[2];
  if (mode == "check") return CheckStore(root);
  const int64_t count = argc > 3 ? std::atoll(argv[3]) : 10;
  try {
    if (std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr) {
      auto mpi = dcp::MpiRuntime::Init(&argc, &argv);
      auto comm = dcp::NewMpiWorldCommunicator();
      Check(comm.status(), "mpi");
      Writer((*comm)->rank(), comm->get(), root, count);
    } else {
      dcp::testing::RunRanks(kRanks, [&](int rank, dcp::Communicator* comm) { Writer(rank, comm, root, count); });
    }
  } catch (const std::exception& e) {
    std::printf("writer failed: %s\n", e.what());
    return 1;
  }
  return 0;
}
