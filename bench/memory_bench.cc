// Copyright (c) dcp authors.
//
// memory_bench: how much memory a load needs beyond the state it fills.
//
// 4 ranks save the GPT-like state (TP2xPP2). Then, per load layout (the same
// one, and TP4xPP1: resharded), every rank allocates and touches its
// destination state, notes its resident set, resets the kernel's peak-RSS
// mark (/proc/self/clear_refs), opens the store read-only (as a restarted job
// would), loads, and reads the peak (VmHWM). The figure is the peak above
// the resident set with the destination in place: what dcp itself used to
// open the store and load. Goal: <= 2 chunks + 64 MiB, i.e. peak RSS <=
// local state + 2 chunks + 64 MiB over the process's own baseline.
//
//   mpirun -np 4 memory_bench [--hidden 512 --layers 8 ...] [--chunk-bytes N] [--json FILE]

#include <fmt/core.h>
#include <malloc.h>
#include <mpi.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "bench/bench_mpi.h"
#include "dcp/dcp.h"
#include "tools/synthetic/gpt_state.h"

namespace {

// A field of /proc/self/status in bytes (e.g. "VmRSS", "VmHWM").
uint64_t ProcStatusBytes(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::string format = field + ": %llu kB";
  while (std::getline(in, line)) {
    unsigned long long kib = 0;
    if (std::sscanf(line.c_str(), format.c_str(), &kib) == 1) return kib * 1024;
  }
  return 0;
}

// Resets VmHWM to the current RSS (Linux >= 4.0).
bool ResetPeak() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

uint64_t MaxU(uint64_t v) {
  uint64_t out = 0;
  MPI_Allreduce(&v, &out, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
  return out;
}

constexpr double kMiB = 1 << 20;

}  // namespace

int main(int argc, char** argv) {
  auto mpi = dcp::MpiRuntime::Init(&argc, &argv);
  if (!mpi.ok()) return 1;
  CLI::App app{"memory_bench: peak RSS of a load above the state it fills"};
  std::string root = "/tmp/dcp-memory-bench", json_path;
  dcp::synthetic::GptConfig config;
  config.hidden = 512;
  config.layers = 8;
  config.vocab = 8192;
  config.ffn = 2048;
  dcp::SaveOptions save_options;
  dcp::LoadOptions load_options;
  app.add_option("--root", root);
  app.add_option("--json", json_path);
  dcp::bench::AddModelOptions(&app, &config);
  app.add_option("--chunk-bytes", save_options.chunk_bytes, "chunk size of the saved step");
  app.add_option("--read-threads", load_options.read_threads, "0: the default share of the cores");
  CLI11_PARSE(app, argc, argv);
  const dcp::synthetic::Layout saved{2, 2, 1};
  auto job = dcp::bench::StartJob("memory_bench", saved, root);
  if (!job) return 2;
  const int rank = job->rank;
  auto& comm = job->comm;
  {
    dcp::synthetic::GptState state(config, saved, rank, true);
    auto store = std::move(dcp::Store::Open(root, comm.get()).value());
    dcp::bench::CheckOrFail(store->Put(1, state.state_dict(), save_options), "put");
  }
  malloc_trim(0);

  struct Row {
    std::string layout;
    uint64_t local = 0, baseline = 0, peak = 0, above = 0;
  };
  std::vector<Row> rows;
  const uint64_t budget = 2 * save_options.chunk_bytes + (uint64_t{64} << 20);
  bool all_ok = true;
  for (const dcp::synthetic::Layout& layout : {saved, dcp::synthetic::Layout{4, 1, 1}}) {
    malloc_trim(0);
    dcp::synthetic::GptState dest(config, layout, rank, false);  // allocated and zeroed: resident
    const uint64_t baseline = ProcStatusBytes("VmRSS");
    if (!ResetPeak()) dcp::bench::FailJob("cannot reset the peak RSS (/proc/self/clear_refs)");
    {
      dcp::StoreOptions ro;
      ro.read_only = true;
      auto store = dcp::Store::Open(root, comm.get(), ro);
      dcp::bench::CheckOrFail(store.status(), "open");
      auto meta = (*store)->Metadata(1);
      dcp::bench::CheckOrFail(meta.status(), "metadata");
      dest.RequestSavedObjectCells(*meta);
      dcp::bench::CheckOrFail((*store)->Get(1, &dest.state_dict(), load_options).status(), "get");
    }
    const uint64_t peak = ProcStatusBytes("VmHWM");
    const std::string why = dest.Verify();
    if (!why.empty()) std::fprintf(stderr, "rank %d: loaded state differs: %s\n", rank, why.c_str());
    all_ok = dcp::bench::AllRanks(why.empty()) && all_ok;
    Row r;
    r.layout = layout.ToString();
    r.local = MaxU(dest.local_bytes());
    r.baseline = MaxU(baseline);
    r.peak = MaxU(peak);
    r.above = MaxU(peak > baseline ? peak - baseline : 0);
    rows.push_back(r);
  }

  if (rank == 0) {
    fmt::print("memory_bench: 4 ranks saved {}, chunk_bytes {}, loads verified: {}\n", saved.ToString(),
               save_options.chunk_bytes, all_ok ? "yes" : "NO");
    for (const Row& r : rows) {
      fmt::print("  load {}: local state {:.1f} MiB, RSS with it {:.1f} MiB, peak during open+load {:.1f} MiB; "
                 "dcp used {:.1f} MiB above the state (goal <= 2 chunks + 64 MiB = {:.1f} MiB): {:.2f} of the "
                 "allowance (max over ranks)\n",
                 r.layout, r.local / kMiB, r.baseline / kMiB, r.peak / kMiB, r.above / kMiB, budget / kMiB,
                 static_cast<double>(r.above) / budget);
    }
    if (!json_path.empty()) {
      nlohmann::json loads = nlohmann::json::array();
      for (const Row& r : rows) {
        loads.push_back({{"layout", r.layout},
                         {"local_bytes", r.local},
                         {"rss_with_state", r.baseline},
                         {"peak_rss", r.peak},
                         {"above_state", r.above},
                         {"allowance", budget},
                         {"ratio", static_cast<double>(r.above) / budget}});
      }
      std::vector<dcp::bench::Figure> figures;
      for (const Row& r : rows) {
        figures.push_back({"load " + r.layout + ": memory above the state / (2 chunks + 64 MiB)",
                           static_cast<double>(r.above) / budget, "<= 1"});
      }
      std::ofstream(json_path) << nlohmann::json({{"bench", "memory"},
                                                  {"figures", dcp::bench::FiguresJson(figures)},
                                                  {"chunk_bytes", save_options.chunk_bytes},
                                                  {"verified", all_ok},
                                                  {"loads", loads}})
                                      .dump(2)
                               << "\n";
    }
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) std::filesystem::remove_all(root);
  return all_ok ? 0 : 1;
}
