// Copyright (c) dcp authors.
//
// bench_report: collects the JSON files the benchmark programs wrote (each
// with a "figures" array, see bench_util.h) into one results table (Markdown,
// on stdout) and one machine-readable file.
//
//   bench_report --out results.json [--date D] [--machine M] [--command C] a.json b.json ...
//
// A file that is missing or malformed is reported as a row saying so (a
// benchmark that failed must not vanish from the table).

#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  CLI::App app{"bench_report: one results table from the benchmarks' JSON files"};
  std::string out_path, date, machine, command;
  std::vector<std::string> inputs;
  app.add_option("--out", out_path, "write the combined results here")->required();
  app.add_option("--date", date);
  app.add_option("--machine", machine);
  app.add_option("--command", command, "the command that produced the results");
  app.add_option("inputs", inputs, "the benchmarks' JSON files")->required();
  CLI11_PARSE(app, argc, argv);

  nlohmann::json combined = {{"date", date}, {"machine", machine}, {"command", command}};
  nlohmann::json benches = nlohmann::json::array();
  fmt::print("dcp benchmarks, {} on {}\n", date, machine);
  if (!command.empty()) fmt::print("command: {}\n", command);
  fmt::print("\n| benchmark | figure | value | goal | met |\n|---|---|---|---|---|\n");
  int missed = 0, failed = 0;
  for (const std::string& path : inputs) {
    nlohmann::json j;
    std::ifstream in(path);
    try {
      if (!in) throw std::runtime_error("no results (the benchmark did not run to the end)");
      j = nlohmann::json::parse(in);
      if (!j.contains("figures") || !j["figures"].is_array()) throw std::runtime_error("no \"figures\" array");
    } catch (const std::exception& e) {
      fmt::print("| {} | {} | | | failed |\n", path, e.what());
      benches.push_back({{"file", path}, {"error", e.what()}});
      ++failed;
      continue;
    }
    const std::string name = j.value("bench", path);
    for (const auto& f : j["figures"]) {
      std::string met = "";
      if (f["met"].is_boolean()) {
        met = f["met"].get<bool>() ? "yes" : "**no**";
        if (!f["met"].get<bool>()) ++missed;
      }
      fmt::print("| {} | {} | {:.3f} | {} | {} |\n", name, f.value("name", ""), f.value("value", 0.0),
                 f.value("goal", ""), met);
    }
    j["file"] = path;
    benches.push_back(std::move(j));
  }
  combined["benchmarks"] = std::move(benches);
  combined["goals_missed"] = missed;
  combined["benchmarks_failed"] = failed;
  std::ofstream(out_path) << combined.dump(2) << "\n";
  fmt::print("\n{} goal(s) missed, {} benchmark(s) failed; results in {}\n", missed, failed, out_path);
  return failed == 0 ? 0 : 1;
}
