// Copyright (c) dcp authors.
//
// Small helpers shared by the benchmark programs: timing, dropping a file's
// pages from the page cache, raw file I/O baselines, N(0, 0.02) data.

#ifndef DCP_BENCH_BENCH_UTIL_H_
#define DCP_BENCH_BENCH_UTIL_H_

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace dcp::bench {

class Timer {
 public:
  Timer() : t0_(std::chrono::steady_clock::now()) {}
  double Seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count(); }

 private:
  std::chrono::steady_clock::time_point t0_;
};

// Drops the clean pages of every regular file under `path` (a file or a
// directory tree) from the page cache, so the next read goes to the disk.
void DropPageCache(const std::string& path);

// sync, then drops the whole page cache (needs root), else the pages of the
// files under `dir` (DropPageCache). A bench calls it right before its timed
// region, never earlier: on a VM whose balloon reports free pages to the host
// (virtio-balloon free page reporting, as on our Firecracker VMs), memory freed
// more than about 2 s ago has been handed back, and every page the kernel
// takes again (a cold read's page cache, a save's dirty pages) then faults
// through the host, about 5 us per 4 KiB page charged to the kernel's copy
// (scripts/bench.sh holds free pages for its run; bench_common.py,
// hold_free_pages, has the figures).
void DropCaches(const std::string& dir);

// Writes `pieces` (in order) to `path` with write() and fsync; returns seconds.
double RawWrite(const std::string& path, const std::vector<std::pair<const char*, size_t>>& pieces);
// Reads `path` whole into `buffer` in 8 MiB preads; returns seconds.
double RawRead(const std::string& path, std::vector<char>* buffer);

// A headline figure for the results table that scripts/bench.sh prints: a
// value (usually a ratio against a limit measured in the same run) and the
// goal it is held to: "" for none, else "<= X" or ">= X".
struct Figure {
  std::string name;
  double value = 0;
  std::string goal;
};
// true/false: whether the figure meets its goal; null if it has none.
nlohmann::json GoalMet(const Figure& f);
// [{"name", "value", "goal", "met"}, ...] for a bench's JSON "figures".
nlohmann::json FiguresJson(const std::vector<Figure>& figures);

// Profiles one phase of a bench with perf: when DCP_BENCH_PERF_PHASE names
// this phase and DCP_BENCH_PERF_CTL a perf control fifo (perf record
// --control=fifo:FILE -D -1), the scope enables perf's counters on entry and
// disables them on exit. Does nothing otherwise.
//   DCP_BENCH_PERF_PHASE="16 KiB save" perf record -D -1 --control=fifo:/tmp/ctl -o ... bench
class PerfScope {
 public:
  explicit PerfScope(const std::string& phase);
  ~PerfScope();
  PerfScope(const PerfScope&) = delete;
  PerfScope& operator=(const PerfScope&) = delete;

 private:
  int fd_ = -1;
};

// n values drawn from about N(0, 0.02), as float32 or bfloat16 bytes.
std::vector<char> NormalFloats(size_t n, bool bf16, uint64_t seed);

}  // namespace dcp::bench

#endif  // DCP_BENCH_BENCH_UTIL_H_
