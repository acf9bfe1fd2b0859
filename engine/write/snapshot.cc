// Copyright (c) dcp authors.

#include "engine/write/snapshot.h"

#include <algorithm>
#include <vector>

#include "engine/array/strided_copy.h"
#include "engine/base/thread_pool.h"
#include "engine/sharding/flatten.h"

namespace dcp::write {
namespace {

constexpr size_t kAlign = 64;
// Host copies larger than this are split along the outermost axis so that
// several threads share them.
constexpr uint64_t kSplitBytes = uint64_t{16} << 20;

// Never read: the placeholder data of non-main replicas (stride 0 views).
alignas(16) const char kPlaceholder[16] = {};

size_t AlignUp(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

}  // namespace

Status Snapshot::Take(const StateDict& state, int threads, base::ThreadPool* shared_pool) {
  copy_ = state;
  sharding::FlatRequest flat;
  DCP_RETURN_IF_ERROR(sharding::FlattenForLoad(&copy_, &flat));

  // Lay the main replicas out in the two arenas.
  struct Item {
    ShardedTensor* tensor;
    TensorView source;
    size_t offset;
  };
  std::vector<Item> host_items, device_items;
  size_t host_bytes = 0, device_bytes = 0;
  for (auto& leaf : flat.tensors) {
    ShardedTensor& t = *leaf.item;
    // Views keep the caller's shape (a flat shard's is 1-D, not local_shape).
    if (!t.is_main_replica()) {
      t.data = TensorView(kPlaceholder, t.dtype, t.data.shape(), Shape(t.data.shape().size(), 0));
      continue;
    }
    if (t.data.num_elements() == 0) {  // nothing to copy, and nothing of the caller's to keep
      t.data = TensorView(kPlaceholder, t.dtype, t.data.shape(), Shape(t.data.shape().size(), 0));
      continue;
    }
    if (t.data.device().is_host()) {
      host_items.push_back({&t, t.data, host_bytes});
      host_bytes += AlignUp(t.data.size_bytes());
    } else {
      device_items.push_back({&t, t.data, device_bytes});
      device_bytes += AlignUp(t.data.size_bytes());
    }
  }
  if (host_bytes > host_.capacity()) host_.Reserve(host_bytes);
  DCP_RETURN_IF_ERROR(pinned_.Reserve(device_bytes));

  // Device -> pinned host, one stream.
  copied_ = 0;
  cuda::Stream stream;
  for (Item& it : device_items) {
    DCP_RETURN_IF_ERROR(cuda::CopyToHost(it.source, pinned_.data() + it.offset, &stream)
                            .Annotate("snapshot of tensor '" + it.tensor->key + "'"));
    it.tensor->data = TensorView(pinned_.data() + it.offset, it.tensor->dtype, it.source.shape());
    copied_ += it.source.size_bytes();
  }

  // Host -> host, in pieces on a pool.
  std::unique_ptr<base::ThreadPool> own_pool;
  base::TaskGroup group(base::SharedOrOwn(shared_pool, base::ResolveThreadCount(threads), &own_pool));
  for (Item& it : host_items) {
    const TensorView& src = it.source;
    const TensorView dst(host_.data() + it.offset, src.dtype(), src.shape());
    const int64_t rows = src.rank() > 0 ? src.shape()[0] : 1;
    const uint64_t row_bytes = src.size_bytes() / static_cast<uint64_t>(std::max<int64_t>(rows, 1));
    const int64_t per_piece = std::max<int64_t>(1, static_cast<int64_t>(kSplitBytes / std::max<uint64_t>(row_bytes, 1)));
    if (src.rank() == 0 || rows <= per_piece) {
      group.Run([src, dst] {
        array::CopyView(src, dst);
        return Status::OK();
      });
    } else {
      for (int64_t r = 0; r < rows; r += per_piece) {
        Box piece{Shape(src.shape().size(), 0), src.shape()};
        piece.origin[0] = r;
        piece.shape[0] = std::min(per_piece, rows - r);
        group.Run([src, dst, piece] {
          array::CopyView(src.Slice(piece), dst.Slice(piece));
          return Status::OK();
        });
      }
    }
    it.tensor->data = dst;
    copied_ += src.size_bytes();
  }
  return group.Wait();
}

}  // namespace dcp::write
