// Copyright (c) dcp authors.
//
// tensors_bench: the C++ path of bench/python/python_bench.py's work, so the
// Python package can be compared with it in the same run.
//
//   mpirun -np 4 tensors_bench --root DIR [--gib 1] [--small 1000] [--json FILE]
//   mpirun -np N tensors_bench --root DIR --phase P --state S [--gib 1] [--small 1000] [--json FILE]
//
// States: one float32 tensor of --gib GiB split in 4 row slabs; --small
// tensors of 64 x 1024 float32 (256 KiB), each split in 4 row slabs. Values
// as python_bench.py's values(). Phases, each timed from right after a drop
// of the page cache: 4 ranks save, 4 ranks load the same layout, ranks 0-1
// load 2 row slabs each (resharded). Every load is checked. Seconds are the
// slowest rank's.
//
// With --phase (save | load | load_resharded) and --state (large | small),
// one phase of one state in a fresh process, on all N ranks (the layout is
// cut in N slabs; N = 2 for load_resharded), and the store is kept for the
// next phase: python_bench runs its own phases this way, each in new
// processes, so the C++ path is compared in the same conditions: each phase
// first saves and loads a tiny state of its own (as python_bench's do), and
// nothing else is warmed by an earlier phase; no idle ranks poll MPI.

#include <mpi.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_mpi.h"
#include "dcp/dcp.h"

namespace {

using namespace dcp;  // NOLINT

constexpr int64_t kCols = 1024;
int64_t kSmallRows = 64;  // --small-rows

struct Slab {
  std::string key;
  int64_t rows, first, n;  // global rows; this slab's first row and row count
};

std::vector<Slab> Layout(bool large, int64_t large_rows, int small, int world, int rank) {
  std::vector<Slab> out;
  if (large) {
    out.push_back({"big", large_rows, rank * (large_rows / world), large_rows / world});
  } else {
    char name[16];
    for (int i = 0; i < small; ++i) {
      std::snprintf(name, sizeof(name), "t%05d", i);
      out.push_back({name, kSmallRows, rank * (kSmallRows / world), kSmallRows / world});
    }
  }
  return out;
}

// bench_common.values(): per element, 24 scrambled bits of its global index
// (and the key) as a float32 in [0, 1), which LZ4 cannot compress.
void Fill(const Slab& s, std::vector<float>* v) {
  int64_t base = 0;
  for (char c : s.key) base += static_cast<unsigned char>(c);
  base %= 1000;
  v->resize(static_cast<size_t>(s.n * kCols));
  for (int64_t r = 0; r < s.n; ++r) {
    for (int64_t c = 0; c < kCols; ++c) {
      int64_t x = ((s.first + r) * kCols + c + base * 1000003) * 2654435761LL;  // below 2^63
      x ^= x >> 15;
      (*v)[static_cast<size_t>(r * kCols + c)] = static_cast<float>((x >> 8) % (1 << 24)) / static_cast<float>(1 << 24);
    }
  }
}

ShardedTensor Shard(const Slab& s, float* data) {
  ShardedTensor t;
  t.key = "w." + s.key;
  t.dtype = DType::kFloat32;
  t.data = TensorView(data, DType::kFloat32, {s.n, kCols});
  t.local_shape = {s.n, kCols};
  t.global_shape = {s.rows, kCols};
  t.global_offset = {s.first, 0};
  return t;
}

// Rank 0 drops the page cache (bench::DropCaches) right before the timed
// region and every rank of `mpi` waits for it: the timed region starts at the
// same distance from the drop in every phase and every system (bench_util.h).
void DropCachesNow(MPI_Comm mpi, const std::string& dir) {
  int rank = 0;
  MPI_Comm_rank(mpi, &rank);
  if (rank == 0) bench::DropCaches(dir);
  MPI_Barrier(mpi);
}

double Save(Communicator* comm, const std::string& root, const std::vector<Slab>& slabs) {
  std::vector<std::vector<float>> data(slabs.size());
  StateDict sd;
  for (size_t i = 0; i < slabs.size(); ++i) {
    Fill(slabs[i], &data[i]);
    sd.Add(slabs[i].key, Shard(slabs[i], data[i].data()));
  }
  DropCachesNow(MPI_COMM_WORLD, root);
  return bench::TimedOverRanks(MPI_COMM_WORLD, [&] {
    auto store = Store::Open(root, comm);
    bench::CheckOrFail(store.status(), "open");
    bench::CheckOrFail((*store)->Put(1, sd), "put");
  });
}

double Load(Communicator* comm, MPI_Comm mpi, const std::string& root, const std::vector<Slab>& slabs) {
  std::vector<std::vector<float>> data(slabs.size());
  StateDict req;
  for (size_t i = 0; i < slabs.size(); ++i) {
    data[i].resize(static_cast<size_t>(slabs[i].n * kCols));
    req.Add(slabs[i].key, Shard(slabs[i], data[i].data()));
  }
  DropCachesNow(mpi, root);
  const double t = bench::TimedOverRanks(mpi, [&] {
    auto store = Store::Open(root, comm, StoreOptions{.create_if_missing = false, .read_only = true});
    bench::CheckOrFail(store.status(), "open");
    bench::CheckOrFail((*store)->Get(1, &req).status(), "get");
  });
  std::vector<float> want;
  for (size_t i = 0; i < slabs.size(); ++i) {
    Fill(slabs[i], &want);
    if (want != data[i]) bench::FailJob("wrong data in " + slabs[i].key);
  }
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  auto mpi = MpiRuntime::Init(&argc, &argv);
  if (!mpi.ok()) return 1;
  CLI::App app{"tensors_bench: the C++ path of python_bench's work"};
  std::string root = "/tmp/dcp-tensors-bench", json;
  double gib = 1.0;
  int small = 1000;
  app.add_option("--root", root, "scratch directory (removed at the end)");
  app.add_option("--gib", gib, "size of the large tensor");
  app.add_option("--small", small, "number of small tensors");
  app.add_option("--small-rows", kSmallRows, "rows of 1024 float32 per small tensor (64: 256 KiB, 64 KiB records)")
      ->check(CLI::Range(4, 1 << 20));
  app.add_option("--json", json, "write results as JSON here (rank 0)");
  std::string phase = "all", state;
  app.add_option("--phase", phase, "one phase only, in this process, on every rank (store kept)")
      ->check(CLI::IsMember({"all", "save", "load", "load_resharded"}));
  app.add_option("--state", state, "the state of --phase")->check(CLI::IsMember({"large", "small"}));
  CLI11_PARSE(app, argc, argv);
  int rank = 0, world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  const int64_t large_rows = static_cast<int64_t>(gib * (1 << 30) / (kCols * 4)) / 4 * 4;
  if (phase != "all") {
    if (state.empty()) {
      if (rank == 0) std::fprintf(stderr, "tensors_bench: --phase needs --state\n");
      return 1;
    }
    const bool large = state == "large";
    const std::string dir = root + "/" + state;
    auto comm = std::move(NewMpiWorldCommunicator().value());
    const auto slabs = Layout(large, large_rows, small, world, rank);
    // As python_bench's phases: a tiny state of its own saved and loaded
    // first (code paths run once, out of the timed region).
    const std::string warm = root + "/warm" + std::to_string(world);
    if (rank == 0) std::filesystem::remove_all(warm);
    MPI_Barrier(MPI_COMM_WORLD);
    Save(comm.get(), warm, Layout(false, 0, 2, world, rank));
    Load(comm.get(), MPI_COMM_WORLD, warm, Layout(false, 0, 2, world, rank));
    if (rank == 0) std::filesystem::remove_all(warm);
    if (phase == "save" && rank == 0) std::filesystem::remove_all(dir);
    MPI_Barrier(MPI_COMM_WORLD);
    const double t = phase == "save" ? Save(comm.get(), dir, slabs) : Load(comm.get(), MPI_COMM_WORLD, dir, slabs);
    if (rank == 0) {
      std::printf("  %-5s dcp C++       %s %6.2f s (%d ranks, a process of its own)\n", state.c_str(), phase.c_str(), t,
                  world);
      if (!json.empty()) std::ofstream(json) << "{\"seconds\": " << t << "}\n";
    }
    return 0;
  }
  if (world != 4) {
    if (rank == 0) std::fprintf(stderr, "tensors_bench needs 4 ranks\n");
    return 1;
  }
  auto comm = std::move(NewMpiWorldCommunicator().value());
  MPI_Comm pair;
  MPI_Comm_split(MPI_COMM_WORLD, rank < 2 ? 0 : MPI_UNDEFINED, rank, &pair);
  std::unique_ptr<Communicator> pair_comm;
  if (pair != MPI_COMM_NULL) pair_comm = std::move(NewMpiCommunicatorFromFortranHandle(MPI_Comm_c2f(pair)).value());
  std::string out = "{";
  for (bool large : {true, false}) {
    const std::string dir = root + (large ? "/large" : "/small");
    if (rank == 0) std::filesystem::remove_all(dir);
    MPI_Barrier(MPI_COMM_WORLD);
    const double save = Save(comm.get(), dir, Layout(large, large_rows, small, 4, rank));
    const double load = Load(comm.get(), MPI_COMM_WORLD, dir, Layout(large, large_rows, small, 4, rank));
    double resharded = 0;
    if (pair_comm) resharded = Load(pair_comm.get(), pair, dir, Layout(large, large_rows, small, 2, rank));
    resharded = bench::MaxOverRanks(resharded);
    const double gb = large ? large_rows * kCols * 4 / 1e9 : small * kSmallRows * kCols * 4 / 1e9;
    if (rank == 0) {
      std::printf("  %-5s dcp C++       save %6.2f s (%5.2f GB/s)  load %6.2f s (%5.2f GB/s)  load_resharded %6.2f s "
                  "(%5.2f GB/s)\n",
                  large ? "large" : "small", save, gb / save, load, gb / load, resharded, gb / resharded);
      char buf[256];
      std::snprintf(buf, sizeof(buf), "%s\"%s\": {\"gb\": %.6f, \"save\": %.6f, \"load\": %.6f, \"load_resharded\": %.6f}",
                    large ? "" : ", ", large ? "large" : "small", gb, save, load, resharded);
      out += buf;
    }
    if (rank == 0) std::filesystem::remove_all(dir);
    MPI_Barrier(MPI_COMM_WORLD);
  }
  if (rank == 0 && !json.empty()) std::ofstream(json) << out << "}\n";
  pair_comm.reset();
  if (pair != MPI_COMM_NULL) MPI_Comm_free(&pair);
  return 0;
}
