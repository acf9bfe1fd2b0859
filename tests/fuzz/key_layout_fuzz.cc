// Copyright (c) dcp authors.
//
// Fuzz target: the names and keys dcp parses back from disk (record keys from
// a rank store, manifest and rank-store directory names from a listing, the
// store marker's contents). Invariants: no crash; whatever parses names the
// same thing when built again from its parts.

#include <string>

#include "engine/store/key_layout.h"
#include "tests/fuzz/fuzz_check.h"

using namespace dcp;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input = fuzz::Bytes(data, size);

  auto k = storage::ParseRecordKey(input);
  if (k.ok()) {
    std::string built;
    switch (k->kind) {
      case storage::ParsedRecordKey::Kind::kChunk:
        built = storage::ChunkRecordKey(k->generation, k->key, k->origin);
        break;
      case storage::ParsedRecordKey::Kind::kObject:
        built = storage::ObjectRecordKey(k->generation, k->key);
        break;
      case storage::ParsedRecordKey::Kind::kGenerationIndex:
        break;
    }
    if (!built.empty()) {
      auto again = storage::ParseRecordKey(built);
      FUZZ_CHECK(again.ok());
      FUZZ_CHECK(again->kind == k->kind && again->generation == k->generation && again->key == k->key &&
                 again->origin == k->origin);
      FUZZ_CHECK(storage::GenerationOfKey(built) == k->generation);
    }
  }
  (void)storage::GenerationOfKey(input);

  if (auto step = storage::ParseManifestFileName(input)) {
    const std::string path = storage::ManifestPath("", *step);
    const std::string name = path.substr(path.rfind('/') + 1);
    FUZZ_CHECK(storage::ParseManifestFileName(name) == step);
  }
  if (auto rank = storage::ParseRankStoreName(input)) {
    const std::string path = storage::RankStorePath("", *rank);
    const std::string name = path.substr(path.rfind('/') + 1);
    FUZZ_CHECK(storage::ParseRankStoreName(name) == rank);
  }
  (void)storage::IsTableFileName(input);
  (void)storage::ParseMarker(input);
  return 0;
}
