// Copyright (c) dcp authors.
//
// save_load_bench: save and load of a synthetic GPT-like state (bf16 weights,
// fp32 Adam states, values from N(0, 0.02)) under mpirun, each against the
// machine's limit measured in the same run:
//
//   save            dcp Put          vs  raw write + fsync of the same bytes (same ranks)
//   load            dcp Get          vs  raw read of the same bytes (page cache dropped)
//   load resharded  dcp Get by a sub-group in another layout (e.g. 4 -> 2 ranks,
//                   TP changed)      vs  raw read of the same bytes by as many ranks
//
// Each phase runs --reps times (alternating raw and dcp); the best of each is
// reported, all runs go to the JSON file. Every load is verified byte for byte
// (untimed).
//
//   mpirun -np 4 save_load_bench --root /tmp/bench --tp 2 --pp 2 --load-tp 1 --load-pp 2

#include <fmt/core.h>
#include <mpi.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "bench/bench_mpi.h"
#include "dcp/dcp.h"
#include "engine/store/key_layout.h"
#include "tools/synthetic/gpt_state.h"

namespace {

using dcp::bench::Timer;

template <typename F>
double Timed(MPI_Comm comm, F fn) {
  return dcp::bench::TimedOverRanks(comm, fn);
}
bool AllTrue(MPI_Comm comm, bool v) { return dcp::bench::AllRanks(v, comm); }
uint64_t SumU64(MPI_Comm comm, uint64_t v) { return dcp::bench::SumOverRanks(v, comm); }
void Fail(int, const std::string& what) { dcp::bench::FailJob(what); }

}  // namespace

int main(int argc, char** argv) {
  auto mpi = dcp::MpiRuntime::Init(&argc, &argv);
  if (!mpi.ok()) return 1;
  CLI::App app{"save_load_bench: dcp save/load vs raw I/O of the same bytes"};
  std::string root = "/tmp/dcp-bench";
  std::string json_path;
  dcp::synthetic::GptConfig config;
  config.hidden = 768;
  config.layers = 8;
  config.ffn = 3072;
  config.vocab = 16384;
  dcp::synthetic::Layout save_layout{2, 2, 1}, load_layout{1, 2, 1};
  int reps = 3;
  app.add_option("--root", root, "scratch directory (removed at the end)");
  app.add_option("--json", json_path, "write results as JSON here (rank 0)");
  dcp::bench::AddModelOptions(&app, &config);
  app.add_option("--tp", save_layout.tp);
  app.add_option("--pp", save_layout.pp);
  app.add_option("--load-tp", load_layout.tp);
  app.add_option("--load-pp", load_layout.pp);
  app.add_option("--reps", reps);
  CLI11_PARSE(app, argc, argv);

  int rank = 0, world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  if (world != save_layout.world() || load_layout.world() > world) {
    if (rank == 0) std::fprintf(stderr, "need %d ranks (load layout <= that)\n", save_layout.world());
    return 2;
  }
  auto comm = dcp::NewMpiWorldCommunicator();
  const std::string store_root = root + "/store";
  const std::string raw_dir = root + "/raw";
  if (rank == 0) {
    std::filesystem::remove_all(root);
    std::filesystem::create_directories(raw_dir);
  }
  MPI_Barrier(MPI_COMM_WORLD);

  dcp::synthetic::GptState state(config, save_layout, rank, /*fill=*/true);
  const auto pieces = state.MainReplicaBuffers();
  const uint64_t total = SumU64(MPI_COMM_WORLD, state.main_bytes());
  const std::string raw_file = raw_dir + "/rank-" + std::to_string(rank) + ".bin";
  auto store = dcp::Store::Open(store_root, comm->get());
  if (!store.ok()) Fail(rank, store.status().ToString());

  // Load-side states (allocated and touched once, outside the timed loops).
  dcp::synthetic::GptState same(config, save_layout, rank, false);
  MPI_Comm sub;
  const bool in_sub = rank < load_layout.world();
  MPI_Comm_split(MPI_COMM_WORLD, in_sub ? 0 : 1, rank, &sub);
  std::unique_ptr<dcp::synthetic::GptState> resharded;
  std::unique_ptr<dcp::Communicator> sub_comm;
  std::unique_ptr<dcp::Store> sub_store;
  if (in_sub) {
    resharded = std::make_unique<dcp::synthetic::GptState>(config, load_layout, rank, false);
    sub_comm = std::move(dcp::NewMpiCommunicatorFromFortranHandle(MPI_Comm_c2f(sub)).value());
    dcp::StoreOptions so;
    so.read_only = true;
    auto s = dcp::Store::Open(store_root, sub_comm.get(), so);
    if (!s.ok()) Fail(rank, s.status().ToString());
    sub_store = std::move(s).value();
  }
  const uint64_t resharded_bytes = in_sub ? resharded->local_bytes() : 0;
  uint64_t reshard_total = SumU64(MPI_COMM_WORLD, resharded_bytes);

  // The object cells to request are those of the saved grid.
  dcp::StepMetadata saved_objects;
  saved_objects.objects.push_back({"rng_state", "", {save_layout.pp, save_layout.tp}, {}, 0});
  same.RequestSavedObjectCells(saved_objects);
  if (in_sub) resharded->RequestSavedObjectCells(saved_objects);

  std::vector<double> raw_w, dcp_w, raw_r, dcp_r, raw_r2, dcp_r2;
  std::vector<char> readback;
  for (int rep = 0; rep < reps; ++rep) {
    const uint64_t step = static_cast<uint64_t>(rep + 1);
    raw_w.push_back(Timed(MPI_COMM_WORLD, [&] { dcp::bench::RawWrite(raw_file, pieces); }));
    dcp::Status put;
    // Every repetition writes everything (the state does not change between
    // them, so an incremental put would write nothing).
    dcp::SaveOptions full;
    full.incremental = false;
    dcp_w.push_back(Timed(MPI_COMM_WORLD, [&] { put = (*store)->Put(step, state.state_dict(), full); }));
    if (!put.ok()) Fail(rank, put.ToString());

    dcp::bench::DropPageCache(raw_file);
    dcp::bench::DropPageCache(dcp::storage::RankStorePath(store_root, static_cast<uint32_t>(rank)));
    raw_r.push_back(Timed(MPI_COMM_WORLD, [&] { dcp::bench::RawRead(raw_file, &readback); }));
    dcp::Status got;
    dcp::StateDict& sd = same.state_dict();
    dcp_r.push_back(Timed(MPI_COMM_WORLD, [&] { got = (*store)->Get(step, &sd).status(); }));
    if (!got.ok()) Fail(rank, got.ToString());
    if (!AllTrue(MPI_COMM_WORLD, same.Verify().empty())) Fail(rank, "same-layout load differs");

    // Resharded: the sub-group reads everything; the raw baseline reads the
    // same number of bytes (every raw file) with as many ranks.
    dcp::bench::DropPageCache(raw_file);
    dcp::bench::DropPageCache(dcp::storage::RankStorePath(store_root, static_cast<uint32_t>(rank)));
    MPI_Barrier(MPI_COMM_WORLD);
    raw_r2.push_back(Timed(MPI_COMM_WORLD, [&] {
      if (!in_sub) return;
      for (int f = rank; f < world; f += load_layout.world()) {
        dcp::bench::RawRead(raw_dir + "/rank-" + std::to_string(f) + ".bin", &readback);
      }
    }));
    dcp::bench::DropPageCache(raw_file);
    MPI_Barrier(MPI_COMM_WORLD);
    dcp_r2.push_back(Timed(MPI_COMM_WORLD, [&] {
      if (in_sub) got = sub_store->Get(step, &resharded->state_dict()).status();
    }));
    if (in_sub && !got.ok()) Fail(rank, got.ToString());
    if (!AllTrue(MPI_COMM_WORLD, !in_sub || resharded->Verify().empty())) Fail(rank, "resharded load differs");
  }

  if (rank == 0) {
    auto best = [](const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); };
    const double gb = total / 1e9, gb2 = reshard_total / 1e9;
    const double save_ratio = best(raw_w) / best(dcp_w);
    const double load_ratio = best(raw_r) / best(dcp_r);
    const double reshard_ratio = best(raw_r2) / best(dcp_r2);
    const double reshard_vs_same = (best(dcp_r2) / gb2) / (best(dcp_r) / gb);
    fmt::print("save_load_bench: {} ranks save {}, {} ranks load {}; {:.3f} GB of state; best of {}\n", world,
               save_layout.ToString(), load_layout.world(), load_layout.ToString(), gb, reps);
    fmt::print("{:<34} {:>9} {:>9} {:>8} {:>8}\n", "phase", "dcp GB/s", "raw GB/s", "ratio", "goal");
    fmt::print("{:<34} {:>9.2f} {:>9.2f} {:>8.3f} {:>8}\n", "save (vs write+fsync)", gb / best(dcp_w),
               gb / best(raw_w), save_ratio, ">=0.90");
    fmt::print("{:<34} {:>9.2f} {:>9.2f} {:>8.3f} {:>8}\n", "load, same layout (vs read)", gb / best(dcp_r),
               gb / best(raw_r), load_ratio, "");
    fmt::print("{:<34} {:>9.2f} {:>9.2f} {:>8.3f} {:>8}\n", "load, resharded (vs read)", gb2 / best(dcp_r2),
               gb2 / best(raw_r2), reshard_ratio, ">=0.85");
    fmt::print("{:<34} {:>28.3f} {:>8}\n", "resharded/same-layout time per byte", reshard_vs_same, "<=1.10");
    if (!json_path.empty()) {
      nlohmann::json j = {{"bench", "save_load"},
                          {"world", world},
                          {"save_layout", save_layout.ToString()},
                          {"load_layout", load_layout.ToString()},
                          {"bytes", total},
                          {"resharded_bytes", reshard_total},
                          {"raw_write_s", raw_w},
                          {"dcp_put_s", dcp_w},
                          {"raw_read_s", raw_r},
                          {"dcp_get_s", dcp_r},
                          {"raw_read_resharded_s", raw_r2},
                          {"dcp_get_resharded_s", dcp_r2},
                          {"save_ratio", save_ratio},
                          {"load_ratio", load_ratio},
                          {"resharded_load_ratio", reshard_ratio},
                          {"resharded_over_same_layout", reshard_vs_same}};
      std::ofstream(json_path) << j.dump(2) << "\n";
    }
  }
  sub_store.reset();
  sub_comm.reset();
  store->reset();
  MPI_Comm_free(&sub);
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) std::filesystem::remove_all(root);
  return 0;
}
