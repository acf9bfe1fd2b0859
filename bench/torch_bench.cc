// Copyright (c) dcp authors.
//
// torch_bench: the LibTorch adapter's overhead. The same torch tensors
// (GPT-like parameter shapes, bf16 weights and fp32 Adam states) are saved
// and loaded once through state dicts built by dcp::torch_adapter and once
// through state dicts of raw TensorViews over the same memory; the ratios
// adapter/raw are reported (state-dict construction, put, get).
//
//   torch_bench [--layers 8 --hidden 768] [--reps 3] [--json FILE]

#include <fmt/core.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "bench/bench_util.h"
#include "dcp/dcp.h"
#include "dcp/torch.h"

int main(int argc, char** argv) {
  CLI::App app{"torch_bench: LibTorch adapter overhead vs raw views"};
  int64_t layers = 8, hidden = 768;
  int reps = 3;
  std::string root = "/tmp/dcp-torch-bench", json_path;
  app.add_option("--layers", layers);
  app.add_option("--hidden", hidden);
  app.add_option("--reps", reps);
  app.add_option("--root", root);
  app.add_option("--json", json_path);
  CLI11_PARSE(app, argc, argv);
  torch::set_num_threads(1);
  std::filesystem::remove_all(root);

  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (int64_t l = 0; l < layers; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    for (auto [name, shape] : std::vector<std::pair<std::string, std::vector<int64_t>>>{
             {"qkv.weight", {3 * hidden, hidden}}, {"proj.weight", {hidden, hidden}},
             {"fc1.weight", {4 * hidden, hidden}}, {"fc2.weight", {hidden, 4 * hidden}},
             {"ln.weight", {hidden}}, {"ln.bias", {hidden}}}) {
      tensors.emplace_back(p + name, torch::randn(shape).to(at::kBFloat16));
      for (const char* s : {"exp_avg.", "exp_avg_sq."}) tensors.emplace_back(s + p + name, torch::randn(shape));
    }
  }
  uint64_t bytes = 0;
  for (auto& [k, t] : tensors) bytes += static_cast<uint64_t>(t.numel() * t.element_size());

  auto store = std::move(dcp::Store::Open(root, nullptr).value());
  auto build_torch = [&] {
    dcp::StateDict sd;
    for (auto& [k, t] : tensors) sd.Add(k, std::move(dcp::torch_adapter::Sharded(k, t).value()));
    return sd;
  };
  auto build_raw = [&] {
    dcp::StateDict sd;
    for (auto& [k, t] : tensors) {
      const dcp::DType d = t.scalar_type() == at::kBFloat16 ? dcp::DType::kBFloat16 : dcp::DType::kFloat32;
      sd.Add(k, dcp::ShardedTensor::Whole(k, dcp::TensorView(t.data_ptr(), d, dcp::Shape(t.sizes().begin(), t.sizes().end()))));
    }
    return sd;
  };
  double best[2][3] = {{1e30, 1e30, 1e30}, {1e30, 1e30, 1e30}};  // [raw|torch][build|put|get]
  uint64_t step = 0;
  for (int r = 0; r < reps; ++r) {
    for (int mode = 0; mode < 2; ++mode) {
      dcp::bench::Timer tb;
      dcp::StateDict sd = mode ? build_torch() : build_raw();
      best[mode][0] = std::min(best[mode][0], tb.Seconds());
      dcp::bench::Timer tp;
      dcp::Status s = store->Put(++step, sd);
      best[mode][1] = std::min(best[mode][1], tp.Seconds());
      dcp::bench::Timer tg;
      auto g = store->Get(step, &sd);
      best[mode][2] = std::min(best[mode][2], tg.Seconds());
      if (!s.ok() || !g.ok()) {
        fmt::print(stderr, "failed: {} {}\n", s.ToString(), g.status().ToString());
        return 1;
      }
    }
  }
  fmt::print("torch_bench: {} tensors, {:.3f} GB, best of {}\n", tensors.size(), bytes / 1e9, reps);
  fmt::print("{:<22} {:>12} {:>12} {:>8}\n", "phase", "raw views s", "adapter s", "ratio");
  const char* names[] = {"build state dict", "put", "get"};
  nlohmann::json j = {{"bench", "torch_adapter"}, {"tensors", tensors.size()}, {"bytes", bytes}};
  std::vector<dcp::bench::Figure> figures;
  for (int p = 0; p < 3; ++p) {
    fmt::print("{:<22} {:>12.5f} {:>12.5f} {:>8.3f}\n", names[p], best[0][p], best[1][p], best[1][p] / best[0][p]);
    j[std::string(names[p]) + " ratio"] = best[1][p] / best[0][p];
    figures.push_back({std::string(names[p]) + ": LibTorch adapter / raw views", best[1][p] / best[0][p], ""});
  }
  j["figures"] = dcp::bench::FiguresJson(figures);
  if (!json_path.empty()) std::ofstream(json_path) << j.dump(2) << "\n";
  std::filesystem::remove_all(root);
  return 0;
}
