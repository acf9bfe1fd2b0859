// Copyright (c) dcp authors.
//
// A store for the dcp-inspect library tests, written through dcp::Store by
// two in-process ranks, with the global values of every tensor kept here so
// that tests can check any region that inspect reads back.
//
// Step 5 (chunk_bytes 16 KiB):
//   layer.w  float32  (256, 64)  rows split over ranks 0|1, 64-row chunks of
//                                 16 KiB (each record a table block of its own)
//   emb      bfloat16 (32, 16)   columns split over ranks 0|1
//   bias     float16  (16)       rank 0 (rank 1 holds a replica)
//   counts   int64    (3, 4, 5)  axis 1 split over ranks 0|1
//   scalar   float64  ()         rank 0
//   mask     bool     (10)       rank 1, values i % 3 == 0
//   f8       float8_e4m3 (8, 8)  rank 0
//   stats    float32  (12)       rank 1: 0, 1, ..., 9, NaN, +Inf
//   object   rng (grid of 2, one cell per rank); common state: iteration 5,
//            args {lr 0.001, name "gpt"}, blob (bytes), t (int32 tensor (2, 2))
// Step 7: as step 5 but layer.w rows 0-3 changed (every element), bias
//   removed, counts now (3, 4, 6), added int32 (5) new, rng cell 0 changed,
//   iteration 7. Unchanged chunks are referenced from step 5 (incremental).
// Step 9: step 7's values saved with chunk_bytes 8 KiB (other chunk boxes).
//
// Other tensors' values are testing::FillRegion bits (NaNs included).

#ifndef DCP_TESTS_ENGINE_INSPECT_INSPECT_FIXTURE_H_
#define DCP_TESTS_ENGINE_INSPECT_INSPECT_FIXTURE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "dcp/types.h"
#include "engine/inspect/reader.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/tensor_fill.h"

namespace dcp::inspect {

class InspectFixture {
 public:
  InspectFixture();

  const std::string& root() const { return dir_.path(); }
  std::string Sub(const std::string& name) const { return dir_.Sub(name); }
  std::unique_ptr<StoreReader> Reader() const;

  // The global values of tensor `key` in `step` (row-major bytes).
  const std::string& Values(uint64_t step, const std::string& key) const;
  // The bytes of `box` of that tensor, row-major.
  std::string RegionBytes(uint64_t step, const std::string& key, const Box& box) const;
  DType dtype(uint64_t step, const std::string& key) const;
  const Shape& shape(uint64_t step, const std::string& key) const;
  // Tensor keys of a step, sorted.
  std::vector<std::string> Keys(uint64_t step) const;

 private:
  struct Tensor {
    DType dtype;
    Shape shape;
    std::string bytes;
  };
  void Save(uint64_t step, uint64_t chunk_bytes);

  testing::TempDir dir_;
  std::map<std::pair<uint64_t, std::string>, Tensor> tensors_;
};

// Damages one record on disk: finds the table file of `rank`'s store that
// holds `record_key` (a storage::ChunkRecordKey) and flips one byte `delta`
// bytes into the value that follows it. Returns the file's path (empty if
// the key was not found).
std::string CorruptStoredRecord(const std::string& root, uint32_t rank, const std::string& record_key, size_t delta);

}  // namespace dcp::inspect

#endif  // DCP_TESTS_ENGINE_INSPECT_INSPECT_FIXTURE_H_
