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
//   load, other mode  the same-layout Get with LoadOptions::read_once flipped
//                   (read-once vs direct, both against the same raw read)
//
// The raw baselines move the state's (deduplicated) bytes spread evenly over
// the ranks: the limit of the machine, whatever the layout. With data
// parallelism (--dp > 1) the ranks of a data-parallel group hold replicas:
// a fully parallel save (SaveOptions::fully_parallel, on by default) spreads
// their bytes over all holders; a read-once load (LoadOptions::read_once)
// reads each shared chunk once and sends it to the other holders.
//
// Per-rank byte balance: max/mean over ranks of the stored bytes each rank's
// Put wrote (SaveReport), for the chosen --fully-parallel setting and, from
// one extra put, for the other; and of the bytes each rank's Get read from
// rank stores (LoadReport), direct and read-once.
//
// Each phase runs --reps times (alternating raw and dcp); the best of each is
// reported, all runs go to the JSON file. Every load is verified byte for byte
// (untimed).
//
//   mpirun -np 4 save_load_bench --root /tmp/bench --tp 2 --pp 2 --load-tp 1 --load-pp 2
//   mpirun -np 4 save_load_bench --root /tmp/bench --tp 2 --pp 1 --dp 2 --load-tp 1 --load-pp 2

#include <fmt/core.h>
#include <mpi.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "bench/bench_mpi.h"
#include "bench/bench_util.h"
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

// max/mean of `v` over the ranks of `comm` (1 when all are zero).
double Balance(MPI_Comm comm, uint64_t v) {
  int n = 1;
  MPI_Comm_size(comm, &n);
  const uint64_t sum = SumU64(comm, v);
  const double max = dcp::bench::MaxOverRanks(static_cast<double>(v), comm);
  return sum == 0 ? 1.0 : max / (static_cast<double>(sum) / n);
}

// The first `bytes` bytes of `buffers`, cycled if they hold fewer.
std::vector<std::pair<const char*, size_t>> TakeBytes(const std::vector<std::pair<const char*, size_t>>& buffers,
                                                      uint64_t bytes) {
  std::vector<std::pair<const char*, size_t>> out;
  uint64_t have = 0;
  for (size_t i = 0; have < bytes && !buffers.empty(); i = (i + 1) % buffers.size()) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(buffers[i].second, bytes - have));
    out.emplace_back(buffers[i].first, n);
    have += n;
  }
  return out;
}

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
  bool fully_parallel = true;
  bool read_once = false;
  app.add_option("--root", root, "scratch directory (removed at the end)");
  app.add_option("--json", json_path, "write results as JSON here (rank 0)");
  dcp::bench::AddModelOptions(&app, &config);
  app.add_option("--tp", save_layout.tp);
  app.add_option("--pp", save_layout.pp);
  app.add_option("--dp", save_layout.dp, "data-parallel replicas of the saved layout");
  app.add_option("--load-tp", load_layout.tp);
  app.add_option("--load-pp", load_layout.pp);
  app.add_option("--reps", reps);
  int read_threads = 0;
  app.add_option("--read-threads", read_threads, "LoadOptions::read_threads of every load (0: the default share of the node's cores)");
  app.add_option("--fully-parallel", fully_parallel, "SaveOptions::fully_parallel of the timed puts (true/false)");
  app.add_option("--read-once", read_once,
                 "LoadOptions::read_once of the headline same-layout and resharded loads (true/false); "
                 "the same-layout load is also timed with the other setting");
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
  const uint64_t total = SumU64(MPI_COMM_WORLD, state.main_bytes());
  // The raw baseline: the state's bytes, an even share per rank.
  const uint64_t share = total / world + (static_cast<uint64_t>(rank) < total % world ? 1 : 0);
  const auto pieces = TakeBytes(state.LocalBuffers(), share);
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

  std::vector<double> raw_w, dcp_w, raw_r, dcp_r, raw_r2, dcp_r2, dcp_r_other;
  std::vector<char> readback;
  dcp::SaveReport save_report;
  dcp::LoadReport load_report[2];  // [read_once]
  for (int rep = 0; rep < reps; ++rep) {
    const uint64_t step = static_cast<uint64_t>(rep + 1);
    raw_w.push_back(Timed(MPI_COMM_WORLD, [&] { dcp::bench::RawWrite(raw_file, pieces); }));
    dcp::Status put;
    // Every repetition writes everything (the state does not change between
    // them, so an incremental put would write nothing).
    dcp::SaveOptions full;
    full.incremental = false;
    full.fully_parallel = fully_parallel;
    save_report = {};
    dcp_w.push_back(
        Timed(MPI_COMM_WORLD, [&] { put = (*store)->Put(step, state.state_dict(), full, &save_report); }));
    if (!put.ok()) Fail(rank, put.ToString());

    dcp::bench::DropPageCache(raw_file);
    dcp::bench::DropPageCache(dcp::storage::RankStorePath(store_root, static_cast<uint32_t>(rank)));
    raw_r.push_back(Timed(MPI_COMM_WORLD, [&] { dcp::bench::RawRead(raw_file, &readback); }));
    dcp::Status got;
    dcp::StateDict& sd = same.state_dict();
    // The headline mode, then the other one (each from a cold cache).
    for (const bool ro : {read_once, !read_once}) {
      if (ro != read_once) {
        same.Clear();  // so a load that skipped something fails Verify
        dcp::bench::DropPageCache(dcp::storage::RankStorePath(store_root, static_cast<uint32_t>(rank)));
      }
      dcp::LoadOptions lo;
      lo.read_once = ro;
      lo.read_threads = read_threads;
      (ro == read_once ? dcp_r : dcp_r_other).push_back(Timed(MPI_COMM_WORLD, [&] {
        auto r = (*store)->Get(step, &sd, lo);
        got = r.status();
        if (r.ok()) load_report[ro] = r->report;
      }));
      if (!got.ok()) Fail(rank, got.ToString());
      if (!AllTrue(MPI_COMM_WORLD, same.Verify().empty())) Fail(rank, "same-layout load differs");
    }

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
    dcp::LoadOptions lo;
    lo.read_once = read_once;
    lo.read_threads = read_threads;
    dcp_r2.push_back(Timed(MPI_COMM_WORLD, [&] {
      if (in_sub) got = sub_store->Get(step, &resharded->state_dict(), lo).status();
    }));
    if (in_sub && !got.ok()) Fail(rank, got.ToString());
    if (!AllTrue(MPI_COMM_WORLD, !in_sub || resharded->Verify().empty())) Fail(rank, "resharded load differs");
  }

  // Byte balance of the other fully_parallel setting: one more put (timed
  // once, so its time is only indicative).
  const double save_balance = Balance(MPI_COMM_WORLD, save_report.stored_bytes_written);
  dcp::SaveReport other_report;
  dcp::SaveOptions other;
  other.incremental = false;
  other.fully_parallel = !fully_parallel;
  dcp::Status put;
  const double other_put_s = Timed(MPI_COMM_WORLD, [&] {
    put = (*store)->Put(static_cast<uint64_t>(reps + 1), state.state_dict(), other, &other_report);
  });
  if (!put.ok()) Fail(rank, put.ToString());
  const double other_balance = Balance(MPI_COMM_WORLD, other_report.stored_bytes_written);
  const uint64_t stored_total = SumU64(MPI_COMM_WORLD, save_report.stored_bytes_written);
  const double read_balance[2] = {Balance(MPI_COMM_WORLD, load_report[0].bytes_read),
                                  Balance(MPI_COMM_WORLD, load_report[1].bytes_read)};
  const uint64_t read_total[2] = {SumU64(MPI_COMM_WORLD, load_report[0].bytes_read),
                                  SumU64(MPI_COMM_WORLD, load_report[1].bytes_read)};
  const uint64_t sent_total = SumU64(MPI_COMM_WORLD, load_report[1].bytes_sent);

  if (rank == 0) {
    auto best = [](const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); };
    const double gb = total / 1e9, gb2 = reshard_total / 1e9;
    const double save_ratio = best(raw_w) / best(dcp_w);
    const double load_ratio = best(raw_r) / best(dcp_r);
    const double reshard_ratio = best(raw_r2) / best(dcp_r2);
    const double reshard_vs_same = (best(dcp_r2) / gb2) / (best(dcp_r) / gb);
    const double direct_s = read_once ? best(dcp_r_other) : best(dcp_r);
    const double read_once_s = read_once ? best(dcp_r) : best(dcp_r_other);
    const double fp_balance = fully_parallel ? save_balance : other_balance;
    const double nfp_balance = fully_parallel ? other_balance : save_balance;
    fmt::print("save_load_bench: {} ranks save {}, {} ranks load {}; {:.3f} GB of state; best of {}\n", world,
               save_layout.ToString(), load_layout.world(), load_layout.ToString(), gb, reps);
    fmt::print("  --fully-parallel {} --read-once {}; {:.3f} GB stored\n", fully_parallel, read_once,
               stored_total / 1e9);
    fmt::print("{:<34} {:>9} {:>9} {:>8} {:>8}\n", "phase", "dcp GB/s", "raw GB/s", "ratio", "goal");
    fmt::print("{:<34} {:>9.2f} {:>9.2f} {:>8.3f} {:>8}\n", "save (vs write+fsync)", gb / best(dcp_w),
               gb / best(raw_w), save_ratio, ">=0.90");
    fmt::print("{:<34} {:>9.2f} {:>9.2f} {:>8.3f} {:>8}\n", "load, same layout (vs read)", gb / best(dcp_r),
               gb / best(raw_r), load_ratio, "");
    fmt::print("{:<34} {:>9.2f} {:>9.2f} {:>8.3f} {:>8}\n", "load, resharded (vs read)", gb2 / best(dcp_r2),
               gb2 / best(raw_r2), reshard_ratio, ">=0.85");
    fmt::print("{:<34} {:>28.3f} {:>8}\n", "resharded/same-layout time per byte", reshard_vs_same, "<=1.10");
    fmt::print("{:<34} {:>9.2f} {:>9.2f} {:>8.3f} {:>8}\n",
               read_once ? "load, same layout, direct" : "load, same layout, read-once", gb / best(dcp_r_other),
               gb / best(raw_r), best(raw_r) / best(dcp_r_other), "");
    fmt::print("per-rank byte balance (max/mean over ranks):\n");
    fmt::print("  save, fully parallel     {:.3f}\n", fp_balance);
    fmt::print("  save, not fully parallel {:.3f}   (its put: {:.2f} GB/s, once)\n", nfp_balance,
               gb / other_put_s);
    fmt::print("  load, direct             {:.3f}   ({:.3f} GB read)\n", read_balance[0], read_total[0] / 1e9);
    fmt::print("  load, read-once          {:.3f}   ({:.3f} GB read, {:.3f} GB sent)\n", read_balance[1],
               read_total[1] / 1e9, sent_total / 1e9);
    fmt::print("read-once / direct load time: {:.3f}\n", read_once_s / direct_s);
    if (!json_path.empty()) {
      // The goals (issue 7) are those of the layout without data
      // parallelism; a run with replicas reports the same figures without.
      const bool goals = save_layout.dp == 1;
      const std::vector<dcp::bench::Figure> figures = {
          {"save: dcp put / raw write+fsync (throughput)", save_ratio, goals ? ">= 0.90" : ""},
          {"load, same layout: dcp get / raw read (throughput)", load_ratio, ""},
          {"load, resharded: dcp get / raw read (throughput)", reshard_ratio, goals ? ">= 0.85" : ""},
          {"load, resharded / same layout (time per byte)", reshard_vs_same, goals ? "<= 1.10" : ""},
          {"save, fully parallel: per-rank bytes max/mean", fp_balance, ""},
          {"save, not fully parallel: per-rank bytes max/mean", nfp_balance, ""},
          {"load, read-once / direct (time)", read_once_s / direct_s, ""}};
      nlohmann::json j = {{"bench", goals ? std::string("save_load") : "save_load " + save_layout.ToString()},
                          {"figures", dcp::bench::FiguresJson(figures)},
                          {"world", world},
                          {"fully_parallel", fully_parallel},
                          {"read_once", read_once},
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
                          {"resharded_over_same_layout", reshard_vs_same},
                          {"stored_bytes", stored_total},
                          {"save_balance_fully_parallel", fp_balance},
                          {"save_balance_not_fully_parallel", nfp_balance},
                          {"other_fully_parallel_put_s", other_put_s},
                          {"dcp_get_other_read_once_s", dcp_r_other},
                          {"load_direct_bytes_read", read_total[0]},
                          {"load_direct_balance", read_balance[0]},
                          {"load_read_once_bytes_read", read_total[1]},
                          {"load_read_once_bytes_sent", sent_total},
                          {"load_read_once_balance", read_balance[1]},
                          {"read_once_over_direct", read_once_s / direct_s}};
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
