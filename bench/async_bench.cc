// Copyright (c) dcp authors.
//
// async_bench: how long PutAsync blocks the caller, against a plain memcpy of
// the same bytes measured in the same run (goal: <= 1.5x). The synthetic GPT
// state of save_load_bench; every rank times its own call; the maximum over
// ranks is reported. The first PutAsync allocates staging (page faults); the
// later ones reuse it, which is the steady state of a training run.
//
//   mpirun -np 4 async_bench [--hidden 768 --layers 8 ...] [--json FILE]

#include <fmt/core.h>
#include <mpi.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "bench/bench_mpi.h"
#include "dcp/dcp.h"
#include "engine/base/buffer.h"
#include "tools/synthetic/gpt_state.h"

using dcp::bench::MaxOverRanks;

int main(int argc, char** argv) {
  auto mpi = dcp::MpiRuntime::Init(&argc, &argv);
  if (!mpi.ok()) return 1;
  CLI::App app{"async_bench: caller-blocked time of PutAsync vs memcpy"};
  std::string root = "/tmp/dcp-async-bench", json_path;
  dcp::synthetic::GptConfig config;
  config.hidden = 768;
  config.layers = 8;
  config.ffn = 3072;
  config.vocab = 16384;
  dcp::synthetic::Layout layout{2, 2, 1};
  int reps = 4;
  app.add_option("--root", root);
  app.add_option("--json", json_path);
  dcp::bench::AddModelOptions(&app, &config);
  app.add_option("--tp", layout.tp);
  app.add_option("--pp", layout.pp);
  app.add_option("--reps", reps);
  CLI11_PARSE(app, argc, argv);
  auto job = dcp::bench::StartJob("async_bench", layout, root);
  if (!job) return 2;
  const int rank = job->rank, world = job->world;
  auto& comm = job->comm;
  dcp::synthetic::GptState state(config, layout, rank, true);
  auto store = std::move(dcp::Store::Open(root, comm.get()).value());

  // Plain memcpy of the same bytes into memory already touched.
  const auto pieces = state.MainReplicaBuffers();
  uint64_t bytes = 0;
  for (const auto& p : pieces) bytes += p.second;
  dcp::base::Buffer dst(bytes);
  std::memset(dst.data(), 0, bytes);
  double memcpy_s = 1e30;
  for (int r = 0; r < 3; ++r) {
    MPI_Barrier(MPI_COMM_WORLD);
    dcp::bench::Timer t;
    size_t off = 0;
    for (const auto& [p, n] : pieces) {
      std::memcpy(dst.data() + off, p, n);
      off += n;
    }
    memcpy_s = std::min(memcpy_s, MaxOverRanks(t.Seconds()));
  }

  std::vector<double> blocked, total;
  for (int r = 0; r < reps; ++r) {
    MPI_Barrier(MPI_COMM_WORLD);
    dcp::bench::Timer t;
    dcp::SaveOptions full;  // write everything each time (the state does not change)
    full.incremental = false;
    dcp::Status s = store->PutAsync(static_cast<uint64_t>(r + 1), state.state_dict(), full);
    const double b = t.Seconds();
    dcp::bench::CheckOrFail(s, "PutAsync");
    s = store->WaitForPut();
    const double all = t.Seconds();
    dcp::bench::CheckOrFail(s, "WaitForPut");
    blocked.push_back(MaxOverRanks(b));
    total.push_back(MaxOverRanks(all));
  }
  const uint64_t total_bytes = dcp::bench::SumOverRanks(bytes);
  if (rank == 0) {
    const double warm = *std::min_element(blocked.begin() + (reps > 1 ? 1 : 0), blocked.end());
    fmt::print("async_bench: {} ranks {}, {:.3f} GB of main replicas ({:.3f} GB per rank max)\n", world,
               layout.ToString(), total_bytes / 1e9, bytes / 1e9);
    fmt::print("  plain memcpy of the same bytes (per rank, max over ranks): {:.3f} s\n", memcpy_s);
    fmt::print("  PutAsync blocked, first (allocates staging):                {:.3f} s  ({:.2f}x memcpy)\n", blocked[0],
               blocked[0] / memcpy_s);
    fmt::print("  PutAsync blocked, steady state (best of {}):               {:.3f} s  ({:.2f}x memcpy, goal <= 1.5)\n",
               reps - 1, warm, warm / memcpy_s);
    fmt::print("  whole async put until committed (best):                     {:.3f} s\n",
               *std::min_element(total.begin(), total.end()));
    if (!json_path.empty()) {
      const std::vector<dcp::bench::Figure> figures = {
          {"PutAsync blocked (steady) / memcpy of the same bytes", warm / memcpy_s, "<= 1.5"},
          {"PutAsync blocked, first call (s)", blocked[0], ""}};
      std::ofstream(json_path) << nlohmann::json({{"bench", "async"},
                                                  {"figures", dcp::bench::FiguresJson(figures)},
                                                  {"bytes", total_bytes},
                                                  {"memcpy_s", memcpy_s},
                                                  {"blocked_s", blocked},
                                                  {"total_s", total},
                                                  {"blocked_over_memcpy", warm / memcpy_s}})
                                      .dump(2)
                               << "\n";
    }
  }
  store.reset();
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) std::filesystem::remove_all(root);
  return 0;
}
