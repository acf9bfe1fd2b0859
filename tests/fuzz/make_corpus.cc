// Copyright (c) dcp authors.
//
// Writes the fuzz targets' seed corpus (tests/fuzz/corpus/<target>/) from real
// stores: 4 in-process ranks save a small sharded state (every dtype, prepended
// axes, TP splits, replicas) three times (LZ4, byte planes, raw; the third
// incremental), and the seeds are what those stores hold or what their ranks
// send each other: manifest payloads, common states, chunk records, record keys
// and on-disk names, and the exchange messages of their declarations. Region
// seeds are the syntax dcp-inspect documents.
//
//   make_corpus <corpus dir>      (scripts/fuzz.sh --make-corpus)

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "engine/codec/checksum.h"
#include "engine/codec/frame.h"
#include "engine/interop/safetensors.h"
#include "engine/protocol/commit.h"
#include "engine/protocol/strict_keys.h"
#include "engine/manifest/common_state_codec.h"
#include "engine/manifest/exchange_codec.h"
#include "engine/manifest/manifest_codec.h"
#include "engine/query/read_once_messages.h"
#include "engine/store/key_layout.h"
#include "engine/store/rank_store.h"
#include "engine/wire/wire.h"
#include "tests/api/checkpoint_harness.h"
#include "tests/testing/temp_dir.h"

namespace fs = std::filesystem;
using namespace dcp;

namespace {

constexpr size_t kMaxRecordSeed = 16 << 10;  // chunk records larger than this are not seeds
constexpr size_t kMaxSeedsPerTarget = 64;

class Corpus {
 public:
  explicit Corpus(fs::path root) : root_(std::move(root)) {}
  // Writes `bytes` as <target>/<content hash>; duplicates and seeds past the
  // target's cap are dropped.
  void Add(const std::string& target, std::string_view bytes) {
    size_t& n = counts_[target];
    if (n >= kMaxSeedsPerTarget) return;
    const fs::path dir = root_ / target;
    fs::create_directories(dir);
    const codec::Hash128 h = codec::ContentHash128(bytes.data(), bytes.size());
    char name[40];
    std::snprintf(name, sizeof(name), "%016llx", static_cast<unsigned long long>(h.lo));
    const fs::path file = dir / name;
    if (fs::exists(file)) return;
    std::ofstream(file, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    ++n;
  }

 private:
  fs::path root_;
  std::map<std::string, size_t> counts_;
};

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

Value RichCommonState() {
  Value v = Value::Map();
  v.Set("iteration", 1200);
  v.Set("lr", 3.0e-4);
  v.Set("name", "gpt-small");
  v.Set("flags", Value::List({true, false, Value::Null(), -7, 2.5, "x"}));
  Value nested = Value::Map();
  nested.Set("bytes", Value::Bytes(std::string("\x00\x01\xff", 3)));
  nested.Set("rng", Value::Tensor(DType::kUInt8, {4}, std::string("\x01\x02\x03\x04", 4)));
  nested.Set("scale", Value::Tensor(DType::kFloat32, {2}, std::string(8, '\x3f')));
  v.Set("args", std::move(nested));
  return v;
}

// What a rank declares, rebuilt from a committed manifest: chunks as main
// shards of rank (chunk index % ranks), and every chunk again as a replica of
// the other ranks.
std::vector<manifest::RankDecl> Declarations(const manifest::StepManifest& m, int ranks) {
  std::vector<manifest::RankDecl> decls(static_cast<size_t>(ranks));
  size_t i = 0;
  for (const manifest::TensorEntry& t : m.tensors) {
    for (const manifest::ChunkEntry& c : t.chunks) {
      for (int r = 0; r < ranks; ++r) {
        manifest::ShardDecl d{t.key, t.dtype, t.global_shape, c.box, static_cast<int>(i % ranks) == r, std::nullopt};
        decls[static_cast<size_t>(r)].tensors.push_back(d);
      }
      ++i;
    }
  }
  for (const manifest::ObjectEntry& o : m.objects) {
    decls[0].objects.push_back({o.key, o.global_shape, o.global_offset, true});
  }
  return decls;
}

std::string Piece(std::string_view bytes) {
  std::string out;
  out.push_back(static_cast<char>(bytes.size() & 0xff));
  out.push_back(static_cast<char>((bytes.size() >> 8) & 0xff));
  out.append(bytes.substr(0, 0xffff));
  return out;
}

void AddExchangeSeeds(const manifest::StepManifest& m, Corpus* corpus) {
  const int ranks = 3;
  std::vector<manifest::RankDecl> decls = Declarations(m, ranks);
  std::string assembled(1, '\x03');
  for (int r = 0; r < ranks; ++r) {
    corpus->Add("exchange", std::string(1, '\x00') + manifest::EncodeRankDecl(decls[static_cast<size_t>(r)]));
    manifest::SplitDecl s = manifest::SplitRankDecl(decls[static_cast<size_t>(r)]);
    const std::string sig = manifest::EncodeSignature(s.signature);
    corpus->Add("exchange", std::string(1, '\x01') + sig);
    assembled += Piece(sig) + Piece(manifest::EncodeExchangeDecl(s, r == 0));
  }
  corpus->Add("exchange", assembled);
  // A skeleton (the manifest without chunks) and the manifest's chunks as two fragments.
  manifest::StepManifest skeleton = m, even = m, odd = m;
  skeleton.objects.clear();
  for (size_t t = 0; t < m.tensors.size(); ++t) {
    skeleton.tensors[t].chunks.clear();
    even.tensors[t].chunks.clear();
    odd.tensors[t].chunks.clear();
    for (size_t c = 0; c < m.tensors[t].chunks.size(); ++c) {
      (c % 2 ? odd : even).tensors[t].chunks.push_back(m.tensors[t].chunks[c]);
    }
  }
  odd.objects.clear();
  corpus->Add("exchange", std::string(1, '\x04') + Piece(manifest::EncodeManifestPayload(skeleton)) +
                              Piece(manifest::EncodeManifestPayload(even)) + Piece(manifest::EncodeManifestPayload(odd)));
}

// Messages in the wire format, as ranks send them for this step.
void AddWireSeeds(const manifest::StepManifest& m, const std::string& manifest_bytes, Corpus* corpus) {
  auto add = [&](char mode, const std::string& bytes) { corpus->Add("wire", std::string(1, mode) + bytes); };
  const Status failed = Status::DataLoss("record 'w'@[0,0] in rank store 1 is damaged");
  for (const Status& s : {Status::OK(), failed}) add('\x01', wire::Writer().PutStatus(s).Finish());
  add('\x02', wire::EncodeU64List({1, 2, 3, m.step, m.generation}));
  std::vector<std::string> keys;
  for (const auto& t : m.tensors) keys.push_back(t.key);
  add('\x03', wire::EncodeStringList(keys));
  add('\x04', wire::EncodeResult(Status::OK(), manifest_bytes));
  add('\x04', wire::EncodeResult(Status::NotFound("step 7 is not in store '/ckpt'"), ""));
  manifest::StepManifest fragment = m;
  fragment.common_state.clear();
  add('\x05', protocol::EncodeCommitMessage(Status::OK(), manifest::EncodeManifestPayload(fragment)));
  add('\x05', protocol::EncodeCommitMessage(failed, ""));
  protocol::KeyCheckReport report;
  report.has_bitmap = true;
  report.bitmap = std::string((keys.size() + 7) / 8, '\x5a');
  report.unexpected = 20;
  report.listed = {"decoder.layers.0.mlp", "optimizer.state.exp_avg"};
  add('\x06', protocol::EncodeKeyCheckReport(report));
  report.local = failed;
  add('\x06', protocol::EncodeKeyCheckReport(report));
  add('\x07', protocol::EncodeKeyCheckVerdict(Status::OK(), report.bitmap));
  add('\x07', protocol::EncodeKeyCheckVerdict(Status::NotFound("strict key handling: unexpected keys"), ""));
  uint64_t total = 0;
  for (const auto& t : m.tensors) total += t.chunks.size();
  std::vector<query::ChunkOrdinal> needs;
  for (uint64_t c = 0; c < total; c += 3) needs.push_back(c);
  const std::string total_le = {static_cast<char>(total & 0xff), static_cast<char>((total >> 8) & 0xff)};
  add('\x08', total_le + query::EncodeReadOnceNeeds(false, 1 << 20, total, needs));
  add('\x08', total_le + query::EncodeReadOnceNeeds(true, 1 << 20, 0, {}));
  wire::Writer round;
  round.U8(0);
  query::PutReadOnceRecord(&round, 0, manifest_bytes.substr(0, 64));
  query::PutReadOnceUnavailable(&round, 1);
  query::PutReadOnceRecord(&round, 2, "record");
  add('\x09', std::string(1, '\x03') + round.Finish());
  // The Reader: every kind of read over a sample message.
  wire::Writer sample;
  sample.U8(1).U32(2).U64(3).Varint(4).Bytes("five").PutStatus(failed).Varint(1).Raw("x");
  add('\x00', std::string("\x08\x00\x01\x02\x03\x04\x05\x06\x07", 9) + sample.Finish());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_corpus <corpus dir>\n");
    return 2;
  }
  Corpus corpus(argv[1]);
  testing::TempDir dir;
  const std::string root = dir.path() + "/store";

  std::vector<testing::TensorSpec> specs = {
      {"embedding", DType::kBFloat16, {64, 16}, 0, {2, 1}},
      {"layers.qkv", DType::kFloat16, {4, 48, 16}, 1, {4, 2, 1}},
      {"layers.proj", DType::kFloat32, {4, 16, 16}, 1, {4, 1, 2}},
      {"layers.ln", DType::kFloat64, {4, 16}, 1, {4, 1}},
      {"step", DType::kInt64, {}, 0, {}},
      {"mask", DType::kBool, {9, 3}, 0, {1, 1}},
      {"counts", DType::kInt32, {4, 6}, 0, {2, 2}},
      {"freqs_cis", DType::kComplex64, {6, 4}, 0, {2, 1}},
      {"spectrum", DType::kComplex128, {6}, 0, {2}},
  };
  const Compression codecs[] = {Compression::kLz4, Compression::kLz4BytePlane, Compression::kNone};
  for (uint64_t step = 1; step <= 3; ++step) {
    SaveOptions options;
    options.compression = codecs[step - 1];
    std::string why;
    if (!testing::AllOk(testing::SaveAll(root, step, 4, specs, options), &why)) {
      std::fprintf(stderr, "save of step %llu failed: %s\n", static_cast<unsigned long long>(step), why.c_str());
      return 1;
    }
  }

  // Manifests: the payload (the target frames it), and their common state.
  for (const auto& e : fs::directory_iterator(storage::StepsDir(root))) {
    const std::string name = e.path().filename();
    corpus.Add("key_layout", name);
    const std::string bytes = ReadFile(e.path());
    auto u = codec::UnframeBlob(bytes, manifest::kManifestMagic, name);
    if (!u.ok()) continue;
    corpus.Add("manifest", u->payload);
    auto m = manifest::DecodeManifest(bytes, name);
    if (!m.ok()) continue;
    corpus.Add("common_state", m->common_state);
    AddExchangeSeeds(*m, &corpus);
    AddWireSeeds(*m, bytes, &corpus);
  }
  corpus.Add("common_state", manifest::EncodeCommonState(RichCommonState()).value());
  corpus.Add("key_layout", ReadFile(storage::MarkerPath(root)));

  // Rank stores: record keys and chunk records.
  for (const auto& e : fs::directory_iterator(storage::RanksDir(root))) {
    const std::string name = e.path().filename();
    corpus.Add("key_layout", name);
    auto rank = storage::ParseRankStoreName(name);
    if (!rank) continue;
    auto store = storage::RankStore::Open(e.path(), *rank, storage::RankStore::Mode::kRead);
    if (!store.ok()) {
      std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
      return 1;
    }
    Status s = (*store)->Scan("", "\xff", [&](std::string_view key, std::string_view value) {
      corpus.Add("key_layout", key);
      auto parsed = storage::ParseRecordKey(key);
      if (parsed.ok() && parsed->kind == storage::ParsedRecordKey::Kind::kChunk && value.size() <= kMaxRecordSeed) {
        corpus.Add("chunk_record", value);
      }
      return Status::OK();
    });
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", s.ToString().c_str());
      return 1;
    }
  }

  // Commit messages as ranks send them.
  for (const Status& s : {Status::DataLoss("record 'w'@[0,0] in rank store 1 is damaged"),
                          Status::InvalidArgument("tensor 'x' has dtype float32 on rank 0, bfloat16 on rank 2")}) {
    corpus.Add("exchange", std::string(1, '\x02') + protocol::EncodeCommitMessage(s, ""));
  }

  // Regions: the first byte is the tensor's rank, then its extents, then the text.
  for (const char* text : {"", "0:4", "[0:4, 8:16]", "-2:", ":3,1", "::", "5", "[1, -1:]", "0:0"}) {
    corpus.Add("region", std::string("\x02\x10\x20", 3) + text);
  }
  // safetensors headers (the first byte picks the header; then the data
  // length, 2 bytes), an index, and rules with the names they apply to.
  {
    const std::vector<interop::SafetensorsTensor> tensors = {{"w", DType::kFloat32, {2, 3}, 0, 24},
                                                            {"b", DType::kBFloat16, {4}, 0, 8},
                                                            {"s", DType::kInt64, {}, 0, 8},
                                                            {"m", DType::kBool, {3}, 0, 3},
                                                            {"e", DType::kFloat16, {0, 2}, 0, 0},
                                                            {"z", DType::kComplex64, {2}, 0, 16}};
    const std::string header = interop::EncodeSafetensorsHeader(tensors, {{"format", "pt"}}).value();
    corpus.Add("safetensors", std::string("\x00\x3b\x00", 3) + header.substr(8));  // 59 data bytes
    corpus.Add("safetensors", std::string(1, '\x01') +
                                  interop::EncodeSafetensorsIndex({{"w", "m-1.safetensors"}, {"b", "m-2.safetensors"}}, 32));
    corpus.Add("safetensors",
               std::string(1, '\x02') +
                   R"j({"rules": [{"match": "l\\.(\\d)\\.qkv", "split": {"into": [{"to": "q{1}"}, {"to": "k{1}"}]}},
                       {"match": "l\\.(\\d)\\.(g|u)", "to": "f{1}", "concat": {"by": 2, "order": ["g", "u"]}},
                       {"match": "x(.*)", "to": "y{1}"}]})j" +
                   std::string(1, '\0') + "l.1.qkv\nl.1.g\nl.1.u\nxab\nzz");
  }
  std::printf("corpus written to %s\n", argv[1]);
  return 0;
}
