// Copyright (c) dcp authors.
// Tests of engine/manifest/exchange_codec.cc: the shard declarations ranks exchange.

#include "engine/manifest/exchange_codec.h"

#include <catch2/catch.hpp>
#include <random>
#include <string>

#include "engine/manifest/manifest_codec.h"
#include "tests/testing/status_matchers.h"

namespace dcp::manifest {
namespace {

using dcp::testing::StatusIs;

RankDecl SampleDecl() {
  RankDecl d;
  d.tensors.push_back({"scalar", DType::kInt64, {}, Box{{}, {}}, true});
  d.tensors.push_back({"emb", DType::kBFloat16, {1000, 64}, Box{{500, 0}, {500, 64}}, false});
  d.tensors.push_back({"layers/qkv", DType::kFloat8E4M3, {4, 96, 32}, Box{{2, 0, 16}, {1, 96, 16}}, true});
  d.tensors.push_back({"empty", DType::kUInt32, {0}, Box{{0}, {0}}, true});
  d.tensors.push_back(
      {"big", DType::kFloat64, {int64_t{1} << 40, 3, 2, 1}, Box{{int64_t{1} << 39, 0, 0, 0}, {7, 3, 2, 1}}, false});
  d.tensors.push_back(
      {"optimizer.state.exp_avg.w", DType::kFloat32, {8, 6}, Box{{4, 0}, {4, 6}}, true, FlatRange{5, 17}});
  d.tensors.push_back({"optimizer.state.exp_avg.v", DType::kFloat32, {8, 6}, Box{{4, 0}, {4, 6}}, false,
                       FlatRange{int64_t{1} << 41, int64_t{1} << 41}});
  d.objects.push_back({"optimizer/param_groups", {}, {}, true});
  d.objects.push_back({"rng", {8}, {5}, false});
  d.common_state_hash = {0x0123456789abcdefULL, 0xfedcba9876543210ULL};
  return d;
}

TEST_CASE("RankDecl round trips field by field", "[manifest]") {
  const RankDecl d = SampleDecl();
  const RankDecl back = ValueOrDie(DecodeRankDecl(EncodeRankDecl(d), 2));
  REQUIRE(back.tensors.size() == d.tensors.size());
  for (size_t i = 0; i < d.tensors.size(); ++i) {
    INFO(d.tensors[i].key);
    CHECK(back.tensors[i].key == d.tensors[i].key);
    CHECK(back.tensors[i].dtype == d.tensors[i].dtype);
    CHECK(back.tensors[i].global_shape == d.tensors[i].global_shape);
    CHECK(back.tensors[i].box == d.tensors[i].box);
    CHECK(back.tensors[i].main_replica == d.tensors[i].main_replica);
    CHECK(back.tensors[i].flattened_range.has_value() == d.tensors[i].flattened_range.has_value());
    if (d.tensors[i].flattened_range) CHECK(*back.tensors[i].flattened_range == *d.tensors[i].flattened_range);
  }
  REQUIRE(back.objects.size() == d.objects.size());
  for (size_t i = 0; i < d.objects.size(); ++i) {
    INFO(d.objects[i].key);
    CHECK(back.objects[i].key == d.objects[i].key);
    CHECK(back.objects[i].global_shape == d.objects[i].global_shape);
    CHECK(back.objects[i].global_offset == d.objects[i].global_offset);
    CHECK(back.objects[i].main_replica == d.objects[i].main_replica);
  }
  CHECK(back.common_state_hash == d.common_state_hash);
}

TEST_CASE("An empty RankDecl round trips", "[manifest]") {
  const RankDecl back = ValueOrDie(DecodeRankDecl(EncodeRankDecl(RankDecl()), 0));
  CHECK(back.tensors.empty());
  CHECK(back.objects.empty());
  CHECK(back.common_state_hash == codec::Hash128{});
}

TEST_CASE("Garbage declarations are Internal naming the sending rank", "[manifest]") {
  CHECK_THAT(DecodeRankDecl("", 3).status(),
             StatusIs(StatusCode::kInternal, "malformed shard declarations from rank 3"));
  CHECK_THAT(DecodeRankDecl("1234567", 5).status(), StatusIs(StatusCode::kInternal, "from rank 5"));
  std::mt19937 rng(5);
  for (size_t len : {8, 16, 64, 512}) {
    std::string g(len, '\0');
    for (char& c : g) c = static_cast<char>(rng());
    INFO("length " << len);
    CHECK_THAT(DecodeRankDecl(g, 7).status(), StatusIs(StatusCode::kInternal, "from rank 7"));
    g.replace(4, 4, "DCPX");  // right identifier, garbage tables
    CHECK_THAT(DecodeRankDecl(g, 7).status(), StatusIs(StatusCode::kInternal, "from rank 7"));
  }
  // A manifest payload is a FlatBuffer, but not a declaration.
  CHECK_THAT(DecodeRankDecl(EncodeManifestPayload(StepManifest()), 1).status(),
             StatusIs(StatusCode::kInternal, "malformed shard declarations from rank 1"));
}

TEST_CASE("Truncated and flipped declarations never crash", "[manifest]") {
  const std::string bytes = EncodeRankDecl(SampleDecl());
  for (size_t n = 0; n < bytes.size(); ++n) {
    INFO("length " << n);
    REQUIRE_THAT(DecodeRankDecl(bytes.substr(0, n), 4).status(), StatusIs(StatusCode::kInternal, "from rank 4"));
  }
  std::mt19937 rng(17);
  std::uniform_int_distribution<int> mask(1, 255);
  int rejected = 0;
  for (size_t pos = 0; pos < bytes.size(); ++pos) {
    std::string bad = bytes;
    bad[pos] = static_cast<char>(bad[pos] ^ mask(rng));
    const auto r = DecodeRankDecl(bad, 4);
    if (!r.ok()) {
      INFO("flip at " << pos);
      REQUIRE_THAT(r.status(), StatusIs(StatusCode::kInternal, "from rank 4"));
      ++rejected;
    }
  }
  CHECK(rejected > 0);
}

}  // namespace
}  // namespace dcp::manifest
