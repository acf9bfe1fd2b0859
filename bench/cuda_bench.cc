// Copyright (c) dcp authors.
//
// cuda_bench: dcp with state in CUDA device memory, each figure against a
// limit measured in the same run:
//
//   device -> host   dcp's staging path (CopyToHost of 8 MiB chunks into a
//                    pinned buffer)  vs  one cudaMemcpy into pinned memory
//   save             Put from device views  vs  cudaMemcpy to pinned host +
//                    write + fsync of the same bytes
//   load             Get into device views  vs  read + cudaMemcpy to device
//   async snapshot   PutAsync's blocked time  vs  cudaMemcpy of the same bytes
//                    to pinned host memory
//
// Every load is checked byte for byte. Exits 77 when no device answers.
//
//   cuda_bench [--mib 2048] [--tensors 64] [--root DIR] [--json FILE]

#include <cuda_runtime.h>
#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "bench/bench_util.h"
#include "dcp/dcp.h"
#include "engine/cuda/device.h"

namespace {

void Check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    fmt::print(stderr, "{} failed: {}\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}

void Check(const dcp::Status& s, const char* what) {
  if (!s.ok()) {
    fmt::print(stderr, "{} failed: {}\n", what, s.ToString());
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"cuda_bench: dcp with CUDA device tensors"};
  size_t mib = 2048;
  int ntensors = 64;
  std::string root = "/tmp/dcp-cuda-bench", json_path;
  app.add_option("--mib", mib, "MiB of device state");
  app.add_option("--tensors", ntensors);
  app.add_option("--root", root);
  app.add_option("--json", json_path);
  CLI11_PARSE(app, argc, argv);
  if (dcp::cuda::DeviceCount() == 0) {
    fmt::print("cuda_bench: no CUDA device answers; skipped\n");
    return 77;
  }
  cudaDeviceProp prop;
  Check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  std::filesystem::remove_all(root);
  std::filesystem::create_directories(root);

  // bf16 tensors [rows, 4096] on the device, filled from a random host pattern.
  const int64_t cols = 4096;
  const size_t per = (mib << 20) / static_cast<size_t>(ntensors) / (cols * 2) * (cols * 2);
  const int64_t rows = static_cast<int64_t>(per / (cols * 2));
  const size_t total = per * static_cast<size_t>(ntensors);
  std::vector<char> pattern(per);
  std::mt19937_64 rng(1);
  for (size_t i = 0; i < per; i += 8) {
    const uint64_t v = rng();
    std::memcpy(pattern.data() + i, &v, std::min<size_t>(8, per - i));
  }
  std::vector<void*> dev(ntensors), back(ntensors);
  for (int i = 0; i < ntensors; ++i) {
    Check(cudaMalloc(&dev[i], per), "cudaMalloc");
    Check(cudaMalloc(&back[i], per), "cudaMalloc");
    pattern[0] = static_cast<char>(i);  // tensors differ
    Check(cudaMemcpy(dev[i], pattern.data(), per, cudaMemcpyHostToDevice), "upload");
  }
  auto view = [&](void* p) { return dcp::TensorView(p, dcp::DType::kBFloat16, {rows, cols}, {}, dcp::Device::Cuda(0)); };

  // Limits: one big D2H into pinned memory; then write + fsync; read + H2D.
  char* pinned = nullptr;
  Check(cudaHostAlloc(reinterpret_cast<void**>(&pinned), per, cudaHostAllocDefault), "cudaHostAlloc");
  std::memset(pinned, 0, per);
  dcp::bench::Timer t_d2h;
  for (int i = 0; i < ntensors; ++i) Check(cudaMemcpy(pinned, dev[i], per, cudaMemcpyDeviceToHost), "D2H");
  const double d2h_s = t_d2h.Seconds();
  dcp::bench::Timer t_stage;
  dcp::cuda::PinnedBuffer chunk;
  Check(chunk.Reserve(8 << 20), "pinned");
  dcp::cuda::Stream stream;
  for (int i = 0; i < ntensors; ++i) {
    const int64_t rows_per = (8 << 20) / (cols * 2);
    for (int64_t r = 0; r < rows; r += rows_per) {
      const dcp::TensorView piece = view(dev[i]).Slice(dcp::Box{{r, 0}, {std::min(rows_per, rows - r), cols}});
      Check(dcp::cuda::CopyToHost(piece, chunk.data(), &stream), "CopyToHost");
    }
  }
  const double stage_s = t_stage.Seconds();
  const std::string raw = root + "/raw.bin";
  dcp::bench::Timer t_raw_w;
  {
    std::vector<std::pair<const char*, size_t>> pieces;
    // Per tensor: D2H into the pinned buffer, then write it (sequential, like a simple saver).
    std::FILE* f = std::fopen(raw.c_str(), "wb");
    for (int i = 0; i < ntensors; ++i) {
      Check(cudaMemcpy(pinned, dev[i], per, cudaMemcpyDeviceToHost), "D2H");
      std::fwrite(pinned, 1, per, f);
    }
    std::fflush(f);
    fsync(fileno(f));
    std::fclose(f);
  }
  const double raw_w_s = t_raw_w.Seconds();
  dcp::bench::DropPageCache(raw);
  dcp::bench::Timer t_raw_r;
  {
    std::FILE* f = std::fopen(raw.c_str(), "rb");
    for (int i = 0; i < ntensors; ++i) {
      if (std::fread(pinned, 1, per, f) != per) Check(cudaErrorUnknown, "read");
      Check(cudaMemcpy(back[i], pinned, per, cudaMemcpyHostToDevice), "H2D");
    }
    std::fclose(f);
  }
  const double raw_r_s = t_raw_r.Seconds();

  // dcp: Put from device, Get into device, PutAsync snapshot.
  auto store = std::move(dcp::Store::Open(root + "/store", nullptr).value());
  dcp::StateDict sd;
  for (int i = 0; i < ntensors; ++i) sd.Add("t" + std::to_string(i), dcp::ShardedTensor::Whole("t" + std::to_string(i), view(dev[i])));
  dcp::bench::Timer t_put;
  Check(store->Put(1, sd), "Put");
  const double put_s = t_put.Seconds();
  dcp::bench::DropPageCache(root + "/store");
  for (int i = 0; i < ntensors; ++i) Check(cudaMemset(back[i], 0, per), "memset");
  dcp::StateDict req;
  for (int i = 0; i < ntensors; ++i) req.Add("t" + std::to_string(i), dcp::ShardedTensor::Whole("t" + std::to_string(i), view(back[i])));
  dcp::bench::Timer t_get;
  Check(store->Get(1, &req).status(), "Get");
  const double get_s = t_get.Seconds();
  size_t bad = 0;
  std::vector<char> a(per), b(per);
  for (int i = 0; i < ntensors; ++i) {
    Check(cudaMemcpy(a.data(), dev[i], per, cudaMemcpyDeviceToHost), "D2H");
    Check(cudaMemcpy(b.data(), back[i], per, cudaMemcpyDeviceToHost), "D2H");
    bad += std::memcmp(a.data(), b.data(), per) != 0;
  }
  std::vector<double> blocked;
  for (int r = 0; r < 3; ++r) {
    dcp::bench::Timer t_async;
    Check(store->PutAsync(10 + r, sd), "PutAsync");
    blocked.push_back(t_async.Seconds());
    for (int i = 0; i < ntensors; ++i) Check(cudaMemset(dev[i], r, 4096), "memset");  // training goes on
    Check(store->WaitForPut(), "WaitForPut");
  }
  const double gb = total / 1e9;
  const double warm = std::min(blocked[1], blocked[2]);
  fmt::print("cuda_bench: {} ({} SMs), {} bf16 tensors, {:.3f} GB on the device; loads verified: {}\n", prop.name,
             prop.multiProcessorCount, ntensors, gb, bad == 0 ? "OK" : "MISMATCH");
  fmt::print("{:<40} {:>9} {:>9} {:>7}\n", "", "dcp GB/s", "limit", "ratio");
  fmt::print("{:<40} {:>9.2f} {:>9.2f} {:>7.3f}\n", "D2H staging (8 MiB chunks vs cudaMemcpy)", gb / stage_s, gb / d2h_s,
             d2h_s / stage_s);
  fmt::print("{:<40} {:>9.2f} {:>9.2f} {:>7.3f}\n", "save from device (vs D2H+write+fsync)", gb / put_s, gb / raw_w_s,
             raw_w_s / put_s);
  fmt::print("{:<40} {:>9.2f} {:>9.2f} {:>7.3f}\n", "load into device (vs read+H2D)", gb / get_s, gb / raw_r_s,
             raw_r_s / get_s);
  fmt::print("{:<40} {:>9.3f} s vs {:.3f} s D2H: {:.2f}x (first {:.3f} s)\n", "PutAsync blocked (steady state)", warm,
             d2h_s, warm / d2h_s, blocked[0]);
  if (!json_path.empty()) {
    const std::vector<dcp::bench::Figure> figures = {
        {"device -> pinned staging GB/s / one cudaMemcpy", d2h_s / stage_s, ""},
        {"save from device / (D2H + write + fsync)", raw_w_s / put_s, ""},
        {"load into device / (read + H2D)", raw_r_s / get_s, ""},
        {"PutAsync blocked / cudaMemcpy D2H", warm / d2h_s, "<= 1.5"}};
    std::ofstream(json_path) << nlohmann::json({{"bench", "cuda"},
                                                {"figures", dcp::bench::FiguresJson(figures)},
                                                {"device", prop.name},
                                                {"bytes", total},
                                                {"d2h_s", d2h_s},
                                                {"staging_s", stage_s},
                                                {"raw_write_s", raw_w_s},
                                                {"raw_read_s", raw_r_s},
                                                {"put_s", put_s},
                                                {"get_s", get_s},
                                                {"async_blocked_s", blocked},
                                                {"verified", bad == 0}})
                                    .dump(2)
                             << "\n";
  }
  store.reset();
  std::filesystem::remove_all(root);
  return bad == 0 ? 0 : 1;
}
