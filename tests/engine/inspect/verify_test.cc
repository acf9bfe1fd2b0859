// Copyright (c) dcp authors.

#include "engine/inspect/verify.h"

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>

#include "engine/inspect/render.h"
#include "engine/manifest/manifest_codec.h"
#include "engine/store/catalog.h"
#include "engine/store/key_layout.h"
#include "tests/engine/inspect/inspect_fixture.h"
#include "tests/testing/status_matchers.h"

namespace dcp::inspect {
namespace {

using testing::StatusIs;

uint64_t Generation(const InspectFixture& f, uint64_t step) {
  auto reader = f.Reader();
  return ValueOrDie(reader->Load(step))->manifest().generation;
}

void Republish(const InspectFixture& f, uint64_t step, const std::function<void(manifest::StepManifest*)>& edit) {
  auto m = ValueOrDie(manifest::DecodeManifest(ValueOrDie(storage::ReadManifestFile(f.root(), step)), "m"));
  edit(&m);
  REQUIRE_OK(storage::PublishManifest(f.root(), step, m.generation, manifest::EncodeManifest(m)));
}

TEST_CASE("Verify reads every record of an intact store once", "[inspect]") {
  InspectFixture f;
  auto reader = f.Reader();
  std::mutex mu;
  VerifyProgress last;
  int calls = 0;
  VerifyOptions o;
  o.threads = 3;
  o.progress = [&](const VerifyProgress& p) {
    std::lock_guard<std::mutex> lock(mu);
    CHECK(p.records_done <= p.records_total);
    last = p;
    ++calls;
  };
  const VerifyReport r = ValueOrDie(Verify(reader.get(), o));
  INFO(RenderVerifyText(r));
  CHECK(r.ok());
  CHECK(r.steps == std::vector<uint64_t>{5, 7, 9});
  CHECK(r.tensors == 8 + 8 + 8);
  CHECK(r.objects == 6);
  // Unchanged chunks of step 7 are step 5's records: read once, not twice.
  CHECK(r.records_read < r.chunks + r.objects);
  CHECK(last.records_done == last.records_total);
  CHECK(last.records_total == r.records_read);
  CHECK(last.bytes_done == r.stored_bytes);
  CHECK(calls == static_cast<int>(r.records_read) + 1);
  CHECK(r.raw_bytes > 0);
  CHECK(RenderVerifyText(r).find("OK: no problems") != std::string::npos);
  const auto j = nlohmann::json::parse(RenderVerifyJson(r));
  CHECK(j["ok"] == true);
  CHECK(j["problems"].empty());
  CHECK(j["records_read"] == r.records_read);

  VerifyOptions one;
  one.step = 7;
  const VerifyReport r7 = ValueOrDie(Verify(reader.get(), one));
  CHECK(r7.ok());
  CHECK(r7.steps == std::vector<uint64_t>{7});
  CHECK(r7.records_read == r7.chunks + r7.objects);
  one.step = 8;
  REQUIRE_THAT(Verify(reader.get(), one).status(), StatusIs(StatusCode::kNotFound, "step 8 is not committed"));
}

TEST_CASE("Verify names the key, offset and rank of a corrupted record", "[inspect]") {
  InspectFixture f;
  // Flip one byte inside layer.w's chunk at rows 128..192, which rank 1 wrote
  // for step 5 and step 7 refers to (step 9 chunks differently).
  const std::string key = storage::ChunkRecordKey(Generation(f, 5), "layer.w", {128, 0});
  REQUIRE_FALSE(CorruptStoredRecord(f.root(), 1, key, 1000).empty());
  auto reader = f.Reader();

  VerifyOptions o;
  o.step = 5;
  const VerifyReport r5 = ValueOrDie(Verify(reader.get(), o));
  INFO(RenderVerifyText(r5));
  REQUIRE(r5.problems.size() == 1);
  const Problem& p = r5.problems[0];
  CHECK(p.kind == Problem::Kind::kRecord);
  CHECK(p.step == 5);
  CHECK(p.key == "layer.w");
  REQUIRE(p.offset.has_value());
  CHECK(*p.offset == Shape{128, 0});
  REQUIRE(p.rank.has_value());
  CHECK(*p.rank == 1);
  CHECK(p.message.find("rank store 1") != std::string::npos);
  const std::string text = RenderVerifyText(r5);
  CHECK(text.find("1 problem:") != std::string::npos);
  CHECK(text.find("[record] step 5: tensor 'layer.w' chunk at offset (128, 0) in rank store 1: ") != std::string::npos);
  const auto j = nlohmann::json::parse(RenderVerifyJson(r5));
  CHECK(j["ok"] == false);
  CHECK(j["problems"][0]["key"] == "layer.w");
  CHECK(j["problems"][0]["offset"] == nlohmann::json::array({128, 0}));
  CHECK(j["problems"][0]["rank"] == 1);
  CHECK(j["problems"][0]["kind"] == "record");

  // Every step: the record is read once, and both steps that use it are named.
  const VerifyReport all = ValueOrDie(Verify(reader.get()));
  REQUIRE(all.problems.size() == 2);
  CHECK(all.problems[0].step == 5);
  CHECK(all.problems[1].step == 7);
  CHECK(all.problems[1].key == "layer.w");
  CHECK(*all.problems[1].offset == Shape{128, 0});
}

TEST_CASE("Verify checks records against the manifest, invariants and references", "[inspect]") {
  InspectFixture f;
  Republish(f, 5, [](manifest::StepManifest* m) {
    for (auto& t : m->tensors) {
      if (t.key == "emb") t.chunks[0].record.checksum.lo ^= 1;                   // content differs from the manifest
      if (t.key == "counts") t.chunks[1].record.generation = m->generation + manifest::kGenerationParts;  // a later step's
      if (t.key == "f8") t.chunks[0].record.store_rank = 3;                      // a rank that did not save the step
      if (t.key == "stats") {  // a hole, and a record that is larger than the manifest says
        t.chunks[0].box.shape[0] = 11;
        t.chunks[0].record.raw_size = 44;
      }
    }
    m->objects[1].record.stored_size += 1;
    m->common_state = "not flexbuffers";
  });
  auto reader = f.Reader();
  VerifyOptions o;
  o.step = 5;
  const VerifyReport r = ValueOrDie(Verify(reader.get(), o));
  const std::string text = RenderVerifyText(r);
  INFO(text);
  auto has = [&](Problem::Kind kind, const std::string& key, const std::string& fragment) {
    for (const Problem& p : r.problems) {
      if (p.kind == kind && p.key == key && p.message.find(fragment) != std::string::npos) return true;
    }
    return false;
  };
  CHECK(has(Problem::Kind::kRecord, "emb", "does not match the manifest: checksum"));
  CHECK(has(Problem::Kind::kReference, "counts", "newer than the step's"));
  CHECK(has(Problem::Kind::kReference, "f8", "refers to rank store 3"));
  CHECK(has(Problem::Kind::kInvariant, "stats", "elements uncovered"));
  CHECK(has(Problem::Kind::kRecord, "stats", "raw size 48 (manifest: 44)"));
  CHECK(has(Problem::Kind::kRecord, "rng/shard_1_2", "stored size"));
  CHECK(has(Problem::Kind::kCommonState, "", ""));
  CHECK(r.problems.size() == 7);
}

TEST_CASE("Verify reports unreadable manifests and missing rank stores", "[inspect]") {
  InspectFixture f;
  std::ofstream(storage::ManifestPath(f.root(), 9), std::ios::trunc) << "garbage";
  REQUIRE(std::rename(storage::RankStorePath(f.root(), 1).c_str(), (f.root() + "/rank1.moved").c_str()) == 0);
  auto reader = f.Reader();
  const VerifyReport r = ValueOrDie(Verify(reader.get()));
  INFO(RenderVerifyText(r));
  CHECK(r.steps == std::vector<uint64_t>{5, 7, 9});
  bool manifest = false;
  size_t rank1 = 0;
  for (const Problem& p : r.problems) {
    if (p.kind == Problem::Kind::kManifest) {
      manifest = true;
      CHECK(p.step == 9);
      CHECK(p.message.find("00000000000000000009.manifest") != std::string::npos);
    }
    if (p.kind == Problem::Kind::kRecord) {
      CHECK(*p.rank == 1);
      CHECK(p.message.find("rank store 1") != std::string::npos);
      ++rank1;
    }
  }
  CHECK(manifest);
  // Every reference to a rank-1 record in steps 5 and 7, counted from their
  // manifests (which rank writes a replicated chunk depends on the fully
  // parallel assignment).
  size_t expected = 0;
  for (uint64_t step : {5, 7}) {
    auto loaded = ValueOrDie(reader->Load(step));
    for (const auto& t : loaded->manifest().tensors) {
      for (const auto& c : t.chunks) expected += c.record.store_rank == 1;
    }
    for (const auto& o : loaded->manifest().objects) expected += o.record.store_rank == 1;
  }
  CHECK(expected >= 14);  // at least the main replicas' records of rank 1
  CHECK(rank1 == expected);
  CHECK(RenderVerifyText(r, 3).find("more (--json lists all)") != std::string::npos);
}

}  // namespace
}  // namespace dcp::inspect
