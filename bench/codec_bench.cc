// Copyright (c) dcp authors.
//
// codec_bench: the chunk codec on trained-weight-like data. For bf16 and fp32
// values from N(0, 0.02) (and zeros, as a sanity line), encodes 8 MiB chunks
// with each Compression setting and prints the compression ratio and the
// encode/decode throughput per core, next to memcpy of the same bytes
// measured in the same run.
//
//   codec_bench [--mib 256] [--json FILE]

#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "bench/bench_util.h"
#include "engine/base/buffer.h"
#include "engine/codec/chunk_codec.h"

int main(int argc, char** argv) {
  CLI::App app{"codec_bench: LZ4 with and without the byte-plane transform"};
  size_t mib = 256;
  std::string json_path;
  app.add_option("--mib", mib, "MiB of data per case");
  app.add_option("--json", json_path, "write results as JSON here");
  CLI11_PARSE(app, argc, argv);

  using dcp::Compression;
  constexpr size_t kChunk = 8 << 20;
  const size_t bytes = mib << 20;
  struct Data {
    std::string name;
    size_t elem;
    std::vector<char> bytes;
  };
  std::vector<Data> data;
  data.push_back({"bf16 N(0,0.02)", 2, dcp::bench::NormalFloats(bytes / 2, true, 1)});
  data.push_back({"fp32 N(0,0.02)", 4, dcp::bench::NormalFloats(bytes / 4, false, 2)});
  data.push_back({"fp32 zeros", 4, std::vector<char>(bytes, 0)});

  // memcpy of the same bytes, chunk by chunk, into a reused buffer.
  dcp::base::Buffer dst(kChunk);
  std::memset(dst.data(), 1, kChunk);
  dcp::bench::Timer mt;
  for (int rep = 0; rep < 3; ++rep) {
    for (size_t off = 0; off < bytes; off += kChunk) std::memcpy(dst.data(), data[0].bytes.data() + off, kChunk);
  }
  const double memcpy_gbs = 3.0 * bytes / mt.Seconds() / 1e9;

  nlohmann::json results = nlohmann::json::array();
  std::vector<dcp::bench::Figure> figures;
  fmt::print("codec_bench: {} MiB per case, 8 MiB chunks, one core; memcpy {:.2f} GB/s\n", mib, memcpy_gbs);
  fmt::print("{:<16} {:<14} {:>7} {:>10} {:>10} {:>9} {:>9}\n", "data", "compression", "ratio", "enc GB/s",
             "dec GB/s", "enc/mcp", "dec/mcp");
  for (const Data& d : data) {
    for (Compression c : {Compression::kNone, Compression::kLz4, Compression::kLz4BytePlane}) {
      const char* cname = c == Compression::kNone ? "none" : c == Compression::kLz4 ? "lz4" : "lz4+byteplane";
      dcp::codec::ChunkEncoder enc;
      std::vector<dcp::base::Buffer> records(bytes / kChunk);
      std::vector<dcp::codec::ChunkHeader> headers(records.size());
      for (auto& r : records) {  // first touch outside the timed loop
        r.Resize(kChunk + kChunk / 64 + 4096);
        std::memset(r.data(), 0, r.size());
      }
      dcp::bench::Timer te;
      uint64_t stored = 0;
      for (size_t i = 0; i < records.size(); ++i) {
        headers[i] = enc.Encode(d.bytes.data() + i * kChunk, kChunk, d.elem, c, &records[i]);
        stored += records[i].size();
      }
      const double enc_s = te.Seconds();
      dcp::bench::Timer td;
      for (size_t i = 0; i < records.size(); ++i) {
        const dcp::Status s = dcp::codec::DecodeChunk(records[i].view(), headers[i], dst.data(), kChunk);
        if (!s.ok()) {
          fmt::print(stderr, "decode failed: {}\n", s.ToString());
          return 1;
        }
      }
      const double dec_s = td.Seconds();
      const double ratio = static_cast<double>(bytes) / static_cast<double>(stored);
      const double enc_gbs = bytes / enc_s / 1e9, dec_gbs = bytes / dec_s / 1e9;
      fmt::print("{:<16} {:<14} {:>7.3f} {:>10.2f} {:>10.2f} {:>9.2f} {:>9.2f}\n", d.name, cname, ratio, enc_gbs,
                 dec_gbs, enc_gbs / memcpy_gbs, dec_gbs / memcpy_gbs);
      if (c != Compression::kNone && std::string(d.name) != "fp32 zeros") {
        const std::string what = std::string(d.name) + " " + cname;
        figures.push_back({what + ": compression ratio", ratio, ""});
        figures.push_back({what + ": encode GB/s per core", enc_gbs, ""});
        figures.push_back({what + ": decode GB/s per core", dec_gbs, ""});
      }
      results.push_back({{"data", d.name},
                         {"compression", cname},
                         {"ratio", ratio},
                         {"encode_gbs", enc_gbs},
                         {"decode_gbs", dec_gbs},
                         {"memcpy_gbs", memcpy_gbs},
                         {"codec_used", dcp::codec::ChunkCodecName(headers[0].codec)}});
    }
  }
  if (!json_path.empty()) {
    std::ofstream(json_path) << nlohmann::json({{"bench", "codec"},
                                                {"memcpy_gbs", memcpy_gbs},
                                                {"figures", dcp::bench::FiguresJson(figures)},
                                                {"results", results}})
                                    .dump(2)
                             << "\n";
  }
  return 0;
}
