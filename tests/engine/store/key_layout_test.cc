// Copyright (c) dcp authors.
// Tests of engine/store/key_layout.cc: on-disk names and record keys.

#include "engine/store/key_layout.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <random>
#include <string>
#include <vector>

#include "tests/testing/status_matchers.h"

namespace dcp::storage {
namespace {

using dcp::testing::StatusIs;

TEST_CASE("Paths under a store root", "[store]") {
  CHECK(MarkerPath("/r") == "/r/DCP_STORE");
  CHECK(LatestPath("/r") == "/r/LATEST");
  CHECK(StepsDir("/r") == "/r/steps");
  CHECK(ManifestPath("/r", 42) == "/r/steps/00000000000000000042.manifest");
  CHECK(ManifestPath("/r", UINT64_MAX) == "/r/steps/18446744073709551615.manifest");
  CHECK(ManifestTempPath("/r", 42, 0xabc) == "/r/steps/.tmp.00000000000000000042.0000000000000abc");
  CHECK(LatestTempPath("/r", 0xabc) == "/r/.tmp.LATEST.0000000000000abc");
  CHECK(RanksDir("/r") == "/r/ranks");
  CHECK(RankStorePath("/r", 3) == "/r/ranks/rank-00003");
  CHECK(RankStorePath("/r", 123456) == "/r/ranks/rank-123456");
  CHECK(RankIngestDir("/r/ranks/rank-00003") == "/r/ranks/rank-00003/ingest");
}

TEST_CASE("Manifest file names parse and every other name does not", "[store]") {
  for (uint64_t step : {uint64_t{0}, uint64_t{1}, uint64_t{42}, uint64_t{1} << 40, UINT64_MAX}) {
    const std::string path = ManifestPath("/r", step);
    const std::string name = path.substr(path.rfind('/') + 1);
    const auto parsed = ParseManifestFileName(name);
    REQUIRE(parsed.has_value());
    CHECK(*parsed == step);
  }
  const std::string tmp = ManifestTempPath("/r", 42, 7);
  CHECK_FALSE(ParseManifestFileName(tmp.substr(tmp.rfind('/') + 1)).has_value());
  for (const char* name :
       {"", ".manifest", "42.manifest", "0000000000000000042.manifest", "000000000000000000042.manifest",
        "00000000000000000042.manifes", "00000000000000000042.manifest.tmp", "00000000000000000042.MANIFEST",
        "0000000000000000004x.manifest", "-0000000000000000042.manifest", "+0000000000000000042.manifest",
        " 0000000000000000042.manifest", "\t0000000000000000042.manifest", "99999999999999999999.manifest",
        "0x000000000000000042.manifest", "LATEST", "DCP_STORE"}) {
    INFO("'" << name << "'");
    CHECK_FALSE(ParseManifestFileName(name).has_value());
  }
}

TEST_CASE("The store marker round trips and malformed markers are data loss", "[store]") {
  CHECK(MarkerContents() == "dcp-store 1\n");
  CHECK(ValueOrDie(ParseMarker(MarkerContents())) == kStoreFormatVersion);
  CHECK(ValueOrDie(ParseMarker("dcp-store 7")) == 7u);
  CHECK(ValueOrDie(ParseMarker("dcp-store 4294967295\n")) == 4294967295u);
  CHECK_THAT(ParseMarker("").status(), StatusIs(StatusCode::kDataLoss, "store marker is malformed"));
  CHECK_THAT(ParseMarker("rocksdb 1\n").status(), StatusIs(StatusCode::kDataLoss, "store marker is malformed"));
  for (const char* bad : {"dcp-store \n", "dcp-store x\n", "dcp-store 1x\n", "dcp-store -1\n", "dcp-store 4294967296\n",
                          "dcp-store  1\n", "dcp-store 1 2\n"}) {
    INFO("'" << bad << "'");
    CHECK_THAT(ParseMarker(bad).status(), StatusIs(StatusCode::kDataLoss, "store marker has a malformed version"));
  }
}

TEST_CASE("Chunk record keys round trip", "[store]") {
  struct Case {
    uint64_t generation;
    std::string key;
    Shape origin;
  };
  const std::vector<Case> cases = {
      {0, "w", {0}},
      {1, "decoder.layers.0.mlp.weight", {128, 0}},
      {0xdeadbeef, "a@b", {1, 2, 3}},
      {UINT64_MAX, "has,comma/and/slash@and@at", {0, 0, 0, 0}},
      {7, "scalar", {}},
      {7, "@", {5}},
      {8, "trailing@", {}},
      {9, "big", {INT64_MAX, 0, 1}},
      {10, "sp ace", {12345678901234}},
  };
  for (const Case& c : cases) {
    const std::string rk = ChunkRecordKey(c.generation, c.key, c.origin);
    INFO(rk);
    CHECK(rk.substr(16, 3) == "/c/");
    const ParsedRecordKey p = ValueOrDie(ParseRecordKey(rk));
    CHECK(p.kind == ParsedRecordKey::Kind::kChunk);
    CHECK(p.generation == c.generation);
    CHECK(p.key == c.key);
    CHECK(p.origin == c.origin);
  }
  CHECK(ChunkRecordKey(0x2a, "t@x", {3, 0}) == "000000000000002a/c/t@x@3,0");
  CHECK(ChunkRecordKey(0x2a, "s", {}) == "000000000000002a/c/s@");
}

TEST_CASE("Object record keys round trip", "[store]") {
  for (const std::string& key : std::vector<std::string>{"opt/shard_0.1_2.2", "a@1,2", "x", "with/slash@and,comma"}) {
    const std::string rk = ObjectRecordKey(0x1234, key);
    INFO(rk);
    CHECK(rk == "0000000000001234/o/" + key);
    const ParsedRecordKey p = ValueOrDie(ParseRecordKey(rk));
    CHECK(p.kind == ParsedRecordKey::Kind::kObject);
    CHECK(p.generation == 0x1234);
    CHECK(p.key == key);
    CHECK(p.origin.empty());
  }
}

TEST_CASE("Record keys sort by generation, then kind and key", "[store]") {
  std::mt19937_64 rng(3);
  std::vector<uint64_t> gens = {0, 1, 9, 10, 15, 16, 255, 256, 0xffffffff, 0x100000000ULL, UINT64_MAX};
  for (int i = 0; i < 50; ++i) gens.push_back(rng());
  std::vector<std::pair<std::string, uint64_t>> keys;
  for (uint64_t g : gens) {
    keys.emplace_back(ChunkRecordKey(g, "zzz", {99}), g);
    keys.emplace_back(ObjectRecordKey(g, "aaa"), g);
    keys.emplace_back(GenerationIndexKey(g, 3), g);
  }
  std::sort(keys.begin(), keys.end());
  // Generation order, and within a generation chunks, objects, then the index.
  for (size_t i = 1; i < keys.size(); ++i) CHECK(keys[i - 1].second <= keys[i].second);
  for (size_t i = 0; i + 2 < keys.size(); i += 3) {
    CHECK(keys[i].first.substr(16, 3) == "/c/");
    CHECK(keys[i + 1].first.substr(16, 3) == "/o/");
    CHECK(keys[i + 2].first.substr(16, 3) == "/x/");
  }
  // Records of one put sort together, whatever their tensor keys, and inside
  // the generation's range.
  CHECK(ChunkRecordKey(5, "zzzz", {9}) < ChunkRecordKey(6, "a", {0}));
  CHECK(ObjectRecordKey(5, "zzzz") < ChunkRecordKey(6, "a", {0}));
  CHECK(ChunkRecordKey(0xf, "zzzz", {9}) < ChunkRecordKey(0x10, "a", {0}));
  for (uint64_t g : gens) {
    const auto [begin, end] = GenerationRange(g);
    for (const std::string& k : {ChunkRecordKey(g, "~~~", {1}), ObjectRecordKey(g, "\x7f"), GenerationIndexKey(g, 9)}) {
      CHECK(begin <= k);
      CHECK(k < end);
    }
    if (g != UINT64_MAX) CHECK(end <= ChunkRecordKey(g + 1, "", {}));
  }
  const ParsedRecordKey x = ValueOrDie(ParseRecordKey(GenerationIndexKey(7, 2)));
  CHECK(x.kind == ParsedRecordKey::Kind::kGenerationIndex);
  CHECK(x.generation == 7);
  CHECK(x.key == "2");
}

TEST_CASE("Malformed record keys are invalid arguments", "[store]") {
  const std::string gen = "000000000000002a";
  for (const std::string& bad : std::vector<std::string>{
           "",
           gen + "/c",
           gen + "/q/key@1",
           gen + ":c/key@1",
           gen + "/c:key@1",
           gen + "/c/key",     // no origin separator
           gen + "/c/@1",      // empty tensor key
           gen + "/c/key@1,",  // trailing comma
           gen + "/c/key@,1",
           gen + "/c/key@1,,2",
           gen + "/c/key@-1",
           gen + "/c/key@+1",
           gen + "/c/key@ 1",
           gen + "/c/key@1 ",
           gen + "/c/key@x",
           gen + "/c/key@9223372036854775808",  // INT64_MAX + 1
           gen + "/c/key@99999999999999999999999",
           "00000000000000zz/c/key@1",
           " 00000000000002a/c/key@1",
           "-00000000000002a/c/key@1",
           "0x0000000000002a/c/key@1",
           gen.substr(1) + "/c/key@1",
           gen + "/o",
      }) {
    INFO("'" << bad << "'");
    CHECK_THAT(ParseRecordKey(bad).status(), StatusIs(StatusCode::kInvalidArgument, "is not a dcp record key"));
  }
  // The message quotes the key.
  CHECK_THAT(ParseRecordKey("nonsense-key-of-some-length").status(),
             StatusIs(StatusCode::kInvalidArgument, "'nonsense-key-of-some-length' is not a dcp record key"));
  CHECK_THAT(ParseRecordKey(gen + "/o/").status(), StatusIs(StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace dcp::storage
