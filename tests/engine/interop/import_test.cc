// Copyright (c) dcp authors.
// Tests of engine/interop/import.cc: safetensors models into a step, and back
// out through dcp-inspect's export.

#include "engine/interop/import.h"

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "dcp/communicator.h"
#include "engine/base/file.h"
#include "engine/inspect/export.h"
#include "engine/inspect/reader.h"
#include "engine/protocol/load.h"
#include "engine/protocol/store_context.h"
#include "engine/store/catalog.h"
#include "tests/engine/interop/safetensors_fixture.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace dcp::interop {
namespace {

using testing::StatusIs;

// Every tensor of `step` in `root`, whole: name -> bytes.
std::map<std::string, std::pair<DType, std::string>> LoadAll(const std::string& root, uint64_t step,
                                                             Value* common = nullptr) {
  auto self = NewSelfCommunicator();
  StoreOptions read_only;
  read_only.read_only = true;
  auto store = protocol::OpenStore(self.get(), root, read_only);
  REQUIRE_OK(store.status());
  auto plain = protocol::LoadPlain(store->get(), step, {}, LoadOptions());
  REQUIRE_OK(plain.status());
  std::map<std::string, std::pair<DType, std::string>> out;
  for (const PlainTensor& t : plain->tensors) {
    out[t.key()] = {t.dtype(), std::string(reinterpret_cast<const char*>(t.data()), t.size_bytes())};
  }
  if (common != nullptr) *common = plain->common_state;
  return out;
}

std::string FileBytes(const std::string& path, uint64_t offset, uint64_t n) {
  auto f = base::RandomAccessFile::Open(path);
  REQUIRE_OK(f.status());
  std::string out(n, '\0');
  REQUIRE_OK((*f)->Read(offset, n, out.data()));
  return out;
}

const std::vector<TestTensor> kModel = {
    {"embed.weight", DType::kBFloat16, {40, 6}}, {"norm.weight", DType::kFloat16, {6}},
    {"proj.weight", DType::kFloat32, {9, 7}},    {"position", DType::kInt64, {}},
    {"mask", DType::kBool, {5, 3}},              {"empty", DType::kFloat32, {0, 3}},
};

ImportOptions SmallChunks() {
  ImportOptions o;
  o.save.chunk_bytes = 40;  // many chunks per tensor, cut inside rows
  o.save.encode_threads = 2;
  return o;
}

TEST_CASE("import then export gives back the same names, dtypes, bytes and metadata", "[interop]") {
  testing::TempDir dir;
  WriteSafetensors(dir.Sub("model.safetensors"), kModel, {{"format", "pt"}, {"origin", "test"}});
  auto r = ImportSafetensors(dir.Sub("store"), dir.Sub("model.safetensors"), SmallChunks());
  REQUIRE_OK(r.status());
  CHECK(r->step == 0);
  CHECK(r->tensors == kModel.size());
  CHECK(r->save.chunks_written > 20);

  Value common;
  auto loaded = LoadAll(dir.Sub("store"), 0, &common);
  REQUIRE(loaded.size() == kModel.size());
  for (const TestTensor& t : kModel) {
    INFO(t.name);
    CHECK(loaded[t.name].first == t.dtype);
    CHECK(loaded[t.name].second == TensorBytes(t.name, t.dtype, t.shape));
  }
  const Value* meta = common.Find("safetensors_metadata");
  REQUIRE(meta != nullptr);
  CHECK(meta->Find("origin")->as_string() == "test");

  auto reader = inspect::StoreReader::Open(dir.Sub("store"));
  REQUIRE_OK(reader.status());
  const std::string out = dir.Sub("out.safetensors");
  REQUIRE_OK(inspect::ExportSafetensors(reader->get(), 0, out).status());
  auto back = ReadSafetensorsHeader(out);
  REQUIRE_OK(back.status());
  CHECK(back->metadata.at("origin") == "test");
  CHECK(back->metadata.at("format") == "pt");
  REQUIRE(back->tensors.size() == kModel.size());
  for (const SafetensorsTensor& t : back->tensors) {
    INFO(t.name);
    const TestTensor* src = nullptr;
    for (const auto& m : kModel) {
      if (m.name == t.name) src = &m;
    }
    REQUIRE(src != nullptr);
    CHECK(t.dtype == src->dtype);
    CHECK(t.shape == src->shape);
    CHECK(FileBytes(out, t.offset, t.bytes) == TensorBytes(src->name, src->dtype, src->shape));
  }
}

TEST_CASE("a sharded model (3 files and an index) imports, and exports sharded again", "[interop]") {
  testing::TempDir dir;
  WriteSafetensors(dir.Sub("m-1.safetensors"), {kModel[0], kModel[1]});
  WriteSafetensors(dir.Sub("m-2.safetensors"), {kModel[2], kModel[3]});
  WriteSafetensors(dir.Sub("m-3.safetensors"), {kModel[4], kModel[5]});
  std::map<std::string, std::string> map;
  for (size_t i = 0; i < kModel.size(); ++i) map[kModel[i].name] = "m-" + std::to_string(i / 2 + 1) + ".safetensors";
  std::ofstream(dir.Sub("m.safetensors.index.json")) << EncodeSafetensorsIndex(map, 0);
  auto r = ImportSafetensors(dir.Sub("store"), dir.Sub("m.safetensors.index.json"), SmallChunks());
  REQUIRE_OK(r.status());
  CHECK(r->files == 3);
  auto loaded = LoadAll(dir.Sub("store"), 0);
  for (const TestTensor& t : kModel) CHECK(loaded[t.name].second == TensorBytes(t.name, t.dtype, t.shape));

  auto reader = inspect::StoreReader::Open(dir.Sub("store"));
  REQUIRE_OK(reader.status());
  inspect::ExportOptions sharded;
  sharded.max_shard_bytes = 300;
  auto e = inspect::ExportSafetensors(reader->get(), 0, dir.Sub("out/model.safetensors"), sharded);
  REQUIRE(base::CreateDirs(dir.Sub("out")).ok());
  e = inspect::ExportSafetensors(reader->get(), 0, dir.Sub("out/model.safetensors"), sharded);
  REQUIRE_OK(e.status());
  CHECK(e->path == dir.Sub("out/model.safetensors.index.json"));
  REQUIRE(e->files.size() >= 2);
  CHECK(e->files[0] == dir.Sub("out/model-00001-of-0000" + std::to_string(e->files.size()) + ".safetensors"));
  // The export is a sharded model an import takes back, the same.
  auto again = ImportSafetensors(dir.Sub("store2"), e->path, SmallChunks());
  REQUIRE_OK(again.status());
  CHECK(LoadAll(dir.Sub("store2"), 0) == loaded);
}

TEST_CASE("a QKV split and a SwiGLU concat, element by element, across chunk boundaries", "[interop]") {
  testing::TempDir dir;
  const std::vector<TestTensor> hf = {
      {"layers.0.qkv.weight", DType::kFloat32, {12, 4}},
      {"layers.0.up.weight", DType::kFloat32, {6, 4}},
      {"layers.0.gate.weight", DType::kFloat32, {6, 4}},
      {"layers.0.pair", DType::kInt16, {3, 10}},  // split along axis 1: strided reads
      {"layers.0.lo", DType::kInt16, {3, 2}},
      {"layers.0.hi", DType::kInt16, {3, 5}},  // concatenated along axis 1
  };
  WriteSafetensors(dir.Sub("m.safetensors"), hf);
  auto mapping = KeyMapping::Parse(R"j({"rules": [
    {"match": "layers\\.(\\d+)\\.qkv\\.weight",
     "split": {"into": [{"to": "l{1}.q", "size": 8}, {"to": "l{1}.k", "size": 2}, {"to": "l{1}.v", "size": 2}]}},
    {"match": "layers\\.(\\d+)\\.(gate|up)\\.weight", "to": "l{1}.fc1",
     "concat": {"by": 2, "order": ["gate", "up"]}},
    {"match": "layers\\.(\\d+)\\.pair", "split": {"axis": 1, "into": [{"to": "l{1}.left"}, {"to": "l{1}.right"}]}},
    {"match": "layers\\.(\\d+)\\.(lo|hi)", "to": "l{1}.wide", "concat": {"axis": 1, "by": 2, "order": ["lo", "hi"]}}
  ]})j",
                                   "rules.json");
  REQUIRE_OK(mapping.status());
  ImportOptions o = SmallChunks();
  o.save.chunk_bytes = 12;
  o.mapping = &*mapping;
  REQUIRE_OK(ImportSafetensors(dir.Sub("store"), dir.Sub("m.safetensors"), o).status());
  auto got = LoadAll(dir.Sub("store"), 0);

  auto src = [&](size_t i) { return TensorBytes(hf[i].name, hf[i].dtype, hf[i].shape); };
  const std::string qkv = src(0);
  CHECK(got["l0.q"].second == qkv.substr(0, 8 * 16));
  CHECK(got["l0.k"].second == qkv.substr(8 * 16, 2 * 16));
  CHECK(got["l0.v"].second == qkv.substr(10 * 16, 2 * 16));
  CHECK(got["l0.fc1"].second == src(2) + src(1));  // gate, then up
  const std::string pair = src(3), lo = src(4), hi = src(5);
  std::string left, right, wide;
  for (int row = 0; row < 3; ++row) {
    left += pair.substr(row * 20, 10);
    right += pair.substr(row * 20 + 10, 10);
    wide += lo.substr(row * 4, 4) + hi.substr(row * 10, 10);
  }
  CHECK(got["l0.left"].second == left);
  CHECK(got["l0.right"].second == right);
  CHECK(got["l0.wide"].second == wide);
  CHECK(got.size() == 7);
}

TEST_CASE("bad input is refused naming the file and tensor, and nothing is committed", "[interop]") {
  testing::TempDir dir;
  const std::string store = dir.Sub("store");
  WriteSafetensors(dir.Sub("good.safetensors"), kModel);
  REQUIRE_OK(ImportSafetensors(store, dir.Sub("good.safetensors"), SmallChunks()).status());

  WriteRaw(dir.Sub("overlap.safetensors"),
           R"j({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
               "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})j",
           std::string(12, 'x'));
  CHECK_THAT(ImportSafetensors(store, dir.Sub("overlap.safetensors"), SmallChunks()).status(),
             StatusIs(StatusCode::kDataLoss, "overlap.safetensors': tensor 'b' overlaps"));
  WriteRaw(dir.Sub("size.safetensors"), R"j({"a": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 8]}})j",
           std::string(8, 'x'));
  CHECK_THAT(ImportSafetensors(store, dir.Sub("size.safetensors"), SmallChunks()).status(),
             StatusIs(StatusCode::kDataLoss, "tensor 'a': 8 bytes do not hold shape [3] of BF16"));
  WriteRaw(dir.Sub("text.safetensors"), "not json at all", "");
  CHECK_THAT(ImportSafetensors(store, dir.Sub("text.safetensors"), SmallChunks()).status(),
             StatusIs(StatusCode::kDataLoss, "the header is not JSON"));
  WriteRaw(dir.Sub("huge.safetensors"), "{}", "", uint64_t{100} << 30);
  CHECK_THAT(ImportSafetensors(store, dir.Sub("huge.safetensors"), SmallChunks()).status(),
             StatusIs(StatusCode::kDataLoss, "more than the limit"));
  // An index that places a tensor where it is not, or misses one.
  std::ofstream(dir.Sub("bad.index.json")) << EncodeSafetensorsIndex({{"embed.weight", "good.safetensors"}}, 0);
  CHECK_THAT(ImportSafetensors(store, dir.Sub("bad.index.json"), SmallChunks()).status(),
             StatusIs(StatusCode::kDataLoss, "good.safetensors' holds tensor 'norm.weight', which index"));
  // A rules file that leaves tensors unmatched.
  auto only_embed = KeyMapping::Parse(R"j({"rules": [{"match": "embed\\.(.*)", "to": "e.{1}"}]})j", "r.json");
  REQUIRE_OK(only_embed.status());
  ImportOptions mapped = SmallChunks();
  mapped.mapping = &*only_embed;
  CHECK_THAT(ImportSafetensors(store, dir.Sub("good.safetensors"), mapped).status(),
             StatusIs(StatusCode::kInvalidArgument, "match no rule"));
  // The step exists: refused unless overwrite.
  ImportOptions step0 = SmallChunks();
  step0.step = 0;
  CHECK_THAT(ImportSafetensors(store, dir.Sub("good.safetensors"), step0).status(),
             StatusIs(StatusCode::kAlreadyExists, "step 0 already exists"));

  auto steps = storage::ListSteps(store);
  REQUIRE_OK(steps.status());
  CHECK(*steps == std::vector<uint64_t>{0});
  CHECK(LoadAll(store, 0).size() == kModel.size());
  // The same model again, incremental: every chunk equals step 0's and is referenced.
  ImportOptions incremental = SmallChunks();
  incremental.save.incremental = true;
  auto same = ImportSafetensors(store, dir.Sub("good.safetensors"), incremental);
  REQUIRE_OK(same.status());
  CHECK(same->step == 1);
  CHECK(same->save.chunks_written == 0);
  CHECK(same->save.chunks_referenced > 20);
  // Kept unmatched: only the renamed tensor's chunks are new.
  mapped.keep_unmatched = true;
  mapped.save.incremental = true;
  auto r = ImportSafetensors(store, dir.Sub("good.safetensors"), mapped);
  REQUIRE_OK(r.status());
  CHECK(r->step == 2);
  const auto step2 = LoadAll(store, 2);
  CHECK(step2.count("e.weight") == 1);
  CHECK(step2.count("embed.weight") == 0);
  CHECK(step2.count("proj.weight") == 1);
  CHECK(r->save.chunks_written > 0);  // e.weight's
  CHECK(r->save.chunks_referenced > 0);
  CHECK(r->save.chunks_written + r->save.chunks_referenced == same->save.chunks_referenced);
}

}  // namespace
}  // namespace dcp::interop
