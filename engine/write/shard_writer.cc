// Copyright (c) dcp authors.

#include "engine/write/shard_writer.h"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

#include "engine/array/box.h"
#include "engine/array/strided_copy.h"
#include "engine/base/buffer.h"
#include "engine/base/fault_injection.h"
#include "engine/base/thread_pool.h"
#include "engine/codec/chunk_codec.h"
#include "engine/codec/frame.h"
#include "engine/cuda/device.h"
#include "engine/sharding/chunking.h"
#include "engine/store/key_layout.h"

namespace dcp::write {
namespace {

struct Job {
  std::string record_key;
  const ShardedTensor* tensor = nullptr;  // chunk job
  Box chunk;                              // global coordinates
  TensorView source;                      // the chunk's elements (unless read)
  const BoxReader* read = nullptr;        // or where to read them from
  const ShardedObject* object = nullptr;  // object job
  const manifest::RecordRef* base = nullptr;  // the base step's record of the same box, if any
};

// What encoding one job produced.
struct Output {
  base::Buffer record;
  codec::ChunkHeader header;
  // Set when `record` is only the header of a raw record whose payload is
  // these bytes of the caller's (which outlive the put): the writer joins
  // them, and the chunk is copied once instead of twice.
  const char* payload = nullptr;
  bool referenced = false;  // the bytes equal the base record: nothing to write
  bool unusable = false;    // ... but that record is missing or damaged: written
};

// Per-task scratch, reused from job to job.
struct Scratch {
  base::Buffer staging;
  cuda::PinnedBuffer pinned;  // device chunks land here first
  cuda::Stream stream;
  codec::ChunkEncoder encoder;
};

// A run of neighbouring jobs (in record key order) encoded by one task. Small
// records go many to a batch, so that handing a task to a thread and back
// costs little against its work; a large record is a batch of its own.
struct Batch {
  size_t begin = 0, end = 0;  // jobs [begin, end)
  Scratch scratch;
  std::vector<Output> outputs;  // one per job, reused with the batch
  Status status;                // the first failure; later jobs are not encoded
  bool ready = false;
};

// A batch closes at kBatchBytes of raw bytes or kBatchJobs jobs.
constexpr uint64_t kBatchBytes = 1 << 20;
constexpr size_t kBatchJobs = 256;

// The record key of the base record `job` matches.
std::string BaseRecordKey(const Job& job) {
  return job.object != nullptr ? storage::ObjectRecordKey(job.base->generation, job.object->unique_key())
                               : storage::ChunkRecordKey(job.base->generation, job.tensor->key, job.chunk.origin);
}

// True (and the slot marked) if `raw` equals the base record by content hash
// and that record may be referenced.
bool MatchesBase(const Job& job, const WriteRequest& request, const void* raw, size_t size, Output* out,
                 codec::Hash128* hash) {
  *hash = codec::ContentHash128(raw, size);
  const bool equal = job.base != nullptr && job.base->raw_size == size && job.base->checksum == *hash;
  out->referenced = equal && (!request.reference_ok || request.reference_ok(*job.base, BaseRecordKey(job)));
  out->unusable = equal && !out->referenced;
  return out->referenced;
}

Status Encode(const Job& job, const WriteRequest& request, const SaveOptions& options, Scratch* slot,
              Output* out) {
  codec::Hash128 hash;
  out->payload = nullptr;
  if (job.object != nullptr) {
    const std::string& d = job.object->data;
    if (MatchesBase(job, request, d.data(), d.size(), out, &hash)) return Status::OK();
    out->header = slot->encoder.EncodeHeaderIfRaw(d.data(), d.size(), 1, options.compression, &out->record, &hash);
    out->payload = out->header.codec == codec::ChunkCodec::kRaw ? d.data() : nullptr;
    return Status::OK();
  }
  const TensorView& src = job.source;
  const void* raw = src.data();
  if (job.read != nullptr) {
    slot->staging.Resize(src.size_bytes());
    DCP_RETURN_IF_ERROR((*job.read)(job.chunk, slot->staging.data())
                            .Annotate("tensor '" + job.tensor->key + "' chunk at offset " +
                                      ShapeToString(job.chunk.origin)));
    raw = slot->staging.data();
  } else if (!src.device().is_host()) {
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
  if (MatchesBase(job, request, raw, src.size_bytes(), out, &hash)) return Status::OK();
  // Byte planes only pay for floating-point values (shared sign/exponent
  // bytes); a complex number's planes are those of its two float parts.
  Compression compression = options.compression;
  const bool floating = IsFloatingPoint(src.dtype()), complex = IsComplex(src.dtype());
  if (compression == Compression::kLz4BytePlane && !floating && !complex) compression = Compression::kLz4;
  // The caller's own bytes stay put until the writer has them; this slot's
  // staging is overwritten by the batch's next job.
  const bool in_place = raw == src.data();
  const size_t size = src.size_bytes();
  const size_t elem = DTypeSize(src.dtype()) / (complex ? 2 : 1);
  out->header = in_place ? slot->encoder.EncodeHeaderIfRaw(raw, size, elem, compression, &out->record, &hash)
                         : slot->encoder.Encode(raw, size, elem, compression, &out->record, &hash);
  out->payload = in_place && out->header.codec == codec::ChunkCodec::kRaw ? static_cast<const char*>(raw) : nullptr;
  return Status::OK();
}

// Splits jobs [0, n) into batches (see Batch).
std::vector<std::pair<size_t, size_t>> BatchRanges(const std::vector<Job>& jobs) {
  std::vector<std::pair<size_t, size_t>> ranges;
  size_t begin = 0;
  uint64_t bytes = 0;
  for (size_t i = 0; i < jobs.size(); ++i) {
    bytes += jobs[i].object != nullptr ? jobs[i].object->data.size() : jobs[i].source.size_bytes();
    if (bytes >= kBatchBytes || i + 1 - begin >= kBatchJobs || i + 1 == jobs.size()) {
      ranges.emplace_back(begin, i + 1);
      begin = i + 1;
      bytes = 0;
    }
  }
  return ranges;
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

// The base step's chunks of each tensor, by origin.
class BaseIndex {
 public:
  explicit BaseIndex(const manifest::StepManifest* base) : base_(base) {}

  const manifest::RecordRef* Find(const ShardedTensor& t, const Box& chunk) {
    if (base_ == nullptr) return nullptr;
    auto it = by_key_.find(t.key);
    if (it == by_key_.end()) {
      std::map<Shape, const manifest::ChunkEntry*> origins;
      const manifest::TensorEntry* e = base_->FindTensor(t.key);
      if (e != nullptr && e->dtype == t.dtype && e->global_shape == t.global_shape) {
        for (const auto& c : e->chunks) origins.emplace(c.box.origin, &c);
      }
      it = by_key_.emplace(t.key, std::move(origins)).first;
    }
    auto c = it->second.find(chunk.origin);
    return c != it->second.end() && c->second->box.shape == chunk.shape ? &c->second->record : nullptr;
  }

  const manifest::RecordRef* Find(const ShardedObject& o) {
    if (base_ == nullptr) return nullptr;
    const manifest::ObjectEntry* e = base_->FindObject(o.unique_key());
    return e != nullptr ? &e->record : nullptr;
  }

 private:
  const manifest::StepManifest* base_;
  std::map<std::string, std::map<Shape, const manifest::ChunkEntry*>> by_key_;
};

}  // namespace

void WriteRequest::AddTensor(const ShardedTensor& t) {
  for (sharding::Piece& p : sharding::PiecesOf(t)) tensors.push_back({.tensor = &t, .piece = std::move(p), .read = {}});
}

Status WriteShards(storage::RankStore* store, const WriteRequest& request, const SaveOptions& options,
                   manifest::StepManifest* fragment, WriteStats* stats, base::ThreadPool* shared_pool) {
  const uint32_t rank = store->rank();
  const uint64_t generation = request.generation;
  if (options.chunk_bytes < 1 || options.chunk_bytes > codec::kMaxChunkRawSize) {
    return Status::InvalidArgument("chunk_bytes " + std::to_string(options.chunk_bytes) + " is outside [1, " +
                                   std::to_string(codec::kMaxChunkRawSize) + "]");
  }
  BaseIndex base(request.base);
  std::vector<Job> jobs;
  for (const TensorPiece& p : request.tensors) {
    const ShardedTensor* t = p.tensor;
    for (Box& c : sharding::ChunkBox(p.piece.box, DTypeSize(t->dtype),
                                     std::max<uint64_t>(options.chunk_bytes, DTypeSize(t->dtype)))) {
      Job j;
      j.record_key = storage::ChunkRecordKey(generation, t->key, c.origin);
      j.tensor = t;
      j.base = base.Find(*t, c);
      if (p.read) {
        j.read = &p.read;
        j.source = TensorView(static_cast<const void*>(nullptr), t->dtype, c.shape);  // only its dtype and size are used
      } else {
        j.source = p.piece.data.Slice(array::RelativeTo(c, p.piece.box.origin));
      }
      j.chunk = std::move(c);
      jobs.push_back(std::move(j));
    }
  }
  for (const ShardedObject* o : request.objects) {
    Job j;
    j.record_key = storage::ObjectRecordKey(generation, o->unique_key());
    j.object = o;
    j.base = base.Find(*o);
    jobs.push_back(std::move(j));
  }
  std::sort(jobs.begin(), jobs.end(), [](const Job& a, const Job& b) { return a.record_key < b.record_key; });

  DCP_ASSIGN_OR_RETURN(auto writer, store->NewBulkWriter(storage::PutIngestName(generation, request.part)));
  std::unique_ptr<base::ThreadPool> own_pool;
  base::ThreadPool& pool =
      *base::SharedOrOwn(shared_pool, base::ResolveThreadCount(options.encode_threads), &own_pool);
  const int threads = pool.size();
  const size_t slots_wanted = request.max_in_flight > 0 ? static_cast<size_t>(request.max_in_flight)
                                                         : static_cast<size_t>(2 * threads + 1);
  const std::vector<std::pair<size_t, size_t>> ranges = BatchRanges(jobs);
  const size_t ring = std::min(ranges.size(), slots_wanted);
  std::vector<Batch> batches(ring);
  std::mutex mu;
  std::condition_variable cv;
  auto launch = [&](size_t b) {
    Batch* batch = &batches[b % ring];
    batch->begin = ranges[b].first;
    batch->end = ranges[b].second;
    batch->ready = false;
    if (batch->outputs.size() < batch->end - batch->begin) batch->outputs.resize(batch->end - batch->begin);
    pool.Schedule([&, batch] {
      Status s;
      for (size_t i = batch->begin; i < batch->end && s.ok(); ++i) {
        s = Encode(jobs[i], request, options, &batch->scratch, &batch->outputs[i - batch->begin]);
      }
      std::lock_guard<std::mutex> lock(mu);
      batch->status = std::move(s);
      batch->ready = true;
      cv.notify_all();
    });
  };
  for (size_t b = 0; b < ring; ++b) launch(b);

  std::map<std::string, manifest::TensorEntry> by_key;
  base::Buffer joined;       // header + payload of a record encoded in place (Output::payload)
  std::string written_keys;  // the generation index: one record key per line
  Status status;
  size_t launched = ring;
  for (size_t b = 0; b < launched; ++b) {  // after a failure, waits for what was launched
    Batch& batch = batches[b % ring];
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return batch.ready; });
    }
    if (status.ok()) status = batch.status;
    for (size_t i = batch.begin; i < batch.end && status.ok(); ++i) {
      const Output& out = batch.outputs[i - batch.begin];
      const Job& j = jobs[i];
      if (!out.referenced) {
        std::string_view record = out.record.view();
        if (out.payload != nullptr) {
          joined.Resize(out.header.record_size());
          std::memcpy(joined.data(), out.record.data(), codec::kChunkHeaderSize);
          std::memcpy(joined.data() + codec::kChunkHeaderSize, out.payload, out.header.payload_size);
          record = joined.view();
        }
        status = writer->Add(j.record_key, record);
        if (!status.ok()) break;
        written_keys += j.record_key;
        written_keys += '\n';
      }
      const manifest::RecordRef ref = out.referenced ? *j.base : RefOf(out.header, rank, generation);
      if (out.unusable) ++stats->base_records_unusable;
      if (out.referenced) {
        ++stats->chunks_referenced;
        stats->raw_bytes_referenced += ref.raw_size;
      } else if (j.object != nullptr) {
        ++stats->objects;
      } else {
        ++stats->chunks;
      }
      if (!out.referenced) {
        stats->raw_bytes += ref.raw_size;
        stats->stored_bytes += ref.stored_size;
      }
      if (j.object != nullptr) {
        fragment->objects.push_back({j.object->key, j.object->global_shape, j.object->global_offset, ref});
      } else {
        manifest::TensorEntry& e = by_key[j.tensor->key];
        if (e.key.empty()) {
          e.key = j.tensor->key;
          e.dtype = j.tensor->dtype;
          e.global_shape = j.tensor->global_shape;
        }
        e.chunks.push_back({j.chunk, ref});
      }
    }
    if (status.ok() && launched < ranges.size()) launch(launched++);
  }
  // Every launched batch has been waited for above.
  DCP_RETURN_IF_ERROR(status);
  if (!written_keys.empty()) {
    DCP_RETURN_IF_ERROR(writer->Add(storage::GenerationIndexKey(generation, request.part),
                                    codec::FrameBlob(storage::kGenerationIndexMagic, 1, written_keys)));
  }
  DCP_RETURN_IF_ERROR(base::CheckFaultPoint("put.before_ingest", static_cast<int>(rank)));
  DCP_RETURN_IF_ERROR(writer->Commit());
  DCP_RETURN_IF_ERROR(base::CheckFaultPoint("put.after_ingest", static_cast<int>(rank)));
  // Merge into the fragment (a streaming session calls this once per part;
  // a key may recur across parts).
  std::unordered_map<std::string, size_t> existing;
  existing.reserve(fragment->tensors.size());
  for (size_t i = 0; i < fragment->tensors.size(); ++i) existing.emplace(fragment->tensors[i].key, i);
  for (auto& [key, e] : by_key) {
    auto it = existing.find(key);
    if (it == existing.end()) {
      fragment->tensors.push_back(std::move(e));
    } else {
      auto& chunks = fragment->tensors[it->second].chunks;
      chunks.insert(chunks.end(), e.chunks.begin(), e.chunks.end());
    }
  }
  fragment->Canonicalize();
  return Status::OK();
}

}  // namespace dcp::write
