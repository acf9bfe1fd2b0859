// Copyright (c) dcp authors.

#include "engine/cuda/device.h"

#include <catch2/catch.hpp>

#include <cstring>
#include <random>

#include "engine/array/strided_copy.h"
#include "tests/engine/cuda/cuda_util.h"
#include "tests/testing/status_matchers.h"

namespace dcp::cuda {
namespace {

using testing::DeviceBuffer;
using testing::StatusIs;

TEST_CASE("views are checked against where their memory really is", "[cuda]") {
  REQUIRE(Built());
  REQUIRE(DeviceCount() >= 1);
  DeviceBuffer dev(64);
  std::vector<float> host(16);
  REQUIRE_OK(CheckViewMemory(TensorView(dev.get(), DType::kFloat32, {16}, {}, Device::Cuda(0)), "w"));
  REQUIRE_OK(CheckViewMemory(TensorView(host.data(), DType::kFloat32, {16}), "w"));
  REQUIRE_THAT(CheckViewMemory(TensorView(dev.get(), DType::kFloat32, {16}), "entry 'w'"),
               StatusIs(StatusCode::kInvalidArgument,
                        "entry 'w': view is on host but its pointer is CUDA device memory (cuda:0)"));
  REQUIRE_THAT(CheckViewMemory(TensorView(host.data(), DType::kFloat32, {16}, {}, Device::Cuda(0)), "entry 'w'"),
               StatusIs(StatusCode::kInvalidArgument, "entry 'w': view is on cuda:0 but its pointer is"));
  REQUIRE_THAT(CheckViewMemory(TensorView(dev.get(), DType::kFloat32, {16}, {}, Device::Cuda(DeviceCount())), "w"),
               StatusIs(StatusCode::kInvalidArgument, "CUDA devices exist"));
}

TEST_CASE("strided device views copy to and from host exactly", "[cuda]") {
  std::mt19937 rng(7);
  Stream stream;
  for (int trial = 0; trial < 60; ++trial) {
    const int rank = std::uniform_int_distribution<int>(0, 4)(rng);
    const size_t elem = std::vector<size_t>{1, 2, 4, 8}[std::uniform_int_distribution<int>(0, 3)(rng)];
    const DType dtype = elem == 1 ? DType::kUInt8 : elem == 2 ? DType::kBFloat16 : elem == 4 ? DType::kFloat32
                                                                                            : DType::kInt64;
    // A view of `shape` inside a larger backing array (padding per axis),
    // possibly with its axes permuted.
    Shape shape, backing;
    for (int d = 0; d < rank; ++d) {
      shape.push_back(std::uniform_int_distribution<int64_t>(1, 9)(rng));
      backing.push_back(shape.back() + std::uniform_int_distribution<int64_t>(0, 3)(rng));
    }
    Shape strides = ContiguousStrides(backing);
    std::vector<int> perm(rank);
    for (int d = 0; d < rank; ++d) perm[d] = d;
    std::shuffle(perm.begin(), perm.end(), rng);
    Shape pshape(rank), pstrides(rank);
    for (int d = 0; d < rank; ++d) {
      pshape[d] = shape[perm[d]];
      pstrides[d] = strides[perm[d]];
    }
    const size_t bytes = static_cast<size_t>(NumElements(backing)) * elem;
    std::string pattern(bytes, '\0');
    for (auto& c : pattern) c = static_cast<char>(rng());
    DeviceBuffer dev(bytes);
    dev.Upload(pattern);
    const TensorView dview(dev.get(), dtype, pshape, pstrides, Device::Cuda(0));
    const TensorView hview(pattern.data(), dtype, pshape, pstrides);
    std::string expected(hview.size_bytes(), '\0'), got(hview.size_bytes(), '\0');
    array::PackView(hview, expected.data());
    INFO("trial " << trial << " shape " << ShapeToString(pshape) << " strides " << ShapeToString(pstrides));
    REQUIRE_OK(CopyToHost(dview, got.data(), &stream));
    CHECK(got == expected);
    // And back: write reversed bytes through the strided device view.
    std::string reversed(expected.rbegin(), expected.rend());
    REQUIRE_OK(CopyToDevice(reversed.data(), dview, &stream));
    std::string after = dev.Download();
    std::string check(hview.size_bytes(), '\0');
    array::PackView(TensorView(after.data(), dtype, pshape, pstrides), check.data());
    CHECK(check == reversed);
  }
}

TEST_CASE("pinned buffers grow and are usable", "[cuda]") {
  PinnedBuffer p;
  REQUIRE_OK(p.Reserve(1 << 20));
  CHECK(p.capacity() >= (1u << 20));
  std::memset(p.data(), 3, 1 << 20);
  REQUIRE_OK(p.Reserve(16));
  CHECK(p.capacity() >= (1u << 20));
}

}  // namespace
}  // namespace dcp::cuda
