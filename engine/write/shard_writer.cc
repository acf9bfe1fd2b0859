// Copyright (c) dcp authors.

#include "engine/write/shard_writer.h"

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>

#include "engine/array/box.h"
#include "engine/array/strided_copy.h"
#include "engine/base/buffer.h"
#include "engine/base/fault_injection.h"
#include "engine/base/thread_pool.h"
#include "engine/codec/chunk_codec.h"
#include "engine/cuda/device.h"
#include "engine/sharding/chunking.h"
#include "engine/store/key_layout.h"

namespace dcp::write {
namespace {

struct Job {
  std::string record_key;
  const ShardedTensor* tensor = nullptr;  // chunk job
  Box chunk;                              // global coordinates
  const ShardedObject* object = nullptr;  // object job
};

// The local view of `chunk` (global coordinates) within shard `t`.
TensorView ChunkSource(const ShardedTensor& t, const Box& chunk) {
  const size_t p = static_cast<size_t>(t.prepend_axis_num);
  Box local;
  local.origin.assign(chunk.origin.begin() + static_cast<std::ptrdiff_t>(p), chunk.origin.end());
  local.shape.assign(chunk.shape.begin() + static_cast<std::ptrdiff_t>(p), chunk.shape.end());
  for (size_t i = 0; i < local.origin.size(); ++i) local.origin[i] -= t.global_offset[p + i];
  return t.data.Slice(local);
}

struct Slot {
  base::Buffer staging;
  cuda::PinnedBuffer pinned;  // device chunks land here first
  cuda::Stream stream;
  base::Buffer record;
  codec::ChunkEncoder encoder;
  codec::ChunkHeader header;
  Status status;
  bool ready = false;
};

Status Encode(const Job& job, const SaveOptions& options, Slot* slot) {
  if (job.object != nullptr) {
    const std::string& d = job.object->data;
    slot->header = slot->encoder.Encode(d.data(), d.size(), 1, options.compression, &slot->record);
    return Status::OK();
  }
  const TensorView src = ChunkSource(*job.tensor, job.chunk);
  const void* raw = src.data();
  if (!src.device().is_host()) {
    // Device -> pinned host on this slot's stream; other slots encode meanwhile.
    DCP_RETURN_IF_ERROR(slot->pinned.Reserve(src.size_bytes()));
    DCP_RETURN_IF_ERROR(cuda::CopyToHost(src, slot->pinned.data(), &slot->stream)
                            .Annotate("tensor '" + job.tensor->key + "' chunk at offset " +
                                      ShapeToString(job.chunk.origin)));
    raw = slot->pinned.data();
  } else if (!src.is_contiguous()) {
    slot->staging.Resize(src.size_bytes());
    array::PackView(src, slot->staging.data());
    raw = slot->staging.data();
  }
  // Byte planes only pay for floating-point values (shared sign/exponent bytes).
  Compression compression = options.compression;
  if (compression == Compression::kLz4BytePlane && !IsFloatingPoint(src.dtype())) compression = Compression::kLz4;
  slot->header = slot->encoder.Encode(raw, src.size_bytes(), DTypeSize(src.dtype()), compression, &slot->record);
  return Status::OK();
}

manifest::RecordRef RefOf(const codec::ChunkHeader& h, uint32_t rank, uint64_t generation) {
  manifest::RecordRef r;
  r.store_rank = rank;
  r.generation = generation;
  r.raw_size = h.raw_size;
  r.stored_size = h.record_size();
  r.checksum = h.checksum;
  r.codec = h.codec;
  return r;
}

}  // namespace

Status WriteShards(storage::RankStore* store, uint64_t generation, const std::vector<const ShardedTensor*>& tensors,
                   const std::vector<const ShardedObject*>& objects, const SaveOptions& options,
                   manifest::StepManifest* fragment, WriteStats* stats) {
  const uint32_t rank = store->rank();
  if (options.chunk_bytes < 1 || options.chunk_bytes > codec::kMaxChunkRawSize) {
    return Status::InvalidArgument("chunk_bytes " + std::to_string(options.chunk_bytes) + " is outside [1, " +
                                   std::to_string(codec::kMaxChunkRawSize) + "]");
  }
  std::vector<Job> jobs;
  for (const ShardedTensor* t : tensors) {
    for (Box& c : sharding::ChunkBox(t->global_box(), DTypeSize(t->dtype),
                                     std::max<uint64_t>(options.chunk_bytes, DTypeSize(t->dtype)))) {
      Job j;
      j.record_key = storage::ChunkRecordKey(generation, t->key, c.origin);
      j.tensor = t;
      j.chunk = std::move(c);
      jobs.push_back(std::move(j));
    }
  }
  for (const ShardedObject* o : objects) {
    Job j;
    j.record_key = storage::ObjectRecordKey(generation, o->unique_key());
    j.object = o;
    jobs.push_back(std::move(j));
  }
  std::sort(jobs.begin(), jobs.end(), [](const Job& a, const Job& b) { return a.record_key < b.record_key; });

  DCP_ASSIGN_OR_RETURN(auto writer, store->NewBulkWriter("put-" + std::to_string(generation)));
  const int threads = base::ResolveThreadCount(options.encode_threads);
  base::ThreadPool pool(threads);
  const size_t ring = std::min(jobs.size(), static_cast<size_t>(2 * threads + 1));
  std::vector<Slot> slots(ring);
  std::mutex mu;
  std::condition_variable cv;
  auto launch = [&](size_t i) {
    Slot* s = &slots[i % ring];
    s->ready = false;
    pool.Schedule([&, i, s] {
      s->status = Encode(jobs[i], options, s);
      std::lock_guard<std::mutex> lock(mu);
      s->ready = true;
      cv.notify_all();
    });
  };
  for (size_t i = 0; i < ring; ++i) launch(i);

  std::map<std::string, manifest::TensorEntry> by_key;
  Status status;
  size_t launched = ring;
  for (size_t i = 0; i < jobs.size(); ++i) {
    Slot& s = slots[i % ring];
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return s.ready; });
    }
    if (status.ok()) status = s.status;
    if (status.ok()) status = writer->Add(jobs[i].record_key, s.record.view());
    if (status.ok()) {
      const Job& j = jobs[i];
      const manifest::RecordRef ref = RefOf(s.header, rank, generation);
      if (j.object != nullptr) {
        fragment->objects.push_back({j.object->key, j.object->global_shape, j.object->global_offset, ref});
        ++stats->objects;
      } else {
        manifest::TensorEntry& e = by_key[j.tensor->key];
        if (e.key.empty()) {
          e.key = j.tensor->key;
          e.dtype = j.tensor->dtype;
          e.global_shape = j.tensor->global_shape;
        }
        e.chunks.push_back({j.chunk, ref});
        ++stats->chunks;
      }
      stats->raw_bytes += ref.raw_size;
      stats->stored_bytes += ref.stored_size;
    }
    if (status.ok() && launched < jobs.size()) launch(launched++);
  }
  // Every launched encode has been waited for above; the pool drains on exit.
  DCP_RETURN_IF_ERROR(status);
  DCP_RETURN_IF_ERROR(base::CheckFaultPoint("put.before_ingest", static_cast<int>(rank)));
  DCP_RETURN_IF_ERROR(writer->Commit());
  for (auto& [key, e] : by_key) fragment->tensors.push_back(std::move(e));
  fragment->Canonicalize();
  return Status::OK();
}

}  // namespace dcp::write
