// Copyright (c) dcp authors.

#include "engine/interop/import.h"

#include <chrono>
#include <map>
#include <memory>
#include <vector>

#include "dcp/communicator.h"
#include "engine/base/file.h"
#include "engine/interop/safetensors.h"
#include "engine/protocol/put.h"
#include "engine/protocol/store_context.h"
#include "engine/store/catalog.h"

namespace dcp::interop {
namespace {

// Where a source tensor's bytes are.
struct Source {
  const base::RandomAccessFile* file = nullptr;
  uint64_t offset = 0;
  Shape shape;
};

// Copies box `src_box` of a row-major array of `src_shape` stored at
// `offset` in `file` into `dst`, a row-major array of `dst_shape`, at
// `dst_at`: one pread per run of elements contiguous in both.
Status ReadBox(const base::RandomAccessFile& file, uint64_t offset, const Shape& src_shape, const Box& src_box,
               size_t elem, char* dst, const Shape& dst_shape, const Shape& dst_at) {
  const int rank = static_cast<int>(src_shape.size());
  if (rank == 0) return file.Read(offset, elem, dst);
  for (int64_t n : src_box.shape) {
    if (n == 0) return Status::OK();
  }
  // The run: axes j..rank-1, every axis after j whole in both arrays.
  int j = rank - 1;
  uint64_t run = static_cast<uint64_t>(src_box.shape[j]);
  while (j > 0 && src_box.shape[j] == src_shape[j] && src_box.shape[j] == dst_shape[j]) {
    --j;
    run *= static_cast<uint64_t>(src_box.shape[j]);
  }
  std::vector<uint64_t> src_stride(rank, 1), dst_stride(rank, 1);
  for (int i = rank - 2; i >= 0; --i) {
    src_stride[i] = src_stride[i + 1] * static_cast<uint64_t>(src_shape[i + 1]);
    dst_stride[i] = dst_stride[i + 1] * static_cast<uint64_t>(dst_shape[i + 1]);
  }
  std::vector<int64_t> idx(static_cast<size_t>(j), 0);  // over axes 0..j-1
  while (true) {
    uint64_t s = static_cast<uint64_t>(src_box.origin[j]) * src_stride[j];
    uint64_t d = static_cast<uint64_t>(dst_at[j]) * dst_stride[j];
    for (int i = 0; i < j; ++i) {
      s += static_cast<uint64_t>(src_box.origin[i] + idx[i]) * src_stride[i];
      d += static_cast<uint64_t>(dst_at[i] + idx[i]) * dst_stride[i];
    }
    DCP_RETURN_IF_ERROR(file.Read(offset + s * elem, run * elem, dst + d * elem));
    int i = j - 1;
    while (i >= 0 && ++idx[i] == src_box.shape[i]) idx[i--] = 0;
    if (i < 0) return Status::OK();
  }
}

// Fills `dst` (the row-major elements of `box` of destination `d`) from the
// slices of `d`'s sources that overlap it.
Status ReadDestinationBox(const Destination& d, const std::vector<Source>& sources, const Box& box, void* dst) {
  const size_t elem = DTypeSize(d.dtype);
  char* out = static_cast<char*>(dst);
  if (d.shape.empty()) {
    const Source& s = sources[d.slices[0].source];
    return s.file->Read(s.offset, elem, out);
  }
  const int a = d.axis;
  for (const Destination::Slice& slice : d.slices) {
    const int64_t lo = std::max(box.origin[a], slice.dest_begin);
    const int64_t hi = std::min(box.origin[a] + box.shape[a], slice.dest_begin + slice.length);
    if (lo >= hi) continue;
    const Source& s = sources[slice.source];
    Box src_box = box;
    src_box.origin[a] = lo - slice.dest_begin + slice.source_begin;
    src_box.shape[a] = hi - lo;
    Shape at(box.shape.size(), 0);
    at[a] = lo - box.origin[a];
    DCP_RETURN_IF_ERROR(ReadBox(*s.file, s.offset, s.shape, src_box, elem, out, box.shape, at));
  }
  return Status::OK();
}

}  // namespace

Result<ImportReport> ImportSafetensors(const std::string& root, const std::string& source,
                                       const ImportOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  ImportReport report;

  // The files and their headers (all checked before the store is touched).
  std::vector<std::string> paths;
  std::map<std::string, std::string> weight_map;  // sharded: tensor -> file name
  const bool sharded = source.size() >= 5 && source.compare(source.size() - 5, 5, ".json") == 0;
  std::string dir;
  if (sharded) {
    DCP_ASSIGN_OR_RETURN(SafetensorsIndex index, ReadSafetensorsIndex(source));
    const size_t slash = source.rfind('/');
    dir = slash == std::string::npos ? "." : source.substr(0, slash);
    for (const std::string& f : index.files) paths.push_back(base::JoinPath(dir, f));
    weight_map = std::move(index.weight_map);
  } else {
    paths.push_back(source);
  }
  std::vector<std::unique_ptr<base::RandomAccessFile>> files;
  std::vector<SourceTensor> source_tensors;
  std::vector<Source> sources;
  std::map<std::string, std::string> metadata;
  std::map<std::string, std::string> found;  // tensor -> the file it was found in
  for (const std::string& path : paths) {
    DCP_ASSIGN_OR_RETURN(auto file, base::RandomAccessFile::Open(path));
    DCP_ASSIGN_OR_RETURN(SafetensorsFile header, ReadSafetensorsHeader(*file));
    for (const auto& [k, v] : header.metadata) metadata.emplace(k, v);  // the first file's value wins
    for (SafetensorsTensor& t : header.tensors) {
      if (sharded) {
        auto it = weight_map.find(t.name);
        const std::string name = path.substr(path.rfind('/') + 1);
        if (it == weight_map.end() || it->second != name) {
          return Status::DataLoss("safetensors file '" + path + "' holds tensor '" + t.name + "', which index '" +
                                  source + "' places " +
                                  (it == weight_map.end() ? std::string("nowhere") : "in '" + it->second + "'"));
        }
      }
      if (!found.emplace(t.name, path).second) {
        return Status::DataLoss("tensor '" + t.name + "' is in both '" + found[t.name] + "' and '" + path + "'");
      }
      source_tensors.push_back({t.name, t.dtype, t.shape});
      sources.push_back({file.get(), t.offset, t.shape});
    }
    files.push_back(std::move(file));
  }
  for (const auto& [name, file] : weight_map) {
    if (!found.count(name)) {
      return Status::DataLoss("index '" + source + "' places tensor '" + name + "' in '" + file +
                              "', which does not hold it");
    }
  }
  report.files = files.size();
  report.source_tensors = source_tensors.size();

  KeyMapping identity;
  const KeyMapping& mapping = options.mapping != nullptr ? *options.mapping : identity;
  DCP_ASSIGN_OR_RETURN(std::vector<Destination> destinations,
                       mapping.Apply(source_tensors, options.mapping == nullptr || options.keep_unmatched));
  if (destinations.empty()) return Status::InvalidArgument("'" + source + "' holds no tensor to import");

  // The step, as any one-process put.
  std::unique_ptr<Communicator> self = NewSelfCommunicator();
  StoreOptions store_options;
  store_options.create_if_missing = options.create_if_missing;
  DCP_ASSIGN_OR_RETURN(auto store, protocol::OpenStore(self.get(), root, store_options));
  uint64_t step = 0;
  if (options.step) {
    step = *options.step;
  } else {
    DCP_ASSIGN_OR_RETURN(std::optional<uint64_t> latest, storage::LatestStep(root));
    step = latest ? *latest + 1 : 0;
  }
  DCP_ASSIGN_OR_RETURN(auto session, protocol::BeginStep(self.get(), store.get(), step, options.save, Status::OK(), "Import"));

  std::vector<ShardedTensor> tensors(destinations.size());  // outlive the request
  std::vector<manifest::TensorEntry> entries;
  write::WriteRequest request;
  request.max_in_flight = std::max(1, options.chunks_in_flight);
  for (size_t i = 0; i < destinations.size(); ++i) {
    const Destination& d = destinations[i];
    ShardedTensor& t = tensors[i];
    t.key = d.name;
    t.dtype = d.dtype;
    t.local_shape = d.shape;
    t.global_shape = d.shape;
    t.global_offset = Shape(d.shape.size(), 0);
    manifest::TensorEntry e;
    e.key = d.name;
    e.dtype = d.dtype;
    e.global_shape = d.shape;
    entries.push_back(std::move(e));
    report.data_bytes += static_cast<uint64_t>(NumElements(d.shape)) * DTypeSize(d.dtype);
    if (NumElements(d.shape) == 0) continue;  // declared, no chunk
    write::TensorPiece piece;
    piece.tensor = &t;
    piece.piece.box = Box{t.global_offset, d.shape};
    piece.read = [&d, &sources](const Box& box, void* dst) { return ReadDestinationBox(d, sources, box, dst); };
    request.tensors.push_back(std::move(piece));
  }
  Value common = Value::Map();
  if (!metadata.empty()) {
    Value meta = Value::Map();
    for (const auto& [k, v] : metadata) meta.Set(k, Value(v));
    common.Set("safetensors_metadata", std::move(meta));
  }
  report.tensors = destinations.size();
  DCP_RETURN_IF_ERROR(protocol::WriteLocalPart(store.get(), session.get(), std::move(entries), std::move(request),
                                               common, nullptr)
                          .Annotate("import of '" + source + "'"));
  DCP_RETURN_IF_ERROR(protocol::Commit(store.get(), std::move(session), Status::OK(), &report.save)
                          .Annotate("import of '" + source + "'"));
  report.step = step;
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

}  // namespace dcp::interop
