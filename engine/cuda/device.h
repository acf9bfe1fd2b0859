// Copyright (c) dcp authors.
//
// CUDA device memory for the write and read paths: the one wrapper around the
// CUDA runtime (engine/cuda/device_cuda.cc; device_stub.cc when the build has
// no CUDA). cudaError_t is translated here; messages name the call and the
// device.
//
// Tensor views may point at device memory (Device::Cuda(i)). Saving copies a
// device chunk into pinned host memory on a CUDA stream (device -> host),
// then encodes it; loading decodes into pinned host memory and copies it to
// the device view (host -> device). Strided device views are copied as a few
// 2-D copies (contiguous axes merged first).
//
// Thread safety: free functions are thread-safe; a Stream or PinnedBuffer is
// used by one thread at a time.

#ifndef DCP_ENGINE_CUDA_DEVICE_H_
#define DCP_ENGINE_CUDA_DEVICE_H_

#include <cstddef>
#include <memory>
#include <string>

#include "dcp/status.h"
#include "dcp/tensor_view.h"

namespace dcp::cuda {

// True if this build can handle device memory at all.
bool Built();

// Devices that answer: 0 without CUDA support, without a driver
// (cudaGetDeviceCount fails on CPU machines) or without a device.
int DeviceCount();

// Checks that the memory of `view` is where its device says:
//   - a host view whose pointer is CUDA device memory -> InvalidArgument;
//   - a CUDA view in a build without CUDA, on a machine without a device, on
//     an ordinal that does not exist, or whose pointer is host or other-device
//     memory -> InvalidArgument.
// `what` names the view in messages (e.g. "state dict entry 'w'").
Status CheckViewMemory(const TensorView& view, const std::string& what);

// Pinned (page-locked) host memory: fast, asynchronous copies to and from the
// device. Falls back to ordinary memory in builds without CUDA. Grows, never
// shrinks; contents are not initialised.
class PinnedBuffer {
 public:
  PinnedBuffer();
  ~PinnedBuffer();
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  // IOError if pinned memory cannot be allocated.
  Status Reserve(size_t bytes);
  char* data() { return data_; }
  size_t capacity() const { return capacity_; }

 private:
  char* data_ = nullptr;
  size_t capacity_ = 0;
  bool pinned_ = false;
};

// A CUDA stream on one device (created on first use).
class Stream {
 public:
  Stream();
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  struct Rep;  // the CUDA handles (device_cuda.cc)
  Rep* rep() { return rep_.get(); }

 private:
  std::unique_ptr<Rep> rep_;
};

// Copies the elements of device view `src` into `dst` (row-major contiguous
// host memory of src.size_bytes() bytes; pinned for speed) and waits for the
// copy. REQUIRES: src on a CUDA device.
Status CopyToHost(const TensorView& src, void* dst, Stream* stream);

// Copies row-major contiguous host memory `src` into device view `dst` and
// waits. REQUIRES: dst on a CUDA device.
Status CopyToDevice(const void* src, const TensorView& dst, Stream* stream);

}  // namespace dcp::cuda

#endif  // DCP_ENGINE_CUDA_DEVICE_H_
