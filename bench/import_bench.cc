// Copyright (c) dcp authors.
//
// import_bench: dcp-import of a sharded safetensors model against the limit of
// the same work done raw, and the import's peak memory.
//
//   import_bench --root DIR [--gib 2] [--files 4] [--json FILE]
//
// The model: --gib GiB of float32 values of about N(0, 0.02) in --files
// files and an index, tensors of 256 KiB to 64 MiB (a transformer's mix).
// Limit: page cache dropped, a raw sequential read of the files plus a raw
// write+fsync of the same bytes (what an import must at least do). The
// import runs in a child process (page cache dropped first) whose peak RSS
// (VmHWM) is reported above its RSS just before the import; goal: at most 2
// chunks + 64 MiB, whatever the model's size. Once with compression none
// (the I/O path alone) and once with the default (lz4-byte-plane).

#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "engine/interop/import.h"
#include "engine/interop/safetensors.h"

namespace {

namespace fs = std::filesystem;
using dcp::bench::Figure;
using dcp::bench::Timer;

// KiB from /proc/self/status ("VmRSS:", "VmHWM:").
uint64_t StatusKiB(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field, 0) == 0) return std::stoull(line.substr(std::strlen(field)));
  }
  return 0;
}

struct Model {
  std::vector<std::string> files;
  std::string index;
  uint64_t bytes = 0;
  uint64_t tensors = 0;
};

Model WriteModel(const std::string& dir, double gib, int nfiles) {
  Model m;
  const uint64_t total = static_cast<uint64_t>(gib * (1ull << 30));
  // Tensor sizes cycle through a transformer layer's mix (bytes).
  const uint64_t sizes[] = {64ull << 20, 16ull << 20, 16ull << 20, 48ull << 20, 256ull << 10, 256ull << 10,
                            4ull << 20};
  std::vector<std::vector<dcp::interop::SafetensorsTensor>> per_file(nfiles);
  uint64_t at = 0;
  for (int i = 0; at < total; ++i) {
    const uint64_t bytes = std::min<uint64_t>(sizes[i % 7], total - at) / 4096 * 4096;
    if (bytes == 0) break;
    dcp::interop::SafetensorsTensor t;
    t.name = "layers." + std::to_string(i / 7) + ".w" + std::to_string(i % 7);
    t.dtype = dcp::DType::kFloat32;
    t.shape = {static_cast<int64_t>(bytes / 4096), 1024};
    t.bytes = bytes;
    per_file[static_cast<size_t>(at * nfiles / total)].push_back(t);
    at += bytes;
    ++m.tensors;
  }
  std::map<std::string, std::string> weight_map;
  const std::vector<char> block = dcp::bench::NormalFloats((8u << 20) / 4, false, 7);
  for (int f = 0; f < nfiles; ++f) {
    char name[64];
    std::snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", f + 1, nfiles);
    const std::string path = dir + "/" + name;
    std::ofstream out(path, std::ios::binary);
    out << dcp::interop::EncodeSafetensorsHeader(per_file[f], {{"format", "pt"}}).value();
    for (const auto& t : per_file[f]) {
      for (uint64_t done = 0; done < t.bytes;) {
        const uint64_t n = std::min<uint64_t>(block.size(), t.bytes - done);
        out.write(block.data(), static_cast<std::streamsize>(n));
        done += n;
      }
      weight_map[t.name] = name;
      m.bytes += t.bytes;
    }
    m.files.push_back(path);
  }
  m.index = dir + "/model.safetensors.index.json";
  std::ofstream(m.index) << dcp::interop::EncodeSafetensorsIndex(weight_map, m.bytes);
  return m;
}

struct Run {
  double seconds = 0;
  double peak_above_idle_mib = 0;
  bool ok = false;
};

// The import in a child process: its time and its peak RSS above its RSS
// before the import.
Run ImportInChild(const std::string& root, const std::string& index, dcp::Compression compression,
                  uint64_t chunk_bytes) {
  int pipefd[2];
  if (pipe(pipefd) != 0) return {};
  const pid_t pid = fork();
  if (pid == 0) {
    close(pipefd[0]);
    const uint64_t idle = StatusKiB("VmRSS:");
    dcp::interop::ImportOptions o;
    o.save.compression = compression;
    o.save.chunk_bytes = chunk_bytes;
    Timer t;
    auto r = dcp::interop::ImportSafetensors(root, index, o);
    const double seconds = t.Seconds();
    if (!r.ok()) std::fprintf(stderr, "import failed: %s\n", r.status().ToString().c_str());
    const double result[3] = {r.ok() ? 1.0 : 0.0, seconds, (StatusKiB("VmHWM:") - idle) / 1024.0};
    (void)!write(pipefd[1], result, sizeof result);
    _exit(0);
  }
  close(pipefd[1]);
  double result[3] = {0, 0, 0};
  const bool got = read(pipefd[0], result, sizeof result) == static_cast<ssize_t>(sizeof result);
  close(pipefd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return {result[1], result[2], got && result[0] == 1.0};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dcp-import of a sharded safetensors model vs raw read + write+fsync"};
  std::string root = "/tmp/dcp-import-bench", json_path;
  double gib = 2;
  int files = 4;
  app.add_option("--root", root, "scratch directory (removed at the end)");
  app.add_option("--gib", gib, "model size");
  app.add_option("--files", files, "safetensors files")->check(CLI::Range(1, 64));
  app.add_option("--json", json_path, "write results as JSON here");
  CLI11_PARSE(app, argc, argv);

  fs::remove_all(root);
  fs::create_directories(root + "/model");
  const Model m = WriteModel(root + "/model", gib, files);
  std::printf("import_bench: %.2f GiB, %llu tensors in %d files; page cache dropped before each phase\n",
              m.bytes / double(1ull << 30), static_cast<unsigned long long>(m.tensors), files);

  // The limit: read every file raw, then write+fsync the same bytes.
  dcp::bench::DropPageCache(root + "/model");
  double read_s = 0;
  std::vector<char> buffer;
  for (const std::string& f : m.files) read_s += dcp::bench::RawRead(f, &buffer);
  buffer.clear();
  buffer.shrink_to_fit();
  const std::vector<char> block(64u << 20, 1);
  std::vector<std::pair<const char*, size_t>> pieces;
  for (uint64_t done = 0; done < m.bytes; done += block.size()) {
    pieces.push_back({block.data(), static_cast<size_t>(std::min<uint64_t>(block.size(), m.bytes - done))});
  }
  const double write_s = dcp::bench::RawWrite(root + "/raw.bin", pieces);
  fs::remove(root + "/raw.bin");
  const double raw_s = read_s + write_s;
  std::printf("  raw: read %.2f s (%.2f GB/s) + write+fsync %.2f s (%.2f GB/s) = %.2f s\n", read_s,
              m.bytes / read_s / 1e9, write_s, m.bytes / write_s / 1e9, raw_s);

  std::vector<Figure> figures;
  nlohmann::json results = nlohmann::json::array();
  const uint64_t chunk = dcp::SaveOptions().chunk_bytes;
  for (auto [name, c] : {std::pair<const char*, dcp::Compression>{"none", dcp::Compression::kNone},
                         {"lz4-byte-plane", dcp::Compression::kLz4BytePlane}}) {
    const std::string store = root + "/store-" + name;
    dcp::bench::DropPageCache(root + "/model");
    const Run r = ImportInChild(store, m.index, c, chunk);
    fs::remove_all(store);
    if (!r.ok) return 1;
    const double ratio = raw_s / r.seconds;
    const double allowance = 2.0 * chunk / (1 << 20) + 64;
    std::printf("  import (%s): %.2f s (%.2f GB/s), %.2f of raw; peak RSS %.1f MiB above idle (allowance %.0f)\n",
                name, r.seconds, m.bytes / r.seconds / 1e9, ratio, r.peak_above_idle_mib, allowance);
    figures.push_back({std::string("import ") + name + ": raw time / import time", ratio, ">= 0.8"});
    figures.push_back({std::string("import ") + name + ": peak RSS above idle (MiB)", r.peak_above_idle_mib,
                       "<= " + std::to_string(static_cast<int>(allowance))});
    results.push_back({{"compression", name},
                       {"seconds", r.seconds},
                       {"gbs", m.bytes / r.seconds / 1e9},
                       {"ratio_to_raw", ratio},
                       {"peak_rss_above_idle_mib", r.peak_above_idle_mib}});
  }
  fs::remove_all(root);
  if (!json_path.empty()) {
    std::ofstream(json_path) << nlohmann::json({{"bench", "import"},
                                                {"bytes", m.bytes},
                                                {"raw_read_s", read_s},
                                                {"raw_write_s", write_s},
                                                {"figures", dcp::bench::FiguresJson(figures)},
                                                {"results", results}})
                                    .dump(2)
                             << "\n";
  }
  return 0;
}
