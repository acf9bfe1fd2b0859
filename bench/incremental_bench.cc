// Copyright (c) dcp authors.
//
// incremental_bench: what an incremental step costs, and what garbage
// collection reclaims, on the demo's GPT-like state under mpirun.
//
//   1. a full step (every chunk written);
//   2. the same state with 10% of its chunks changed (one element each, in
//      every tenth chunk of every rank, as the write path cuts them): only
//      those are rewritten; bytes and time against the full step
//      (goals: <= 0.12 of the bytes, <= 0.20 of the time);
//   3. step 1 deleted and garbage collected: time and space reclaimed (only
//      step 1's changed chunks are garbage; the rest is referenced by step 2).
//
//   mpirun -np 4 incremental_bench [--hidden 512 --layers 8 ...] [--json FILE]

#include <fmt/core.h>
#include <mpi.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "bench/bench_mpi.h"
#include "dcp/dcp.h"
#include "engine/sharding/chunking.h"
#include "tools/synthetic/gpt_state.h"

namespace {

uint64_t Sum(uint64_t v) { return dcp::bench::SumOverRanks(v); }
double Max(double v) { return dcp::bench::MaxOverRanks(v); }
void Check(const dcp::Status& s, const char* what) { dcp::bench::CheckOrFail(s, what); }

}  // namespace

int main(int argc, char** argv) {
  auto mpi = dcp::MpiRuntime::Init(&argc, &argv);
  if (!mpi.ok()) return 1;
  CLI::App app{"incremental_bench: a 10%-changed step and garbage collection vs a full step"};
  std::string root = "/tmp/dcp-incremental-bench", json_path;
  dcp::synthetic::GptConfig config;
  config.hidden = 512;
  config.layers = 8;
  config.vocab = 8192;
  config.ffn = 2048;
  dcp::synthetic::Layout layout{2, 2, 1};
  uint64_t chunk_bytes = 1 << 20;
  int reps = 3;
  app.add_option("--root", root);
  app.add_option("--json", json_path);
  dcp::bench::AddModelOptions(&app, &config);
  app.add_option("--chunk-bytes", chunk_bytes);
  app.add_option("--reps", reps);
  int threads = 0;
  app.add_option("--threads", threads, "encode threads per rank (0: the default share of the cores)");
  CLI11_PARSE(app, argc, argv);
  auto job = dcp::bench::StartJob("incremental_bench", layout, root);
  if (!job) return 2;
  const int rank = job->rank, world = job->world;
  auto& comm = job->comm;
  dcp::synthetic::GptState state(config, layout, rank, true);
  auto store = std::move(dcp::Store::Open(root, comm.get()).value());
  dcp::SaveOptions options;
  options.chunk_bytes = chunk_bytes;
  options.encode_threads = threads;

  std::vector<double> full_s, inc_s;
  uint64_t full_bytes = 0, inc_bytes = 0, chunks = 0, changed = 0;
  dcp::GcReport gc;
  double gc_s = 0, eager_s = 0;
  uint64_t eager_before = 0, eager_after = 0;
  for (int r = 0; r < reps; ++r) {
    const uint64_t base = static_cast<uint64_t>(r) * 10;
    // A full step (nothing to reference: new values everywhere).
    state.Perturb(base + 1);
    dcp::SaveReport full;
    MPI_Barrier(MPI_COMM_WORLD);
    dcp::bench::Timer t1;
    Check(store->Put(base + 1, state.state_dict(), options, &full), "full put");
    full_s.push_back(Max(t1.Seconds()));
    // Change one element in every tenth chunk.
    uint64_t n = 0, touched = 0;
    for (auto& shard : state.MainShards()) {
      const size_t elem = dcp::DTypeSize(shard.dtype);
      const auto boxes = dcp::sharding::ChunkBox(shard.box, elem, chunk_bytes);
      for (const dcp::Box& c : boxes) {
        if (n++ % 10 != 0) continue;
        // The chunk's first element, relative to the shard (contiguous data).
        int64_t linear = 0, stride = 1;
        for (int d = shard.box.rank() - 1; d >= 0; --d) {
          linear += (c.origin[d] - shard.box.origin[d]) * stride;
          stride *= shard.box.shape[d];
        }
        shard.data[linear * static_cast<int64_t>(elem)] ^= 0x5a;
        ++touched;
      }
    }
    dcp::SaveReport inc;
    MPI_Barrier(MPI_COMM_WORLD);
    dcp::bench::Timer t2;
    Check(store->Put(base + 2, state.state_dict(), options, &inc), "incremental put");
    inc_s.push_back(Max(t2.Seconds()));
    full_bytes = Sum(full.stored_bytes_written);
    inc_bytes = Sum(inc.stored_bytes_written);
    chunks = Sum(n);
    changed = Sum(touched);
    // Delete the full step; collect.
    Check(store->DeleteStep(base + 1), "delete");
    MPI_Barrier(MPI_COMM_WORLD);
    dcp::bench::Timer t3;
    dcp::GcReport mine;
    Check(store->CollectGarbage(&mine), "gc");
    gc_s = Max(t3.Seconds());
    gc.bytes_before = Sum(mine.bytes_before);
    gc.bytes_after = Sum(mine.bytes_after);
    gc.bytes_pending = Sum(mine.bytes_pending);
    gc.records_removed = Sum(mine.records_removed);
    gc.generations_removed = Sum(mine.generations_removed);
    // And compacting the 10% that is dead right away.
    dcp::GcOptions eager;
    eager.compact_dead_fraction = 0;
    MPI_Barrier(MPI_COMM_WORLD);
    dcp::bench::Timer t4;
    dcp::GcReport forced;
    Check(store->CollectGarbage(&forced, eager), "eager gc");
    eager_s = Max(t4.Seconds());
    eager_before = Sum(forced.bytes_before);
    eager_after = Sum(forced.bytes_after);
  }
  if (rank == 0) {
    const double best_full = *std::min_element(full_s.begin(), full_s.end());
    const double best_inc = *std::min_element(inc_s.begin(), inc_s.end());
    fmt::print("incremental_bench: {} ranks {}, {} chunks, {} changed ({:.1f}%), chunk_bytes {}, best of {}\n", world,
               layout.ToString(), chunks, changed, 100.0 * changed / chunks, chunk_bytes, reps);
    fmt::print("  full step:        {:>12} bytes written in {:.3f} s\n", full_bytes, best_full);
    fmt::print("  10%-changed step: {:>12} bytes written in {:.3f} s\n", inc_bytes, best_inc);
    fmt::print("  ratios: bytes {:.3f} (goal <= 0.12), time {:.3f} (goal <= 0.20)\n",
               static_cast<double>(inc_bytes) / full_bytes, best_inc / best_full);
    fmt::print("  gc after deleting the full step (default, lazy): {:.3f} s; table bytes {} -> {}, {} dead bytes "
               "pending (below the compaction threshold)\n",
               gc_s, gc.bytes_before, gc.bytes_after, gc.bytes_pending);
    fmt::print("  gc compacting them now (compact_dead_fraction 0): {:.3f} s; table bytes {} -> {} ({} reclaimed)\n",
               eager_s, eager_before, eager_after, eager_before - eager_after);
    if (!json_path.empty()) {
      const std::vector<dcp::bench::Figure> figures = {
          {"10%-changed step: bytes / full step", static_cast<double>(inc_bytes) / full_bytes, "<= 0.12"},
          {"10%-changed step: time / full step", best_inc / best_full, "<= 0.20"},
          {"gc after deleting the full step (s)", gc_s, ""},
          {"eager gc: MB reclaimed", (eager_before - eager_after) / 1e6, ""},
          {"eager gc (s)", eager_s, ""}};
      std::ofstream(json_path) << nlohmann::json({{"bench", "incremental"},
                                                  {"figures", dcp::bench::FiguresJson(figures)},
                                                  {"chunks", chunks},
                                                  {"changed", changed},
                                                  {"full_bytes", full_bytes},
                                                  {"incremental_bytes", inc_bytes},
                                                  {"full_s", full_s},
                                                  {"incremental_s", inc_s},
                                                  {"gc_s", gc_s},
                                                  {"gc_bytes_before", gc.bytes_before},
                                                  {"gc_bytes_after", gc.bytes_after},
                                                  {"gc_bytes_pending", gc.bytes_pending},
                                                  {"eager_gc_s", eager_s},
                                                  {"eager_gc_bytes_before", eager_before},
                                                  {"eager_gc_bytes_after", eager_after}})
                                      .dump(2)
                               << "\n";
    }
  }
  store.reset();
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) std::filesystem::remove_all(root);
  return 0;
}
