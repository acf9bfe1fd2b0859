// Copyright (c) dcp authors.
// Tests of engine/codec/chunk_codec.cc: round trips for every dtype and compression, the
// codec the encoder picks, and corrupt, truncated and forged records.

#include "engine/codec/chunk_codec.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "dcp/options.h"
#include "dcp/types.h"
#include "engine/base/buffer.h"
#include "engine/codec/checksum.h"
#include "tests/testing/status_matchers.h"

namespace dcp::codec {
namespace {

using dcp::testing::StatusIs;

enum class Pattern { kRandom, kNormal, kZeros, kSparse };

const char* PatternName(Pattern p) {
  switch (p) {
    case Pattern::kRandom: return "random";
    case Pattern::kNormal: return "normal(0, 0.02)";
    case Pattern::kZeros: return "zeros";
    case Pattern::kSparse: return "sparse";
  }
  return "?";
}

const char* CompressionName(Compression c) {
  switch (c) {
    case Compression::kNone: return "none";
    case Compression::kLz4: return "lz4";
    case Compression::kLz4BytePlane: return "lz4+byteplane";
  }
  return "?";
}

// float32 -> float16 bits (truncating; tiny values flush to zero).
uint16_t ToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000;
  const int32_t exp = static_cast<int32_t>((x >> 23) & 0xff) - 127 + 15;
  if (exp <= 0) return static_cast<uint16_t>(sign);
  if (exp >= 31) return static_cast<uint16_t>(sign | 0x7c00);
  return static_cast<uint16_t>(sign | (static_cast<uint32_t>(exp) << 10) | ((x & 0x7fffff) >> 13));
}

// float32 -> float8 e4m3 bits (truncating).
uint8_t ToE4M3(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 24) & 0x80;
  const int32_t exp = static_cast<int32_t>((x >> 23) & 0xff) - 127 + 7;
  if (exp <= 0) return static_cast<uint8_t>(sign);
  if (exp >= 15) return static_cast<uint8_t>(sign | 0x7e);
  return static_cast<uint8_t>(sign | (static_cast<uint32_t>(exp) << 3) | ((x & 0x7fffff) >> 20));
}

template <typename T>
void Store(std::string* s, size_t i, T v) {
  std::memcpy(s->data() + i * sizeof(T), &v, sizeof(T));
}

// One value of `dtype` that is "like N(0, 0.02)" (integers: scaled and rounded).
void PutNormal(DType dtype, double v, std::string* s, size_t i) {
  const int64_t iv = static_cast<int64_t>(std::llround(v * 5000));
  switch (dtype) {
    case DType::kBool: Store<uint8_t>(s, i, v > 0 ? 1 : 0); break;
    case DType::kUInt8: Store<uint8_t>(s, i, static_cast<uint8_t>(std::min<int64_t>(std::abs(iv), 255))); break;
    case DType::kInt8: Store<int8_t>(s, i, static_cast<int8_t>(std::clamp<int64_t>(iv, -128, 127))); break;
    case DType::kInt16: Store<int16_t>(s, i, static_cast<int16_t>(iv)); break;
    case DType::kInt32: Store<int32_t>(s, i, static_cast<int32_t>(iv)); break;
    case DType::kInt64: Store<int64_t>(s, i, iv); break;
    case DType::kUInt16: Store<uint16_t>(s, i, static_cast<uint16_t>(std::abs(iv))); break;
    case DType::kUInt32: Store<uint32_t>(s, i, static_cast<uint32_t>(std::abs(iv))); break;
    case DType::kUInt64: Store<uint64_t>(s, i, static_cast<uint64_t>(std::abs(iv))); break;
    case DType::kFloat16: Store<uint16_t>(s, i, ToHalf(static_cast<float>(v))); break;
    case DType::kBFloat16: {
      const float f = static_cast<float>(v);
      uint32_t x;
      std::memcpy(&x, &f, 4);
      Store<uint16_t>(s, i, static_cast<uint16_t>(x >> 16));
      break;
    }
    case DType::kFloat32: Store<float>(s, i, static_cast<float>(v)); break;
    case DType::kFloat64: Store<double>(s, i, v); break;
    case DType::kFloat8E4M3: Store<uint8_t>(s, i, ToE4M3(static_cast<float>(v))); break;
    case DType::kFloat8E5M2: Store<uint8_t>(s, i, static_cast<uint8_t>(ToHalf(static_cast<float>(v)) >> 8)); break;
    case DType::kComplex64:  // (v, -v / 2): the parts as float values
      Store<float>(s, 2 * i, static_cast<float>(v));
      Store<float>(s, 2 * i + 1, static_cast<float>(-v / 2));
      break;
    case DType::kComplex128:
      Store<double>(s, 2 * i, v);
      Store<double>(s, 2 * i + 1, -v / 2);
      break;
  }
}

std::string MakeData(DType dtype, Pattern pattern, size_t n, std::mt19937& rng) {
  const size_t elem = DTypeSize(dtype);
  std::string s(n * elem, '\0');
  std::uniform_int_distribution<int> byte(0, 255);
  std::normal_distribution<double> normal(0.0, 0.02);
  switch (pattern) {
    case Pattern::kRandom:
      for (char& c : s) c = static_cast<char>(byte(rng));
      break;
    case Pattern::kNormal:
      for (size_t i = 0; i < n; ++i) PutNormal(dtype, normal(rng), &s, i);
      break;
    case Pattern::kZeros:
      break;
    case Pattern::kSparse:  // ~3% of the elements are random, the rest zero
      for (size_t i = 0; i < n; ++i) {
        if (std::uniform_int_distribution<int>(0, 31)(rng) != 0) continue;
        for (size_t j = 0; j < elem; ++j) s[i * elem + j] = static_cast<char>(byte(rng));
      }
      break;
  }
  return s;
}

// Encodes, parses and decodes `raw`, checking everything that must hold.
ChunkHeader RoundTrip(ChunkEncoder* enc, const std::string& raw, size_t elem, Compression compression) {
  base::Buffer out;
  const ChunkHeader h = enc->Encode(raw.data(), raw.size(), elem, compression, &out);
  REQUIRE(out.size() == h.record_size());
  CHECK(h.raw_size == raw.size());
  {  // The header-only form: the same record, less the payload of a raw one.
    base::Buffer head;
    const ChunkHeader h2 = enc->EncodeHeaderIfRaw(raw.data(), raw.size(), elem, compression, &head);
    CHECK(h2.codec == h.codec);
    CHECK(h2.payload_size == h.payload_size);
    const std::string joined =
        std::string(head.view()) + (h.codec == ChunkCodec::kRaw ? raw : std::string());
    CHECK(head.size() == (h.codec == ChunkCodec::kRaw ? kChunkHeaderSize : h.record_size()));
    CHECK(joined == std::string(out.view()));
  }
  CHECK(h.elem_size == elem);
  CHECK(h.checksum == ContentHash128(raw.data(), raw.size()));
  if (compression == Compression::kNone) CHECK(h.codec == ChunkCodec::kRaw);
  if (compression == Compression::kLz4) CHECK(h.codec != ChunkCodec::kLz4BytePlane);
  if (h.codec == ChunkCodec::kRaw) {
    CHECK(h.payload_size == raw.size());
  } else {  // an encoding is kept only if it saves at least ~3%
    CHECK(static_cast<double>(h.payload_size) <= 0.97 * static_cast<double>(raw.size()));
  }

  const ChunkHeader parsed = ValueOrDie(ParseChunkHeader(out.view()));
  CHECK(parsed.codec == h.codec);
  CHECK(parsed.elem_size == h.elem_size);
  CHECK(parsed.raw_size == h.raw_size);
  CHECK(parsed.payload_size == h.payload_size);
  CHECK(parsed.checksum == h.checksum);

  std::string dst(raw.size(), '?');
  REQUIRE_OK(DecodeChunk(out.view(), parsed, dst.data(), dst.size()));
  REQUIRE(dst == raw);
  if (h.codec == ChunkCodec::kRaw) {
    const std::string_view payload = ValueOrDie(RawChunkPayload(out.view(), parsed));
    CHECK(payload == raw);
    CHECK(payload.data() == out.data() + kChunkHeaderSize);  // no copy
  } else {
    CHECK_THAT(RawChunkPayload(out.view(), parsed).status(), StatusIs(StatusCode::kInternal, "encoded chunk"));
  }
  return h;
}

TEST_CASE("Chunk records round trip for every dtype, pattern and compression", "[codec][chunk_codec]") {
  std::mt19937 rng(20240611);
  ChunkEncoder enc;  // one encoder for everything: its scratch space is reused
  const std::vector<Pattern> patterns = {Pattern::kRandom, Pattern::kNormal, Pattern::kZeros, Pattern::kSparse};
  const std::vector<Compression> compressions = {Compression::kNone, Compression::kLz4, Compression::kLz4BytePlane};
  for (DType dtype : AllDTypes()) {
    const size_t elem = DTypeSize(dtype);
    for (Pattern pattern : patterns) {
      // Sizes around nothing, one element, odd counts, and past the 64 KiB probe.
      for (size_t n : {size_t{0}, size_t{1}, size_t{7}, size_t{1000}, size_t{100000} / elem}) {
        const std::string raw = MakeData(dtype, pattern, n, rng);
        for (Compression compression : compressions) {
          INFO(DTypeName(dtype) << ", " << PatternName(pattern) << ", " << n << " elements, "
                                << CompressionName(compression));
          const ChunkHeader h = RoundTrip(&enc, raw, elem, compression);
          const bool big = raw.size() >= 4000;
          if (n == 0 || pattern == Pattern::kRandom || compression == Compression::kNone) {
            // Random bytes do not compress: the encoder does not pay for LZ4.
            CHECK(h.codec == ChunkCodec::kRaw);
          } else if (big && (pattern == Pattern::kZeros || pattern == Pattern::kSparse)) {
            const bool planes = compression == Compression::kLz4BytePlane && elem > 1;
            CHECK(h.codec == (planes ? ChunkCodec::kLz4BytePlane : ChunkCodec::kLz4));
          } else if (raw.size() >= (64 << 10) && pattern == Pattern::kNormal &&
                     compression == Compression::kLz4BytePlane &&
                     (dtype == DType::kFloat32 || dtype == DType::kBFloat16 || dtype == DType::kFloat64)) {
            // The sign/exponent planes of N(0, 0.02) weights compress; the mantissa planes do not.
            // (float16 keeps mantissa bits in its high byte: LZ4 alone gains too little there.)
            CHECK(h.codec == ChunkCodec::kLz4BytePlane);
          }
        }
      }
    }
  }
}

TEST_CASE("Byte planes for odd element sizes and sizes that are not whole elements", "[codec][chunk_codec]") {
  ChunkEncoder enc;
  std::string zeros3(3 * 5000, '\0');
  CHECK(RoundTrip(&enc, zeros3, 3, Compression::kLz4BytePlane).codec == ChunkCodec::kLz4BytePlane);
  // 10001 bytes of 4-byte elements: not whole elements, so plain LZ4 is used.
  std::string zeros(10001, '\0');
  CHECK(RoundTrip(&enc, zeros, 4, Compression::kLz4BytePlane).codec == ChunkCodec::kLz4);
  // 1-byte elements have a single plane: plain LZ4.
  CHECK(RoundTrip(&enc, zeros, 1, Compression::kLz4BytePlane).codec == ChunkCodec::kLz4);
}

TEST_CASE("Byte-plane records mix compressed and raw planes", "[codec][chunk_codec]") {
  // Low bytes random, high bytes constant: two raw planes and two LZ4 planes.
  std::mt19937 rng(3);
  const size_t n = 8192;
  std::string raw(n * 4, '\0');
  for (size_t i = 0; i < n; ++i) {
    raw[i * 4 + 0] = static_cast<char>(rng());
    raw[i * 4 + 1] = static_cast<char>(rng());
    raw[i * 4 + 3] = '\x3c';
  }
  ChunkEncoder enc;
  base::Buffer out;
  const ChunkHeader h = enc.Encode(raw.data(), raw.size(), 4, Compression::kLz4BytePlane, &out);
  REQUIRE(h.codec == ChunkCodec::kLz4BytePlane);
  constexpr uint64_t kRawBit = uint64_t{1} << 63;
  uint64_t desc[4];
  std::memcpy(desc, out.data() + kChunkHeaderSize, sizeof(desc));
  CHECK(desc[0] == (n | kRawBit));
  CHECK(desc[1] == (n | kRawBit));
  CHECK((desc[2] & kRawBit) == 0);
  CHECK((desc[3] & kRawBit) == 0);
  CHECK(h.payload_size == 32 + 2 * n + desc[2] + desc[3]);
  std::string dst(raw.size(), '?');
  REQUIRE_OK(DecodeChunk(out.view(), h, dst.data(), dst.size()));
  CHECK(dst == raw);
}

TEST_CASE("Incompressible prefixes keep a chunk raw (the probe)", "[codec][chunk_codec]") {
  // The first 64 KiB decide: random there means the rest is not tried.
  std::mt19937 rng(8);
  std::string raw(64 << 10, '\0');
  for (char& c : raw) c = static_cast<char>(rng());
  raw.append(1 << 20, '\0');
  ChunkEncoder enc;
  CHECK(RoundTrip(&enc, raw, 1, Compression::kLz4).codec == ChunkCodec::kRaw);
  // The other way round, the whole chunk is compressed.
  std::string rev(raw.rbegin(), raw.rend());
  CHECK(RoundTrip(&enc, rev, 1, Compression::kLz4).codec == ChunkCodec::kLz4);
}

TEST_CASE("Codec names and values", "[codec][chunk_codec]") {
  CHECK(std::string(ChunkCodecName(ChunkCodec::kRaw)) == "raw");
  CHECK(std::string(ChunkCodecName(ChunkCodec::kLz4)) == "lz4");
  CHECK(std::string(ChunkCodecName(ChunkCodec::kLz4BytePlane)) == "lz4+byteplane");
  CHECK(std::string(ChunkCodecName(static_cast<ChunkCodec>(9))) == "invalid");
  CHECK(IsValidChunkCodec(0));
  CHECK(IsValidChunkCodec(1));
  CHECK(IsValidChunkCodec(2));
  CHECK_FALSE(IsValidChunkCodec(3));
  CHECK_FALSE(IsValidChunkCodec(255));
}

// --- Corrupt records -------------------------------------------------------

struct Encoded {
  std::string raw;
  std::string record;
  ChunkHeader header;
};

Encoded EncodeFor(ChunkCodec want, std::mt19937& rng) {
  Encoded e;
  Compression compression = Compression::kNone;
  if (want == ChunkCodec::kRaw) {
    e.raw = MakeData(DType::kFloat32, Pattern::kRandom, 700, rng);
  } else if (want == ChunkCodec::kLz4) {
    e.raw = MakeData(DType::kFloat32, Pattern::kSparse, 1500, rng);
    compression = Compression::kLz4;
  } else {
    e.raw = MakeData(DType::kFloat32, Pattern::kSparse, 1500, rng);
    compression = Compression::kLz4BytePlane;
  }
  ChunkEncoder enc;
  base::Buffer out;
  e.header = enc.Encode(e.raw.data(), e.raw.size(), 4, compression, &out);
  REQUIRE(e.header.codec == want);
  e.record = std::string(out.view());
  return e;
}

TEST_CASE("Every flipped byte of a record is DataLoss (or harmless), never a crash", "[codec][chunk_codec]") {
  std::mt19937 rng(77);
  for (ChunkCodec codec : {ChunkCodec::kRaw, ChunkCodec::kLz4, ChunkCodec::kLz4BytePlane}) {
    const Encoded e = EncodeFor(codec, rng);
    size_t flips = 0, harmless = 0, lz4_errors = 0, checksum_errors = 0;
    std::string dst(e.raw.size(), '\0');
    for (size_t pos = 0; pos < e.record.size(); ++pos) {
      for (uint8_t mask : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0xff}}) {
        std::string bad = e.record;
        bad[pos] = static_cast<char>(static_cast<uint8_t>(bad[pos]) ^ mask);
        INFO(ChunkCodecName(codec) << " record of " << e.record.size() << " bytes, byte " << pos << " ^ "
                                   << int{mask});
        ++flips;
        const Result<ChunkHeader> h = ParseChunkHeader(bad);
        if (pos < kChunkHeaderSize) {  // the header is checksummed
          REQUIRE_THAT(h.status(), StatusIs(StatusCode::kDataLoss, pos < 4 ? "bad magic number"
                                                                           : "header checksum mismatch"));
          continue;
        }
        REQUIRE(h.ok());  // the payload is not part of the header
        const Status s = DecodeChunk(bad, *h, dst.data(), dst.size());
        if (s.ok()) {
          // LZ4 can decode a changed stream to the same bytes (e.g. another
          // match offset into a run of zeros); the checksum proves it.
          REQUIRE(codec != ChunkCodec::kRaw);
          REQUIRE(dst == e.raw);
          ++harmless;
        } else {
          REQUIRE_THAT(s, StatusIs(StatusCode::kDataLoss));
          lz4_errors += s.message().find("LZ4 block is corrupt") != std::string::npos ? 1 : 0;
          checksum_errors += s.message().find("chunk checksum mismatch") != std::string::npos ? 1 : 0;
        }
      }
    }
    INFO(ChunkCodecName(codec) << ": " << harmless << " harmless flips of " << flips << ", " << lz4_errors
                               << " LZ4 errors, " << checksum_errors << " checksum mismatches");
    // Most flips are caught, by the LZ4 decoder or by the checksum behind it.
    CHECK(harmless * 4 < flips);
    CHECK(checksum_errors > 0);
    if (codec != ChunkCodec::kRaw) CHECK(lz4_errors > 0);
  }
}

TEST_CASE("Truncated and padded records are DataLoss", "[codec][chunk_codec]") {
  std::mt19937 rng(5);
  for (ChunkCodec codec : {ChunkCodec::kRaw, ChunkCodec::kLz4, ChunkCodec::kLz4BytePlane}) {
    const Encoded e = EncodeFor(codec, rng);
    INFO(ChunkCodecName(codec));
    for (size_t n = 0; n < e.record.size(); ++n) {
      const Result<ChunkHeader> h = ParseChunkHeader(std::string_view(e.record).substr(0, n));
      INFO("length " << n);
      if (n < kChunkHeaderSize) {
        REQUIRE_THAT(h.status(), StatusIs(StatusCode::kDataLoss, "chunk record is " + std::to_string(n) +
                                                                     " bytes, shorter than its 48-byte header"));
      } else {
        REQUIRE_THAT(h.status(), StatusIs(StatusCode::kDataLoss,
                                          "chunk record payload is " + std::to_string(n - kChunkHeaderSize) +
                                              " bytes but its header says " +
                                              std::to_string(e.header.payload_size)));
      }
    }
    REQUIRE_THAT(ParseChunkHeader(e.record + '\0').status(),
                 StatusIs(StatusCode::kDataLoss, "bytes but its header says"));
  }
}

TEST_CASE("DecodeChunk refuses a destination of the wrong size", "[codec][chunk_codec]") {
  std::mt19937 rng(6);
  for (ChunkCodec codec : {ChunkCodec::kRaw, ChunkCodec::kLz4, ChunkCodec::kLz4BytePlane}) {
    const Encoded e = EncodeFor(codec, rng);
    const size_t raw = e.raw.size();
    std::string dst(raw + 1, '#');
    CHECK_THAT(DecodeChunk(e.record, e.header, dst.data(), raw - 1),
               StatusIs(StatusCode::kDataLoss, "chunk record holds " + std::to_string(raw) +
                                                   " raw bytes, expected " + std::to_string(raw - 1)));
    CHECK_THAT(DecodeChunk(e.record, e.header, dst.data(), raw + 1),
               StatusIs(StatusCode::kDataLoss, "expected " + std::to_string(raw + 1)));
    CHECK(dst == std::string(raw + 1, '#'));  // nothing was written
  }
}

// A header with a valid header checksum but the given fields, as an attacker
// or a bug could write it (layout of chunk_codec.h).
std::string ForgeHeader(uint8_t codec, uint8_t elem_size, uint64_t raw_size, uint64_t payload_size,
                        const Hash128& checksum, uint16_t version = kChunkFormatVersion) {
  std::string h(kChunkHeaderSize, '\0');
  const uint32_t magic = kChunkMagic;
  std::memcpy(h.data() + 0, &magic, 4);
  std::memcpy(h.data() + 4, &version, 2);
  std::memcpy(h.data() + 6, &codec, 1);
  std::memcpy(h.data() + 7, &elem_size, 1);
  std::memcpy(h.data() + 8, &raw_size, 8);
  std::memcpy(h.data() + 16, &payload_size, 8);
  std::memcpy(h.data() + 24, &checksum.lo, 8);
  std::memcpy(h.data() + 32, &checksum.hi, 8);
  const uint64_t hc = Checksum64(h.data(), 40);
  std::memcpy(h.data() + 40, &hc, 8);
  return h;
}

std::string U64(uint64_t v) {
  std::string s(8, '\0');
  std::memcpy(s.data(), &v, 8);
  return s;
}

TEST_CASE("The forging helper writes what the encoder writes", "[codec][chunk_codec]") {
  std::mt19937 rng(1);
  const Encoded e = EncodeFor(ChunkCodec::kLz4, rng);
  CHECK(ForgeHeader(1, 4, e.header.raw_size, e.header.payload_size, e.header.checksum) ==
        e.record.substr(0, kChunkHeaderSize));
}

TEST_CASE("ParseChunkHeader checks the header's fields", "[codec][chunk_codec]") {
  const Hash128 sum{1, 2};
  const std::string payload(16, 'p');
  CHECK_THAT(ParseChunkHeader(ForgeHeader(3, 1, 16, 16, sum) + payload).status(),
             StatusIs(StatusCode::kDataLoss, "chunk record has unknown codec 3"));
  CHECK_THAT(ParseChunkHeader(ForgeHeader(0, 1, 16, 16, sum, 2) + payload).status(),
             StatusIs(StatusCode::kDataLoss, "chunk record has unsupported format version 2"));
  CHECK_THAT(ParseChunkHeader(ForgeHeader(1, 1, kMaxChunkRawSize + 1, 16, sum) + payload).status(),
             StatusIs(StatusCode::kDataLoss, "chunk record claims 1073741825 raw bytes, over the limit"));
  CHECK_THAT(ParseChunkHeader(ForgeHeader(0, 1, 15, 16, sum) + payload).status(),
             StatusIs(StatusCode::kDataLoss, "raw chunk record payload size differs from its raw size"));
  CHECK_THAT(ParseChunkHeader(ForgeHeader(2, 1, 16, 16, sum) + payload).status(),
             StatusIs(StatusCode::kDataLoss, "byte-plane chunk record has an invalid element size"));
  CHECK_THAT(ParseChunkHeader(ForgeHeader(2, 4, 18, 16, sum) + payload).status(),
             StatusIs(StatusCode::kDataLoss, "byte-plane chunk record has an invalid element size"));
  CHECK_THAT(ParseChunkHeader(ForgeHeader(2, 0, 16, 16, sum) + payload).status(),
             StatusIs(StatusCode::kDataLoss, "byte-plane chunk record has an invalid element size"));
  // The limit itself is accepted (the header says nothing yet about the payload).
  const ChunkHeader ok = ValueOrDie(ParseChunkHeader(ForgeHeader(1, 1, kMaxChunkRawSize, 16, sum) + payload));
  CHECK(ok.raw_size == kMaxChunkRawSize);
}

TEST_CASE("DecodeChunk checks byte-plane descriptors", "[codec][chunk_codec]") {
  // Two planes of 4 bytes each (raw size 8, element size 2), stored raw.
  const std::string raw = "a1b2c3d4";
  const std::string planes = "abcd1234";
  const Hash128 sum = ContentHash128(raw.data(), raw.size());
  constexpr uint64_t kRawBit = uint64_t{1} << 63;
  auto decode = [&](const std::string& payload) {
    const std::string record = ForgeHeader(2, 2, 8, payload.size(), sum) + payload;
    const ChunkHeader h = ValueOrDie(ParseChunkHeader(record));
    std::string dst(8, '?');
    const Status s = DecodeChunk(record, h, dst.data(), dst.size());
    if (s.ok()) CHECK(dst == raw);
    return s;
  };

  CHECK_OK(decode(U64(4 | kRawBit) + U64(4 | kRawBit) + planes));
  CHECK_THAT(decode(U64(4 | kRawBit)), StatusIs(StatusCode::kDataLoss, "byte-plane chunk record is truncated"));
  CHECK_THAT(decode(U64(4 | kRawBit) + U64(5 | kRawBit) + planes),
             StatusIs(StatusCode::kDataLoss, "byte-plane chunk record is truncated"));
  CHECK_THAT(decode(U64(4 | kRawBit) + U64(3 | kRawBit) + planes.substr(0, 7)),
             StatusIs(StatusCode::kDataLoss, "byte-plane chunk record has a raw plane of the wrong size"));
  CHECK_THAT(decode(U64(4 | kRawBit) + U64(4 | kRawBit) + planes + "x"),
             StatusIs(StatusCode::kDataLoss, "byte-plane chunk record has trailing bytes"));
  CHECK_THAT(decode(U64(4 | kRawBit) + U64(~uint64_t{0}) + planes),
             StatusIs(StatusCode::kDataLoss, "byte-plane chunk record is truncated"));
  // A "compressed" plane that is not LZ4.
  CHECK_THAT(decode(U64(4 | kRawBit) + U64(4) + planes),
             StatusIs(StatusCode::kDataLoss, "LZ4 block is corrupt"));
  // Well-formed planes in the wrong order decode, but not to the stored checksum.
  CHECK_THAT(decode(U64(4 | kRawBit) + U64(4 | kRawBit) + "1234abcd"),
             StatusIs(StatusCode::kDataLoss, "chunk checksum mismatch (stored " + sum.ToHex()));
}

TEST_CASE("DecodeChunk checks LZ4 sizes and the content checksum", "[codec][chunk_codec]") {
  std::mt19937 rng(9);
  const Encoded e = EncodeFor(ChunkCodec::kLz4, rng);
  const std::string payload = e.record.substr(kChunkHeaderSize);
  const size_t raw = e.raw.size();
  for (uint64_t claimed : {uint64_t{raw - 1}, uint64_t{raw + 1}, uint64_t{2 * raw}, uint64_t{0}}) {
    const std::string record = ForgeHeader(1, 4, claimed, payload.size(), e.header.checksum) + payload;
    const ChunkHeader h = ValueOrDie(ParseChunkHeader(record));
    std::string dst(claimed, '\0');
    INFO("claimed raw size " << claimed);
    CHECK_THAT(DecodeChunk(record, h, dst.data(), dst.size()), StatusIs(StatusCode::kDataLoss, "LZ4 block is corrupt"));
  }
  Hash128 wrong = e.header.checksum;
  wrong.hi ^= 1;
  for (ChunkCodec codec : {ChunkCodec::kRaw, ChunkCodec::kLz4, ChunkCodec::kLz4BytePlane}) {
    const Encoded c = EncodeFor(codec, rng);
    const std::string record =
        ForgeHeader(static_cast<uint8_t>(codec), 4, c.header.raw_size, c.header.payload_size, wrong) +
        c.record.substr(kChunkHeaderSize);
    const ChunkHeader h = ValueOrDie(ParseChunkHeader(record));
    std::string dst(c.raw.size(), '\0');
    INFO(ChunkCodecName(codec));
    CHECK_THAT(DecodeChunk(record, h, dst.data(), dst.size()),
               StatusIs(StatusCode::kDataLoss, "chunk checksum mismatch (stored " + wrong.ToHex() + ", computed " +
                                                   ContentHash128(c.raw.data(), c.raw.size()).ToHex() + ")"));
    if (codec == ChunkCodec::kRaw) {
      CHECK_THAT(RawChunkPayload(record, h).status(), StatusIs(StatusCode::kDataLoss, "chunk checksum mismatch"));
    }
  }
}

}  // namespace
}  // namespace dcp::codec
