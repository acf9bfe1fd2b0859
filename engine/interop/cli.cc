// Copyright (c) dcp authors.

#include "engine/interop/cli.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/interop/import.h"

namespace dcp::interop {
namespace {

int Fail(const Status& s) {
  std::fprintf(stderr, "dcp-import: %s\n", s.ToString().c_str());
  return s.IsInvalidArgument() ? 2 : 1;
}

}  // namespace

int RunImportCli(int argc, char** argv) {
  CLI::App app{"dcp-import: bring a safetensors model (one file, or a sharded model's index.json) into one step "
               "of a dcp store, each tensor a whole shard that any layout can load"};
  std::string root, source, rules, compression = "lz4-byte-plane";
  uint64_t step = 0, chunk_bytes = SaveOptions().chunk_bytes;
  bool keep_unmatched = false, overwrite = false, incremental = false, json = false;
  int threads = 0;
  app.add_option("root", root, "the store (created if missing)")->required();
  app.add_option("source", source, "a .safetensors file or a *.safetensors.index.json")->required();
  auto* step_opt = app.add_option("--step", step, "the step to write (default: the latest + 1)");
  app.add_option("--rules", rules, "key mapping rules (JSON: rename, split, concat; see docs/format.md)");
  app.add_flag("--keep-unmatched", keep_unmatched, "keep tensors no rule matches under their own names");
  app.add_flag("--overwrite", overwrite, "replace the step if it exists");
  app.add_flag("--incremental", incremental, "reference the latest step's records where the bytes did not change");
  app.add_option("--chunk-bytes", chunk_bytes, "chunk size of the records")->check(CLI::Range(uint64_t{1}, uint64_t{1} << 30));
  app.add_option("--compression", compression, "none, lz4 or lz4-byte-plane")
      ->check(CLI::IsMember({"none", "lz4", "lz4-byte-plane"}));
  app.add_option("--threads", threads, "encoding threads (0: as many as cores)")->check(CLI::Range(0, 1024));
  app.add_flag("--json", json, "print the report as JSON");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  KeyMapping mapping;
  ImportOptions options;
  if (!rules.empty()) {
    auto parsed = KeyMapping::Read(rules);
    if (!parsed.ok()) return Fail(parsed.status());
    mapping = std::move(parsed).value();
    options.mapping = &mapping;
  }
  if (step_opt->count() > 0) options.step = step;
  options.keep_unmatched = keep_unmatched;
  options.save.overwrite = overwrite;
  options.save.incremental = incremental;
  options.save.chunk_bytes = chunk_bytes;
  options.save.encode_threads = threads;
  options.save.compression = compression == "none" ? Compression::kNone
                             : compression == "lz4" ? Compression::kLz4
                                                    : Compression::kLz4BytePlane;
  auto r = ImportSafetensors(root, source, options);
  if (!r.ok()) return Fail(r.status());
  if (json) {
    const nlohmann::json j = {{"step", r->step},
                              {"files", r->files},
                              {"source_tensors", r->source_tensors},
                              {"tensors", r->tensors},
                              {"data_bytes", r->data_bytes},
                              {"chunks_written", r->save.chunks_written},
                              {"chunks_referenced", r->save.chunks_referenced},
                              {"stored_bytes_written", r->save.stored_bytes_written},
                              {"seconds", r->seconds}};
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("imported %llu tensors (%llu in %llu file(s)) as step %llu of %s: %.1f MB in %.2f s (%.0f MB/s)\n",
                static_cast<unsigned long long>(r->tensors), static_cast<unsigned long long>(r->source_tensors),
                static_cast<unsigned long long>(r->files), static_cast<unsigned long long>(r->step), root.c_str(),
                r->data_bytes / 1e6, r->seconds, r->seconds > 0 ? r->data_bytes / 1e6 / r->seconds : 0.0);
  }
  return 0;
}

}  // namespace dcp::interop
