// Copyright (c) dcp authors.
// Tests of engine/sharding/chunking.cc: cutting shards into chunks.

#include "engine/sharding/chunking.h"

#include <catch2/catch.hpp>

#include <random>
#include <vector>

#include "dcp/types.h"
#include "engine/array/box.h"
#include "engine/array/box_index.h"

namespace dcp::sharding {
namespace {

Box B(Shape origin, Shape shape) { return Box{std::move(origin), std::move(shape)}; }

// Checks every property ChunkBox promises for `shard`.
void CheckChunks(const Box& shard, size_t elem, uint64_t max_bytes) {
  const std::vector<Box> chunks = ChunkBox(shard, elem, max_bytes);
  INFO("shard " << shard.ToString() << ", elem " << elem << ", max_bytes " << max_bytes);
  if (shard.num_elements() == 0) {
    CHECK(chunks.empty());
    return;
  }
  REQUIRE_FALSE(chunks.empty());

  // They tile the shard exactly.
  std::vector<Box> relative;
  for (const Box& c : chunks) {
    REQUIRE(array::Contains(shard, c));
    relative.push_back(array::RelativeTo(c, shard.origin));
  }
  const array::CoverProblem p = array::CheckExactCover(shard.shape, relative);
  REQUIRE(p.ok());
  if (shard.rank() == 0) {
    CHECK(chunks == std::vector<Box>{shard});
    return;
  }

  // The split axis, as the contract defines it: the outermost axis k whose
  // slab (the bytes of one index along k, all later axes whole) fits.
  auto slab = [&](int k) {
    uint64_t b = elem;
    for (int d = k + 1; d < shard.rank(); ++d) b *= static_cast<uint64_t>(shard.shape[d]);
    return b;
  };
  int k = 0;
  while (slab(k) > max_bytes) ++k;
  REQUIRE(k < shard.rank());
  const int64_t max_run = static_cast<int64_t>(max_bytes / slab(k));
  REQUIRE(max_run >= 1);
  // Axis k is cut into the fewest runs that fit.
  const int64_t pieces = (shard.shape[k] + max_run - 1) / max_run;
  int64_t outer = 1;
  for (int d = 0; d < k; ++d) outer *= shard.shape[d];
  CHECK(static_cast<int64_t>(chunks.size()) == outer * pieces);

  int64_t expected_offset = 0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    const Box& c = chunks[i];
    INFO("chunk " << i << " " << c.ToString() << ", split axis " << k);
    // Never larger than max_bytes, never smaller than one element.
    CHECK(c.num_elements() >= 1);
    CHECK(static_cast<uint64_t>(c.num_elements()) * elem <= max_bytes);
    // Contiguous in the shard's row-major layout: axes before the split axis
    // have extent 1, axes after it are whole.
    for (int d = 0; d < k; ++d) CHECK(c.shape[d] == 1);
    CHECK(c.shape[k] <= max_run);
    for (int d = k + 1; d < shard.rank(); ++d) {
      CHECK(c.origin[d] == shard.origin[d]);
      CHECK(c.shape[d] == shard.shape[d]);
    }
    // In row-major order: each chunk starts where the previous one ended.
    CHECK(array::LinearOffset(relative[i].origin, shard.shape) == expected_offset);
    expected_offset += c.num_elements();
  }
  CHECK(expected_offset == shard.num_elements());
}

TEST_CASE("ChunkBox examples", "[sharding][chunking]") {
  SECTION("the whole shard fits") {
    CHECK(ChunkBox(B({4, 8}, {4, 6}), 4, 1 << 20) == std::vector<Box>{B({4, 8}, {4, 6})});
    CHECK(ChunkBox(B({0, 0}, {4, 6}), 4, 96) == std::vector<Box>{B({0, 0}, {4, 6})});
  }
  SECTION("rows, balanced") {
    // 4 rows of 24 bytes, 48 bytes each: two chunks of two rows.
    CHECK(ChunkBox(B({0, 0}, {4, 6}), 4, 48) == std::vector<Box>{B({0, 0}, {2, 6}), B({2, 0}, {2, 6})});
    // 10 rows, at most 9 per chunk: 5 and 5, not a greedy 9 and 1.
    CHECK(ChunkBox(B({10, 0}, {10, 2}), 1, 18) == std::vector<Box>{B({10, 0}, {5, 2}), B({15, 0}, {5, 2})});
    // 7 rows, at most 4 per chunk: 4 and 3.
    CHECK(ChunkBox(B({0, 0}, {7, 2}), 1, 8) == std::vector<Box>{B({0, 0}, {4, 2}), B({4, 0}, {3, 2})});
    // 7 rows, at most 3 per chunk: 3, 2, 2 (not a greedy 3, 3, 1).
    CHECK(ChunkBox(B({0, 0}, {7, 2}), 1, 6) ==
          std::vector<Box>{B({0, 0}, {3, 2}), B({3, 0}, {2, 2}), B({5, 0}, {2, 2})});
  }
  SECTION("max_bytes smaller than a row") {
    // Rows of 100 float32 (400 bytes) with 40-byte chunks: 10 chunks per row.
    const std::vector<Box> chunks = ChunkBox(B({0, 0}, {3, 100}), 4, 40);
    REQUIRE(chunks.size() == 30);
    CHECK(chunks[0] == B({0, 0}, {1, 10}));
    CHECK(chunks[9] == B({0, 90}, {1, 10}));
    CHECK(chunks[10] == B({1, 0}, {1, 10}));
    CHECK(chunks[29] == B({2, 90}, {1, 10}));
    // A slab of the middle axis is too big: single indices on axes 0 and 1.
    const std::vector<Box> c3 = ChunkBox(B({0, 0, 0}, {2, 3, 8}), 2, 8);
    REQUIRE(c3.size() == 2 * 3 * 2);  // rows of 16 bytes in halves
    CHECK(c3[0] == B({0, 0, 0}, {1, 1, 4}));
    CHECK(c3[1] == B({0, 0, 4}, {1, 1, 4}));
    CHECK(c3[2] == B({0, 1, 0}, {1, 1, 4}));
  }
  SECTION("one element per chunk") {
    const std::vector<Box> chunks = ChunkBox(B({0, 0}, {2, 3}), 8, 8);
    REQUIRE(chunks.size() == 6);
    for (int64_t i = 0; i < 6; ++i) CHECK(chunks[i] == B({i / 3, i % 3}, {1, 1}));
    // max_bytes not a multiple of the element size: still whole elements.
    CHECK(ChunkBox(B({0}, {5}), 4, 7).size() == 5);
  }
  SECTION("0-d") {
    CHECK(ChunkBox(B({}, {}), 4, 4) == std::vector<Box>{B({}, {})});
    CHECK(ChunkBox(B({}, {}), 8, 1 << 20) == std::vector<Box>{B({}, {})});
  }
  SECTION("empty shards have no chunks") {
    CHECK(ChunkBox(B({0, 0}, {0, 6}), 4, 48).empty());
    CHECK(ChunkBox(B({3, 2}, {4, 0}), 4, 48).empty());
    CHECK(ChunkBox(B({0}, {0}), 1, 1).empty());
  }
  SECTION("size-1 leading axes (prepended layer axes)") {
    const std::vector<Box> chunks = ChunkBox(B({5, 0, 0}, {1, 8, 4}), 4, 64);
    REQUIRE(chunks.size() == 2);
    CHECK(chunks[0] == B({5, 0, 0}, {1, 4, 4}));
    CHECK(chunks[1] == B({5, 4, 0}, {1, 4, 4}));
  }
}

TEST_CASE("ChunkBox properties on random shards", "[sharding][chunking]") {
  std::mt19937 rng(31337);
  for (int iter = 0; iter < 1500; ++iter) {
    const int rank = std::uniform_int_distribution<int>(0, 4)(rng);
    Box shard;
    for (int d = 0; d < rank; ++d) {
      shard.origin.push_back(std::uniform_int_distribution<int64_t>(0, 100)(rng));
      shard.shape.push_back(std::uniform_int_distribution<int64_t>(iter % 50 == 0 ? 0 : 1, 9)(rng));
    }
    const size_t elem = size_t{1} << std::uniform_int_distribution<int>(0, 3)(rng);
    const uint64_t total = static_cast<uint64_t>(shard.num_elements()) * elem;
    const uint64_t max_bytes =
        std::uniform_int_distribution<uint64_t>(elem, std::max<uint64_t>(elem, total + total / 2 + 1))(rng);
    CheckChunks(shard, elem, max_bytes);
  }
}

TEST_CASE("ChunkBox is deterministic and depends only on the shard's shape", "[sharding][chunking]") {
  const Box shard = B({0, 0, 0}, {5, 7, 3});
  const std::vector<Box> a = ChunkBox(shard, 4, 100);
  CHECK(ChunkBox(shard, 4, 100) == a);
  const Box moved = B({10, 20, 30}, {5, 7, 3});
  const std::vector<Box> b = ChunkBox(moved, 4, 100);
  REQUIRE(b.size() == a.size());
  for (size_t i = 0; i < a.size(); ++i) CHECK(array::RelativeTo(b[i], moved.origin) == a[i]);
}

TEST_CASE("ChunkBox of a large shard stays within max_bytes", "[sharding][chunking]") {
  // 4096 x 4096 float32 = 64 MiB with the default 8 MiB chunks: 8 chunks of 512 rows.
  const std::vector<Box> chunks = ChunkBox(B({0, 4096}, {4096, 4096}), 4, uint64_t{8} << 20);
  REQUIRE(chunks.size() == 8);
  for (size_t i = 0; i < 8; ++i) CHECK(chunks[i] == B({static_cast<int64_t>(i) * 512, 4096}, {512, 4096}));
  CheckChunks(B({0, 0}, {4097, 4095}), 2, uint64_t{1} << 20);
}

}  // namespace
}  // namespace dcp::sharding
