// Copyright (c) dcp authors.
//
// records_bench: issue 13's table. Save, load and resharded load of one state
// at several record sizes, each against raw I/O of the same bytes.
//
//   mpirun -np 4 records_bench --root DIR [--mib 512] [--json FILE]
//
// For each record size (16 KiB, 64 KiB, 1 MiB) the state is --mib MiB of
// float32 tensors of 4 x (record size), each split in 4 row slabs, one per
// rank: every slab is one record. "large": one tensor of --mib MiB in 4 slabs
// (records of SaveOptions' default chunk_bytes, 8 MiB). Values are about
// N(0, 0.02), which LZ4 cannot compress; compression is off, so the figures
// are the I/O path's. Phases: 4 ranks save; page cache dropped; 4 ranks load
// the same layout; dropped; ranks 0-1 load 2 slabs each (resharded); dropped;
// all 4 ranks load every slab with read_once (each record read by one rank
// and sent to the other three; GB/s counts the state's bytes once); dropped;
// rank 0 verifies the whole store (dcp-inspect verify). Limits
// in the same run: each rank write+fsyncs its bytes to a file of its own,
// then (cache dropped) reads it back. Every load is checked. Reported per
// phase: GB/s and its ratio to the raw limit, CPU seconds per record (user +
// system, all ranks), and read system calls per GB (/proc/self/io syscr).
// One phase can be profiled with perf (bench_util.h, PerfScope), e.g.
//   DCP_BENCH_PERF_PHASE="16 KiB save" perf record -D -1 --control=fifo:CTL ...

#include <mpi.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/bench_mpi.h"
#include "bench/bench_util.h"
#include "dcp/dcp.h"
#include "engine/inspect/reader.h"
#include "engine/inspect/verify.h"

namespace {

using namespace dcp;  // NOLINT
using bench::Figure;

constexpr int64_t kCols = 1024;  // float32: 4 KiB rows

double CpuSeconds() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6;
}

uint64_t ReadSyscalls() {
  std::ifstream in("/proc/self/io");
  std::string key;
  uint64_t value = 0;
  while (in >> key >> value) {
    if (key == "syscr:") return value;
  }
  return 0;
}

// One phase's cost over all ranks of MPI_COMM_WORLD (ranks not taking part add 0).
struct Cost {
  double seconds = 0, cpu = 0;
  uint64_t syscr = 0;
};

template <typename F>
Cost Measure(MPI_Comm comm, bool member, F fn, const std::string& phase = "") {
  bench::PerfScope profile(phase);
  const double cpu0 = CpuSeconds();
  const uint64_t sc0 = ReadSyscalls();
  double t = 0;
  if (member) t = bench::TimedOverRanks(comm, fn);
  // Ranks not taking part wait here without spinning (MPI's collectives
  // poll, which would take the cores from the ranks at work).
  bench::SleepingBarrier(MPI_COMM_WORLD);
  Cost c;
  c.seconds = bench::MaxOverRanks(t);
  double cpu = CpuSeconds() - cpu0, all = 0;
  MPI_Allreduce(&cpu, &all, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  c.cpu = all;
  c.syscr = bench::SumOverRanks(ReadSyscalls() - sc0);
  return c;
}

struct Config {
  std::string name;
  int64_t slab_rows;  // rows of one rank's slab: one record (small) or the whole slab (large)
  int64_t tensors;
};

ShardedTensor Shard(const std::string& key, int64_t rows, int64_t first, int64_t n, float* data) {
  ShardedTensor t;
  t.key = key;
  t.dtype = DType::kFloat32;
  t.data = TensorView(data, DType::kFloat32, {n, kCols});
  t.local_shape = {n, kCols};
  t.global_shape = {rows, kCols};
  t.global_offset = {first, 0};
  return t;
}

std::string Key(int64_t i) {
  char name[24];
  std::snprintf(name, sizeof name, "t%07lld", static_cast<long long>(i));
  return name;
}

}  // namespace

int main(int argc, char** argv) {
  auto mpi = MpiRuntime::Init(&argc, &argv);
  if (!mpi.ok()) return 1;
  CLI::App app{"records_bench: save/load/resharded load by record size, against raw I/O"};
  std::string root = "/tmp/dcp-records-bench", json;
  int64_t mib = 512;
  app.add_option("--root", root, "scratch directory (removed at the end)");
  app.add_option("--mib", mib, "state size per record size")->check(CLI::Range(16, 1 << 16));
  app.add_option("--json", json, "write results as JSON here (rank 0)");
  std::vector<std::string> only;
  app.add_option("--only", only, "run only these record sizes (16k, 64k, 1m, large)");
  CLI11_PARSE(app, argc, argv);
  int rank = 0, world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  if (world != 4) {
    if (rank == 0) std::fprintf(stderr, "records_bench needs 4 ranks\n");
    return 1;
  }
  auto comm = std::move(NewMpiWorldCommunicator().value());
  MPI_Comm pair;
  MPI_Comm_split(MPI_COMM_WORLD, rank < 2 ? 0 : MPI_UNDEFINED, rank, &pair);
  std::unique_ptr<Communicator> pair_comm;
  if (pair != MPI_COMM_NULL) pair_comm = std::move(NewMpiCommunicatorFromFortranHandle(MPI_Comm_c2f(pair)).value());

  const int64_t total_rows = mib * (1 << 20) / (kCols * 4);
  std::vector<Config> configs;
  for (const auto& [flag, cfg] : std::vector<std::pair<std::string, Config>>{
           {"16k", {"16 KiB", 4, total_rows / 16}},
           {"64k", {"64 KiB", 16, total_rows / 64}},
           {"1m", {"1 MiB", 256, total_rows / 1024}},
           {"large", {"large", total_rows / 4, 1}}}) {
    if (only.empty() || std::find(only.begin(), only.end(), flag) != only.end()) configs.push_back(cfg);
  }
  const std::vector<char> noise = bench::NormalFloats(static_cast<size_t>(total_rows / 4 * kCols), false, 5 + rank);
  if (rank == 0) {
    std::printf("records_bench: %lld MiB per record size, 4 ranks save, 4 load, 2 load resharded; compression off; "
                "page cache dropped between phases\n", static_cast<long long>(mib));
    std::printf("  %-7s %-10s %8s %9s %8s %14s %12s\n", "records", "phase", "GB/s", "of raw", "records", "CPU us/record",
                "reads/GB");
  }
  nlohmann::json results = nlohmann::json::array();
  std::vector<Figure> figures;
  std::map<std::string, double> large_gbs;
  for (const Config& cfg : configs) {
    const std::string dir = root + "/" + std::to_string(cfg.slab_rows);
    if (rank == 0) std::filesystem::remove_all(dir);
    MPI_Barrier(MPI_COMM_WORLD);
    const int64_t rows = 4 * cfg.slab_rows;  // per tensor
    const double gb = static_cast<double>(cfg.tensors * rows * kCols * 4) / 1e9;
    const uint64_t records = static_cast<uint64_t>(cfg.tensors) * 4 *
                             (cfg.tensors == 1 ? (cfg.slab_rows * kCols * 4 + (8 << 20) - 1) / (8 << 20) : 1);
    // This rank's slabs, all views into `noise` (tensor i's slab: its own rows of it).
    const float* base = reinterpret_cast<const float*>(noise.data());
    std::vector<float> save_buf(base, base + cfg.tensors * cfg.slab_rows * kCols);
    StateDict sd;
    for (int64_t i = 0; i < cfg.tensors; ++i) {
      sd.Add(Key(i), Shard("w." + Key(i), rows, rank * cfg.slab_rows, cfg.slab_rows,
                           save_buf.data() + i * cfg.slab_rows * kCols));
    }
    SaveOptions so;
    so.compression = Compression::kNone;
    // Raw limits: this rank's bytes written + fsynced, then read back.
    const std::string raw = dir + "-raw-" + std::to_string(rank);
    if (rank == 0) std::filesystem::create_directories(root);
    if (rank == 0) bench::DropCaches(root);  // every timed phase starts right after a drop (bench_util.h)
    MPI_Barrier(MPI_COMM_WORLD);
    const Cost raw_write = Measure(MPI_COMM_WORLD, true, [&] {
      bench::RawWrite(raw, {{reinterpret_cast<const char*>(save_buf.data()), save_buf.size() * 4}});
    });
    if (rank == 0) bench::DropCaches(root);
    MPI_Barrier(MPI_COMM_WORLD);
    std::vector<char> back;
    const Cost raw_read = Measure(MPI_COMM_WORLD, true, [&] { bench::RawRead(raw, &back); });
    back.clear();
    back.shrink_to_fit();
    std::filesystem::remove(raw);
    if (rank == 0) bench::DropCaches(root);
    MPI_Barrier(MPI_COMM_WORLD);

    const Cost save = Measure(MPI_COMM_WORLD, true, [&] {
      auto store = Store::Open(dir, comm.get());
      bench::CheckOrFail(store.status(), "open");
      bench::CheckOrFail((*store)->Put(1, sd, so), "put");
    }, cfg.name + " save");
    // `ranks` ranks of `c` each load 4 / ranks slabs; with `replicated`, every
    // rank of `c` loads all 4 (the read-once exchange reads each once).
    auto load = [&](Communicator* c, MPI_Comm m, bool member, int ranks, const std::string& phase,
                    bool replicated = false) {
      const int64_t per = replicated ? 4 : 4 / ranks;  // slabs per rank
      const int64_t first = replicated ? 0 : rank * per;
      std::vector<float> buf;
      StateDict req;
      if (member) {
        buf.assign(static_cast<size_t>(cfg.tensors * per * cfg.slab_rows * kCols), 0.0f);
        for (int64_t i = 0; i < cfg.tensors; ++i) {
          req.Add(Key(i), Shard("w." + Key(i), rows, first * cfg.slab_rows, per * cfg.slab_rows,
                                buf.data() + i * per * cfg.slab_rows * kCols));
        }
      }
      if (rank == 0) bench::DropCaches(dir);
      MPI_Barrier(MPI_COMM_WORLD);
      const Cost cost = Measure(m, member, [&] {
        auto store = Store::Open(dir, c, StoreOptions{.create_if_missing = false, .read_only = true});
        bench::CheckOrFail(store.status(), "open");
        LoadOptions lo;
        lo.read_once = replicated;
        bench::CheckOrFail((*store)->Get(1, &req, lo).status(), "get");
      }, cfg.name + " " + phase);
      // Check every element: slab s of tensor i holds rows [i * slab, (i + 1) * slab) of rank s's noise.
      if (member) {
        const size_t slab = static_cast<size_t>(cfg.slab_rows * kCols);
        for (int64_t k = 0; k < per; ++k) {
          const int src = static_cast<int>(first + k);
          const std::vector<char> theirs =
              src == rank ? std::vector<char>() : bench::NormalFloats(noise.size() / 4, false, 5 + src);
          const float* want = reinterpret_cast<const float*>(src == rank ? noise.data() : theirs.data());
          for (int64_t i = 0; i < cfg.tensors; ++i) {
            if (std::memcmp(buf.data() + (i * per + k) * slab, want + i * slab, slab * 4) != 0) {
              bench::FailJob("wrong data in tensor " + Key(i) + " (" + cfg.name + ")");
            }
          }
        }
      }
      return cost;
    };
    const Cost same = load(comm.get(), MPI_COMM_WORLD, true, 4, "load");
    const Cost resharded = load(pair_comm.get(), pair, pair != MPI_COMM_NULL, 2, "resharded");
    const Cost read_once = load(comm.get(), MPI_COMM_WORLD, true, 4, "read-once", /*replicated=*/true);
    // dcp-inspect verify of the whole store by one process (rank 0), against
    // all four ranks' raw reads of the same bytes (the disk's limit).
    if (rank == 0) bench::DropCaches(dir);
    MPI_Barrier(MPI_COMM_WORLD);
    const Cost verify = Measure(MPI_COMM_SELF, rank == 0, [&] {
      auto reader = inspect::StoreReader::Open(dir);
      bench::CheckOrFail(reader.status(), "open for verify");
      auto report = inspect::Verify(reader->get());
      bench::CheckOrFail(report.status(), "verify");
      if (!report->problems.empty() || report->raw_bytes != static_cast<uint64_t>(gb * 1e9 + 0.5)) {
        bench::FailJob("verify found problems or missed bytes (" + cfg.name + ")");
      }
    }, cfg.name + " verify");
    if (rank == 0) {
      struct Row {
        const char* phase;
        const Cost& c;
        const Cost& limit;
      };
      for (const Row& r : {Row{"save", save, raw_write}, Row{"load", same, raw_read},
                           Row{"resharded", resharded, raw_read}, Row{"read-once", read_once, raw_read},
                           Row{"verify", verify, raw_read}}) {
        const double gbs = gb / r.c.seconds, of_raw = r.limit.seconds / r.c.seconds;
        std::printf("  %-7s %-10s %8.2f %9.2f %8llu %14.1f %12.0f\n", cfg.name.c_str(), r.phase, gbs, of_raw,
                    static_cast<unsigned long long>(records), 1e6 * r.c.cpu / records, r.c.syscr / gb);
        results.push_back({{"records", cfg.name}, {"phase", r.phase}, {"gbs", gbs}, {"of_raw", of_raw},
                           {"records_count", records}, {"cpu_us_per_record", 1e6 * r.c.cpu / records},
                           {"read_syscalls_per_gb", r.c.syscr / gb}, {"raw_seconds", r.limit.seconds}});
        figures.push_back({cfg.name + " " + r.phase + ": of the raw limit", of_raw, ">= 0.85"});
        if (cfg.name == "large") large_gbs[r.phase] = gbs;
      }
    }
    if (rank == 0) std::filesystem::remove_all(dir);
    MPI_Barrier(MPI_COMM_WORLD);
  }
  if (rank == 0) {
    for (const auto& r : results) {
      if (r["records"] == "16 KiB" && large_gbs.count(r["phase"].get<std::string>()) != 0) {
        const double v = r["gbs"].get<double>() / large_gbs[r["phase"].get<std::string>()];
        std::printf("  16 KiB / large, %s: %.2f\n", r["phase"].get<std::string>().c_str(), v);
        figures.push_back({"16 KiB / large tensor, " + r["phase"].get<std::string>(), v, ">= 0.8"});
      }
    }
    std::filesystem::remove_all(root);
    if (!json.empty()) {
      std::ofstream(json) << nlohmann::json({{"bench", "records"},
                                             {"figures", bench::FiguresJson(figures)},
                                             {"results", results}})
                                 .dump(2)
                          << "\n";
    }
  }
  pair_comm.reset();
  if (pair != MPI_COMM_NULL) MPI_Comm_free(&pair);
  return 0;
}
