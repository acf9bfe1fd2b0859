// Copyright (c) dcp authors.

#include "tests/api/shard_layouts.h"

#include <algorithm>
#include <cstring>

namespace dcp::testing {

std::vector<int64_t> UnevenBounds(int64_t n, int parts) {
  std::vector<int64_t> b(static_cast<size_t>(parts) + 1);
  for (int k = 0; k <= parts; ++k) {
    int64_t x = n * k / parts;
    if (k > 0 && k < parts) x += (k % 2 == 1) ? 1 : -1;
    b[static_cast<size_t>(k)] = std::clamp<int64_t>(x, k > 0 ? b[static_cast<size_t>(k) - 1] : 0, n);
  }
  b.back() = n;
  return b;
}

std::vector<Placement> GridPlacements(const Shape& global, const Shape& fragments, int dp, int rank, int ranks) {
  const int groups = dp > 0 ? ranks / dp : ranks;
  const int group = dp > 0 ? rank / dp : rank;
  const int slice = dp > 0 ? rank % dp : 0;
  Shape box_shape(global.size());
  int64_t boxes = 1;
  for (size_t a = 0; a < global.size(); ++a) {
    box_shape[a] = global[a] / fragments[a];
    boxes *= fragments[a];
  }
  std::vector<Placement> out;
  for (int64_t i = 0; i < boxes; ++i) {
    if (i % groups != group) continue;
    Placement p;
    p.box.shape = box_shape;
    p.box.origin.assign(global.size(), 0);
    int64_t rest = i;
    for (size_t a = global.size(); a-- > 0;) {
      p.box.origin[a] = (rest % fragments[a]) * box_shape[a];
      rest /= fragments[a];
    }
    if (dp > 0) {
      const std::vector<int64_t> b = UnevenBounds(p.box.num_elements(), dp);
      p.range = FlatRange{b[static_cast<size_t>(slice)], b[static_cast<size_t>(slice) + 1]};
    }
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<Placement> SplitPlacements(const std::vector<std::vector<int64_t>>& sizes, int rank) {
  std::vector<Placement> out;
  int64_t at = 0;
  for (size_t r = 0; r < sizes.size(); ++r) {
    for (int64_t n : sizes[r]) {
      if (static_cast<int>(r) == rank) out.push_back({Box{{at}, {n}}, std::nullopt, {}});
      at += n;
    }
  }
  return out;
}

std::string ExpectedBytes(const std::string& key, DType dtype, const Shape& global, const Box& box,
                          const std::optional<FlatRange>& range) {
  HostTensor whole(dtype, box.shape);
  FillRegion(key, global, box, whole.view());
  if (!range) return whole.bytes();
  const size_t elem = DTypeSize(dtype);
  return whole.bytes().substr(static_cast<size_t>(range->begin) * elem, static_cast<size_t>(range->size()) * elem);
}

void RankShards::Add(const std::string& path, const std::string& key, DType dtype, const Shape& global, int prepend,
                     const Placement& p, bool fill) {
  const Shape local(p.box.shape.begin() + prepend, p.box.shape.end());
  HostTensor& buf = buffers_.emplace_back(dtype, p.range ? Shape{p.range->size()} : local);
  if (fill) {
    const std::string bytes = ExpectedBytes(key, dtype, global, p.box, p.range);
    std::memcpy(buf.bytes().data(), bytes.data(), bytes.size());
  } else {
    std::memset(buf.bytes().data(), 0xA5, buf.bytes().size());
  }
  ShardedTensor t;
  t.key = key;
  t.dtype = dtype;
  t.data = buf.view();
  t.local_shape = local;
  t.global_shape = global;
  t.global_offset = p.box.origin;
  t.prepend_axis_num = prepend;
  t.replica_id = p.replica;
  t.flattened_range = p.range;
  dict_.Add(path, std::move(t));
  entries_.push_back({path, key, global, p, &buf});
}

std::string RankShards::Verify() const {
  for (const Entry& e : entries_) {
    const std::string expected =
        ExpectedBytes(e.key, e.buffer->view().dtype(), e.global, e.placement.box, e.placement.range);
    if (e.buffer->bytes() != expected) {
      std::string what = "'" + e.path + "' (key '" + e.key + "', box " + e.placement.box.ToString();
      if (e.placement.range) {
        what += ", range [" + std::to_string(e.placement.range->begin) + ", " +
                std::to_string(e.placement.range->end) + ")";
      }
      return what + ") does not hold the saved values";
    }
  }
  return "";
}

}  // namespace dcp::testing
