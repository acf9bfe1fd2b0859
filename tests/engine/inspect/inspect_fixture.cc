// Copyright (c) dcp authors.

#include "tests/engine/inspect/inspect_fixture.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "dcp/store.h"
#include "engine/array/strided_copy.h"
#include "engine/base/file.h"
#include "engine/store/key_layout.h"
#include "tests/testing/rank_runner.h"
#include "tests/testing/status_matchers.h"

namespace dcp::inspect {
namespace {

struct Placement {
  Box box;
  ReplicaId replica;
};

// Which part of tensor `key` rank `rank` holds.
std::vector<Placement> Shards(const std::string& key, const Shape& shape, int rank) {
  auto split = [&](size_t axis) {
    Box b{Shape(shape.size(), 0), shape};
    b.shape[axis] = shape[axis] / 2;
    b.origin[axis] = rank * b.shape[axis];
    return std::vector<Placement>{{b, {}}};
  };
  const Box whole{Shape(shape.size(), 0), shape};
  if (key == "layer.w") return split(0);
  if (key == "emb" || key == "counts") return split(1);
  if (key == "bias") return {{whole, {rank}}};
  const bool on_rank0 = key == "scalar" || key == "f8" || key == "new";
  return (rank == 0) == on_rank0 ? std::vector<Placement>{{whole, {}}} : std::vector<Placement>{};
}

}  // namespace

InspectFixture::InspectFixture() {
  auto add = [&](uint64_t step, const std::string& key, DType dtype, Shape shape) -> std::string& {
    Tensor& t = tensors_[{step, key}];
    t.dtype = dtype;
    t.shape = shape;
    t.bytes.assign(static_cast<size_t>(NumElements(shape)) * DTypeSize(dtype), '\0');
    testing::FillRegion(key, shape, Box{Shape(shape.size(), 0), shape}, TensorView(t.bytes.data(), dtype, shape));
    return t.bytes;
  };
  for (uint64_t step : {5, 7}) {
    std::string& w = add(step, "layer.w", DType::kFloat32, {256, 64});
    if (step == 7) {
      for (size_t i = 0; i < 4 * 64; ++i) w[i * 4] = static_cast<char>(w[i * 4] ^ 0xff);
    }
    add(step, "emb", DType::kBFloat16, {32, 16});
    if (step == 5) add(step, "bias", DType::kFloat16, {16});
    add(step, "counts", DType::kInt64, step == 5 ? Shape{3, 4, 5} : Shape{3, 4, 6});
    add(step, "scalar", DType::kFloat64, {});
    std::string& mask = add(step, "mask", DType::kBool, {10});
    for (size_t i = 0; i < 10; ++i) mask[i] = i % 3 == 0 ? 1 : 0;
    add(step, "f8", DType::kFloat8E4M3, {8, 8});
    std::string& stats = add(step, "stats", DType::kFloat32, {12});
    float values[12] = {
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()};
    std::memcpy(stats.data(), values, sizeof(values));
    if (step == 7) add(step, "new", DType::kInt32, {5});
  }
  for (const auto& [id, t] : std::map(tensors_)) {
    if (id.first == 7) tensors_[{9, id.second}] = t;
  }
  Save(5, 16 << 10);
  Save(7, 16 << 10);
  Save(9, 8 << 10);
}

void InspectFixture::Save(uint64_t step, uint64_t chunk_bytes) {
  std::vector<Status> statuses(2);
  testing::RunRanks(2, [&](int rank, Communicator* comm) {
    auto store = Store::Open(dir_.path(), comm);
    if (!store.ok()) {
      statuses[rank] = store.status();
      return;
    }
    StateDict sd;
    for (auto& [id, t] : tensors_) {
      if (id.first != step) continue;
      for (const Placement& p : Shards(id.second, t.shape, rank)) {
        ShardedTensor st;
        st.key = id.second;
        st.dtype = t.dtype;
        st.data = TensorView(t.bytes.data(), t.dtype, t.shape).Slice(p.box);
        st.local_shape = p.box.shape;
        st.global_shape = t.shape;
        st.global_offset = p.box.origin;
        st.replica_id = p.replica;
        sd.Add(id.second, st);
      }
    }
    ShardedObject o;
    o.key = "rng";
    o.data = "rng-of-rank-" + std::to_string(rank) + (step >= 7 && rank == 0 ? "-advanced" : "");
    o.global_shape = {2};
    o.global_offset = {rank};
    sd.Add("rng", o);
    sd.Add("iteration", Value(static_cast<int64_t>(step)));
    Value args = Value::Map();
    args.Set("lr", Value(0.001));
    args.Set("name", Value("gpt"));
    sd.Add("args", args);
    sd.Add("blob", Value::Bytes(std::string("\x00\x01\xfe\xff", 4)));
    sd.Add("t",
           Value::Tensor(DType::kInt32, {2, 2}, std::string("\x01\0\0\0\x02\0\0\0\x03\0\0\0\xff\xff\xff\xff", 16)));
    SaveOptions opts;
    opts.chunk_bytes = chunk_bytes;
    statuses[rank] = (*store)->Put(step, sd, opts);
  });
  for (const Status& s : statuses) REQUIRE_OK(s);
}

std::unique_ptr<StoreReader> InspectFixture::Reader() const { return ValueOrDie(StoreReader::Open(root())); }

const std::string& InspectFixture::Values(uint64_t step, const std::string& key) const {
  return tensors_.at({step, key}).bytes;
}

DType InspectFixture::dtype(uint64_t step, const std::string& key) const { return tensors_.at({step, key}).dtype; }

const Shape& InspectFixture::shape(uint64_t step, const std::string& key) const {
  return tensors_.at({step, key}).shape;
}

std::string InspectFixture::RegionBytes(uint64_t step, const std::string& key, const Box& box) const {
  const Tensor& t = tensors_.at({step, key});
  std::string out(static_cast<size_t>(box.num_elements()) * DTypeSize(t.dtype), '\0');
  if (box.num_elements() == 0) return out;
  const TensorView src = TensorView(t.bytes.data(), t.dtype, t.shape).Slice(box);
  array::PackView(src, out.data());
  return out;
}

std::vector<std::string> InspectFixture::Keys(uint64_t step) const {
  std::vector<std::string> keys;
  for (const auto& [id, t] : tensors_) {
    if (id.first == step) keys.push_back(id.second);
  }
  return keys;
}

std::string CorruptStoredRecord(const std::string& root, uint32_t rank, const std::string& record_key, size_t delta) {
  const std::string dir = storage::RankStorePath(root, rank);
  auto names = base::ListDir(dir);
  if (!names.ok()) return "";
  for (const std::string& name : *names) {
    if (name.size() < 4 || name.substr(name.size() - 4) != ".sst") continue;
    const std::string path = base::JoinPath(dir, name);
    std::string bytes = ValueOrDie(base::ReadFile(path, uint64_t{1} << 30));
    // A record of 16 KiB or more starts a table block, with its whole key
    // right before the value (index blocks come after the data).
    const size_t pos = bytes.find(record_key);
    if (pos == std::string::npos || pos + record_key.size() + delta >= bytes.size()) continue;
    bytes[pos + record_key.size() + delta] ^= 0x5a;
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
    return path;
  }
  return "";
}

}  // namespace dcp::inspect
