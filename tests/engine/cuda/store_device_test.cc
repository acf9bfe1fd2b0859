// Copyright (c) dcp authors.
//
// Saving from and loading into CUDA device memory through the Store.

#include <catch2/catch.hpp>

#include <cstring>
#include <random>
#include <stdexcept>

#include "dcp/store.h"
#include "tests/engine/cuda/cuda_util.h"
#include "tests/testing/rank_runner.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/tensor_fill.h"

namespace dcp {
namespace {

using testing::DeviceBuffer;

// Rank r of 2 holds rows [r*R/2, (r+1)*R/2) of a (R, C) float32 tensor, as a
// column block (stride `pitch`) of a larger device matrix.
struct DeviceShard {
  DeviceShard(int rank, int64_t rows, int64_t cols, int64_t pitch)
      : buffer(static_cast<size_t>(rows / 2 * pitch) * 4), box{{rank * rows / 2, 0}, {rows / 2, cols}} {
    testing::HostTensor host(DType::kFloat32, {rows / 2, pitch});
    testing::FillRegion("w", {rows, pitch}, Box{{rank * rows / 2, 0}, {rows / 2, pitch}}, host.view());
    buffer.Upload(host.bytes());
    view = TensorView(buffer.get(), DType::kFloat32, {rows / 2, cols}, {pitch, 1}, Device::Cuda(0));
    global = {rows, cols};
  }
  ShardedTensor Sharded() const {
    ShardedTensor t;
    t.key = "w";
    t.data = view;
    t.dtype = DType::kFloat32;
    t.local_shape = view.shape();
    t.global_shape = global;
    t.global_offset = box.origin;
    return t;
  }
  DeviceBuffer buffer;
  Box box;
  Shape global;
  TensorView view;
};

// The expected contents of w[region]: the save filled a (R, pitch) tensor and
// kept its first C columns.
std::string Expected(const Box& region, int64_t rows, int64_t pitch) {
  testing::HostTensor full(DType::kFloat32, region.shape);
  Box wide = region;
  testing::FillRegion("w", {rows, pitch}, wide, full.view());
  return full.bytes();
}

TEST_CASE("device shards save and load (reshard 2 -> 1) into device memory, strided both ways", "[cuda]") {
  testing::TempDir dir;
  const int64_t rows = 1024, cols = 700, pitch = 1024;  // ~2.7 MiB per rank, several chunks
  std::vector<Status> status(2);
  testing::RunRanks(2, [&](int rank, Communicator* comm) {
    DeviceShard shard(rank, rows, cols, pitch);
    StateDict sd;
    sd.Add("w", shard.Sharded());
    auto store = Store::Open(dir.path(), comm);
    SaveOptions opts;
    opts.chunk_bytes = 256 << 10;
    status[rank] = store.ok() ? (*store)->Put(1, sd, opts) : store.status();
  });
  REQUIRE_OK(status[0]);
  REQUIRE_OK(status[1]);

  // Load everything into a transposed (column-major) device destination.
  auto store = ValueOrDie(Store::Open(dir.path(), nullptr, StoreOptions{.create_if_missing = false, .read_only = true}));
  DeviceBuffer out(static_cast<size_t>(rows * cols) * 4);
  out.Fill(0);
  StateDict req;
  req.Add("w", ShardedTensor::Whole("w", TensorView(out.get(), DType::kFloat32, {rows, cols}, {1, rows},
                                                     Device::Cuda(0))));
  REQUIRE_OK(store->Get(1, &req).status());
  const std::string got = out.Download();
  testing::HostTensor expect(DType::kFloat32, {rows, cols});
  for (int64_t r = 0; r < rows; ++r) {
    testing::HostTensor row(DType::kFloat32, {1, pitch});
    testing::FillRegion("w", {rows, pitch}, Box{{r, 0}, {1, pitch}}, row.view());
    std::memcpy(expect.bytes().data() + r * cols * 4, row.bytes().data(), static_cast<size_t>(cols) * 4);
  }
  // Compare column-major got with row-major expect.
  const float* g = reinterpret_cast<const float*>(got.data());
  const float* e = reinterpret_cast<const float*>(expect.bytes().data());
  size_t bad = 0;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) bad += std::memcmp(&g[c * rows + r], &e[r * cols + c], 4) != 0;
  }
  CHECK(bad == 0);

  // Read one region into device memory.
  DeviceBuffer part(static_cast<size_t>(10 * 20) * 4);
  REQUIRE_OK(store->Read(1, "w", Box{{500, 30}, {10, 20}},
                         TensorView(part.get(), DType::kFloat32, {10, 20}, {}, Device::Cuda(0))));
  const std::string p = part.Download();
  for (int64_t r = 0; r < 10; ++r) {
    CHECK(std::memcmp(p.data() + r * 20 * 4, e + (500 + r) * cols + 30, 20 * 4) == 0);
  }
}

TEST_CASE("an async put from device memory snapshots before returning", "[cuda]") {
  testing::TempDir dir;
  const int64_t rows = 512, cols = 256, pitch = 300;
  std::vector<Status> started(2), finished(2);
  testing::RunRanks(2, [&](int rank, Communicator* comm) {
    DeviceShard shard(rank, rows, cols, pitch);
    StateDict sd;
    sd.Add("w", shard.Sharded());
    auto store = Store::Open(dir.path(), comm);
    if (!store.ok()) throw std::runtime_error(store.status().ToString());
    started[rank] = (*store)->PutAsync(1, sd);
    shard.buffer.Fill(0x7f);  // the next training step overwrites the weights
    finished[rank] = (*store)->WaitForPut();
  });
  REQUIRE_OK(started[0]);
  REQUIRE_OK(finished[0]);
  REQUIRE_OK(finished[1]);
  auto store = ValueOrDie(Store::Open(dir.path(), nullptr, StoreOptions{.create_if_missing = false, .read_only = true}));
  testing::HostTensor host(DType::kFloat32, {rows, cols});
  REQUIRE_OK(store->Read(1, "w", Box{{0, 0}, {rows, cols}}, host.view()));
  for (int64_t r = 0; r < rows; r += 37) {
    const std::string expect = Expected(Box{{r, 0}, {1, pitch}}, rows, pitch);
    CHECK(std::memcmp(host.bytes().data() + r * cols * 4, expect.data(), static_cast<size_t>(cols) * 4) == 0);
  }
}

// Load requests into device memory that the planner cuts up: a larger global
// shape (zero padding written to the device), and a flat distributed-optimizer
// slice (its pieces are stretches of a 1-D device view).
TEST_CASE("device destinations take zero padding and flat slices", "[cuda]") {
  testing::TempDir dir;
  const int64_t rows = 64, cols = 48;
  testing::HostTensor host(DType::kFloat32, {rows, cols});
  testing::FillRegion("w", {rows, cols}, Box{{0, 0}, {rows, cols}}, host.view());
  {
    auto store = ValueOrDie(Store::Open(dir.path(), nullptr));
    StateDict sd;
    sd.Add("w", ShardedTensor::Whole("w", host.view()));
    SaveOptions opts;
    opts.chunk_bytes = 2048;  // several chunks per request
    REQUIRE_OK(store->Put(1, sd, opts));
  }
  auto store = ValueOrDie(Store::Open(dir.path(), nullptr, StoreOptions{.create_if_missing = false, .read_only = true}));

  SECTION("padded rows are zeros on the device") {
    const int64_t padded = 80;
    DeviceBuffer out(static_cast<size_t>(padded * cols) * 4);
    out.Fill(0xA5);
    ShardedTensor t = ShardedTensor::Whole(
        "w", TensorView(out.get(), DType::kFloat32, {padded, cols}, {}, Device::Cuda(0)));
    t.allow_shape_mismatch = true;
    StateDict req;
    req.Add("w", t);
    REQUIRE_OK(store->Get(1, &req).status());
    const std::string got = out.Download();
    CHECK(got.substr(0, static_cast<size_t>(rows * cols) * 4) == host.bytes());
    CHECK(got.substr(static_cast<size_t>(rows * cols) * 4) == std::string(static_cast<size_t>((padded - rows) * cols) * 4, '\0'));
  }
  SECTION("a flat slice of rows [16, 48) into a 1-D device view") {
    const FlatRange range{100, 1000};  // starts and ends mid-row
    DeviceBuffer out(static_cast<size_t>(range.size()) * 4);
    out.Fill(0xA5);
    ShardedTensor t;
    t.key = "w";
    t.dtype = DType::kFloat32;
    t.local_shape = {32, cols};
    t.global_shape = {rows, cols};
    t.global_offset = {16, 0};
    t.flattened_range = range;
    t.data = TensorView(out.get(), DType::kFloat32, {range.size()}, {}, Device::Cuda(0));
    StateDict req;
    req.Add("w", t);
    REQUIRE_OK(store->Get(1, &req).status());
    CHECK(out.Download() == host.bytes().substr(static_cast<size_t>(16 * cols + range.begin) * 4,
                                                static_cast<size_t>(range.size()) * 4));
  }
}

}  // namespace
}  // namespace dcp
