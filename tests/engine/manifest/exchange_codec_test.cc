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
    const auto r = DecodeRankDecl(bytes.substr(0, n), 4);
    if (r.ok()) {
      // Only trailing alignment padding may go unnoticed (nothing refers to
      // it): then the declaration is the same.
      REQUIRE(bytes.size() - n < 8);
      REQUIRE(EncodeRankDecl(*r) == bytes);
      continue;
    }
    REQUIRE_THAT(r.status(), StatusIs(StatusCode::kInternal, "from rank 4"));
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

// The compact exchange of `decls` (one per rank), as the ranks would run it:
// round-1 signatures and round-2 messages, then what every rank assembles.
struct Exchanged {
  std::vector<SplitDecl> splits;
  std::vector<ReplicaSignature> signatures;
  std::vector<std::string> messages;
};
Exchanged Exchange(const std::vector<RankDecl>& decls) {
  Exchanged x;
  for (const RankDecl& d : decls) {
    x.splits.push_back(SplitRankDecl(d));
    // Signatures travel encoded.
    x.signatures.push_back(ValueOrDie(DecodeSignature(EncodeSignature(x.splits.back().signature), 0)));
  }
  const std::vector<int> rep = Representatives(x.signatures);
  for (size_t r = 0; r < decls.size(); ++r) {
    x.messages.push_back(EncodeExchangeDecl(x.splits[r], rep[r] == static_cast<int>(r)));
  }
  return x;
}

ShardDecl Rows(const std::string& key, int64_t row0, int64_t rows, bool main) {
  return ShardDecl{key, DType::kFloat32, {16, 4}, Box{{row0, 0}, {rows, 4}}, main};
}

bool SameShards(const std::vector<ShardDecl>& a, const std::vector<ShardDecl>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!SameShard(a[i], b[i])) return false;
  }
  return true;
}

TEST_CASE("compact exchange: replicas held alike travel once, every declaration is recovered", "[manifest]") {
  // Rank 0 holds the main replica of w[0:8] and v; ranks 1, 2, 4, 5 replicate
  // w[0:8] (data parallel); rank 3 replicates w[0:8] and v.
  std::vector<RankDecl> decls(6);
  decls[0].tensors = {Rows("w", 0, 8, true), Rows("v", 0, 16, true), Rows("w", 8, 8, true)};
  for (int r : {1, 2, 4, 5}) decls[r].tensors = {Rows("w", 0, 8, false)};
  decls[3].tensors = {Rows("w", 0, 8, false), Rows("v", 0, 16, false)};
  decls[4].objects.push_back({"rng", {6}, {4}, true});
  decls[5].common_state_hash = {7, 9};

  const Exchanged x = Exchange(decls);
  CHECK(Representatives(x.signatures) == std::vector<int>{-1, 1, 1, 3, 1, 1});
  CHECK(x.signatures[0].count == 0);
  CHECK(x.signatures[1] == x.signatures[2]);
  CHECK_FALSE(x.signatures[1] == x.signatures[3]);
  // Ranks 2, 4 and 5 send nothing of their replicas.
  for (int r : {2, 5}) CHECK(ValueOrDie(DecodeRankDecl(x.messages[r], r)).tensors.empty());
  CHECK(ValueOrDie(DecodeRankDecl(x.messages[1], 1)).tensors.size() == 1);

  const GlobalDecls g = ValueOrDie(AssembleGlobalDecls(x.signatures, x.messages));
  REQUIRE(g.ranks.size() == 6);
  REQUIRE(g.replica_sets.size() == 2);
  CHECK(g.replica_sets[0].holders == std::vector<int>{1, 2, 4, 5});
  CHECK(SameShards(g.replica_sets[0].shards, {Rows("w", 0, 8, false)}));
  CHECK(g.replica_sets[1].holders == std::vector<int>{3});
  CHECK(SameShards(g.ranks[0].tensors, decls[0].tensors));
  CHECK(g.ranks[4].objects.size() == 1);
  CHECK(g.ranks[5].common_state_hash.lo == 7);
  const std::vector<RankDecl> expanded = ExpandGlobalDecls(g);
  for (size_t r = 0; r < decls.size(); ++r) {
    INFO("rank " << r);
    CHECK(SameShards(expanded[r].tensors, decls[r].tensors));  // mains first here, as declared
    CHECK_OK(CheckOwnReplicas(g, static_cast<int>(r), x.splits[r].replicas));
  }
}

TEST_CASE("compact exchange: a rank whose replicas differ from its representative's finds out", "[manifest]") {
  std::vector<RankDecl> decls(3);
  decls[0].tensors = {Rows("w", 0, 16, true)};
  decls[1].tensors = {Rows("w", 0, 16, false)};
  decls[2].tensors = {Rows("w", 0, 16, false)};
  const Exchanged x = Exchange(decls);
  const GlobalDecls g = ValueOrDie(AssembleGlobalDecls(x.signatures, x.messages));
  // As if rank 2's different shards had collided with rank 1's signature.
  CHECK_THAT(CheckOwnReplicas(g, 2, {Rows("w", 0, 8, false)}),
             StatusIs(StatusCode::kInvalidArgument, "rank 2: its non-main shards differ"));
  CHECK_THAT(CheckOwnReplicas(g, 0, {Rows("w", 0, 16, false)}), StatusIs(StatusCode::kInvalidArgument, "rank 0"));
}

TEST_CASE("compact exchange: inconsistent messages are Internal errors naming the rank", "[manifest]") {
  std::vector<RankDecl> decls(3);
  decls[0].tensors = {Rows("w", 0, 16, true)};
  decls[1].tensors = {Rows("w", 0, 16, false)};
  decls[2].tensors = {Rows("w", 0, 16, false)};
  Exchanged x = Exchange(decls);
  SECTION("a rank that is not its set's representative sends its replicas") {
    x.messages[2] = EncodeRankDecl(decls[2]);
    CHECK_THAT(AssembleGlobalDecls(x.signatures, x.messages).status(),
               StatusIs(StatusCode::kInternal, "rank 2 sent non-main shards it was not to send"));
  }
  SECTION("a representative sends fewer replicas than it signed") {
    x.messages[1] = EncodeRankDecl(RankDecl());
    CHECK_THAT(AssembleGlobalDecls(x.signatures, x.messages).status(),
               StatusIs(StatusCode::kInternal, "rank 1 sent 0 non-main shards but signed 1"));
  }
  SECTION("a message does not decode") {
    x.messages[2] = "garbage";
    CHECK_THAT(AssembleGlobalDecls(x.signatures, x.messages).status(),
               StatusIs(StatusCode::kInternal, "malformed shard declarations from rank 2"));
  }
  SECTION("a signature does not decode") {
    CHECK_THAT(DecodeSignature("short", 5).status(),
               StatusIs(StatusCode::kInternal, "malformed replica signature from rank 5"));
  }
  SECTION("the rounds disagree on the number of ranks") {
    x.messages.pop_back();
    CHECK_THAT(AssembleGlobalDecls(x.signatures, x.messages).status(), StatusIs(StatusCode::kInternal, "3 ranks"));
  }
}

TEST_CASE("replica signatures tell apart order, boxes, flags and flat ranges", "[manifest]") {
  const ShardDecl a = Rows("w", 0, 8, false), b = Rows("w", 8, 8, false);
  ShardDecl flat = a;
  flat.flattened_range = FlatRange{0, 4};
  ShardDecl flat2 = a;
  flat2.flattened_range = FlatRange{0, 5};
  auto sig = [](std::vector<ShardDecl> shards) {
    RankDecl d;
    d.tensors = std::move(shards);
    return SplitRankDecl(std::move(d)).signature;
  };
  CHECK(sig({a, b}) == sig({a, b}));
  CHECK_FALSE(sig({a, b}) == sig({b, a}));
  CHECK_FALSE(sig({a}) == sig({b}));
  CHECK_FALSE(sig({flat}) == sig({flat2}));
  CHECK_FALSE(sig({a}) == sig({flat}));
  // Main shards are not part of the signature.
  CHECK(sig({Rows("v", 0, 4, true), a}) == sig({a}));
  CHECK(sig({Rows("v", 0, 4, true)}).count == 0);
}

}  // namespace
}  // namespace dcp::manifest
