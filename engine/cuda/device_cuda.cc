// Copyright (c) dcp authors.
//
// engine/cuda/device.h on the CUDA runtime.

#include <cuda_runtime.h>

#include <cstring>
#include <mutex>
#include <vector>

#include "engine/array/strided_copy.h"
#include "engine/cuda/device.h"

namespace dcp::cuda {
namespace {

Status CudaStatus(cudaError_t err, const std::string& call) {
  if (err == cudaSuccess) return Status::OK();
  return Status::IOError(call + " failed: " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")");
}

#define DCP_CUDA(call) DCP_RETURN_IF_ERROR(CudaStatus((call), #call))

// Runs `copy2d(dst, dpitch, src, spitch, width, height)` for every 2-D slab
// of a strided copy of `view`'s elements between device memory and a
// contiguous host buffer. to_host: src is the device view.
template <typename Copy2D>
Status ForEachSlab(const TensorView& view, bool to_host, char* host, Copy2D copy2d) {
  const int64_t elem = static_cast<int64_t>(DTypeSize(view.dtype()));
  if (view.num_elements() == 0) return Status::OK();
  const std::vector<int64_t> dev_strides = array::ByteStrides(view);
  const Shape host_elems = ContiguousStrides(view.shape());
  std::vector<int64_t> host_strides(host_elems.size());
  for (size_t i = 0; i < host_elems.size(); ++i) host_strides[i] = host_elems[i] * elem;
  char* dev = static_cast<char*>(view.data());
  const int64_t* ss = to_host ? dev_strides.data() : host_strides.data();
  const int64_t* ds = to_host ? host_strides.data() : dev_strides.data();
  std::vector<array::CopyDim> dims = array::CoalesceDims(ss, ds, view.shape().data(), view.rank());
  // Rows: the innermost axis if it is contiguous on both sides, else single
  // elements; the next axis (if any) becomes the 2-D height when both of its
  // pitches can hold a row (a stride-0 or overlapping source cannot: then it
  // stays an outer loop).
  int64_t width = elem, height = 1, spitch = elem, dpitch = elem;
  size_t outer = dims.size();
  if (!dims.empty() && dims.back().src_stride == elem && dims.back().dst_stride == elem) {
    width = dims.back().extent * elem;
    --outer;
  }
  spitch = dpitch = width;  // a single row: CUDA still wants pitches >= width
  if (outer > 0 && dims[outer - 1].src_stride >= width && dims[outer - 1].dst_stride >= width) {
    height = dims[outer - 1].extent;
    spitch = dims[outer - 1].src_stride;
    dpitch = dims[outer - 1].dst_stride;
    --outer;
  }
  char* src0 = to_host ? dev : host;
  char* dst0 = to_host ? host : dev;
  std::vector<int64_t> idx(outer, 0);
  for (;;) {
    int64_t so = 0, dof = 0;
    for (size_t a = 0; a < outer; ++a) {
      so += idx[a] * dims[a].src_stride;
      dof += idx[a] * dims[a].dst_stride;
    }
    DCP_RETURN_IF_ERROR(copy2d(dst0 + dof, dpitch, src0 + so, spitch, width, height));
    size_t a = outer;
    for (;;) {
      if (a == 0) return Status::OK();
      --a;
      if (++idx[a] < dims[a].extent) break;
      idx[a] = 0;
    }
  }
}

}  // namespace

bool Built() { return true; }

int DeviceCount() {
  static const int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      cudaGetLastError();  // clear the sticky "no driver" error
      return 0;
    }
    return n;
  }();
  return count;
}

Status CheckViewMemory(const TensorView& view, const std::string& what) {
  if (view.device().is_host()) {
    if (DeviceCount() == 0 || view.data() == nullptr) return Status::OK();
    cudaPointerAttributes attr;
    if (cudaPointerGetAttributes(&attr, view.data()) != cudaSuccess) {
      cudaGetLastError();
      return Status::OK();  // not memory CUDA knows: ordinary host memory
    }
    if (attr.type == cudaMemoryTypeDevice) {
      return Status::InvalidArgument(what + ": view is on host but its pointer is CUDA device memory (cuda:" +
                                     std::to_string(attr.device) + ")");
    }
    return Status::OK();
  }
  const int n = DeviceCount();
  if (n == 0) {
    return Status::InvalidArgument(what + ": view is on " + view.device().ToString() +
                                   " but no CUDA device is available");
  }
  if (view.device().index < 0 || view.device().index >= n) {
    return Status::InvalidArgument(what + ": view is on " + view.device().ToString() + " but only " +
                                   std::to_string(n) + " CUDA devices exist");
  }
  if (view.data() == nullptr) return Status::OK();  // empty view
  cudaPointerAttributes attr;
  if (cudaPointerGetAttributes(&attr, view.data()) != cudaSuccess) {
    cudaGetLastError();
    return Status::InvalidArgument(what + ": view is on " + view.device().ToString() +
                                   " but its pointer is not CUDA memory");
  }
  if (attr.type != cudaMemoryTypeDevice && attr.type != cudaMemoryTypeManaged) {
    return Status::InvalidArgument(what + ": view is on " + view.device().ToString() +
                                   " but its pointer is host memory");
  }
  if (attr.device != view.device().index) {
    return Status::InvalidArgument(what + ": view is on " + view.device().ToString() +
                                   " but its pointer is memory of cuda:" + std::to_string(attr.device));
  }
  return Status::OK();
}

PinnedBuffer::PinnedBuffer() = default;

PinnedBuffer::~PinnedBuffer() {
  if (data_ == nullptr) return;
  if (pinned_) cudaFreeHost(data_);
  else std::free(data_);
}

Status PinnedBuffer::Reserve(size_t bytes) {
  if (bytes <= capacity_) return Status::OK();
  if (data_ != nullptr) {
    if (pinned_) cudaFreeHost(data_);
    else std::free(data_);
    data_ = nullptr;
    capacity_ = 0;
  }
  if (DeviceCount() > 0) {
    void* p = nullptr;
    DCP_CUDA(cudaHostAlloc(&p, bytes, cudaHostAllocDefault));
    data_ = static_cast<char*>(p);
    pinned_ = true;
  } else {
    data_ = static_cast<char*>(std::malloc(bytes));
    pinned_ = false;
    if (data_ == nullptr) return Status::IOError("cannot allocate " + std::to_string(bytes) + " bytes");
  }
  capacity_ = bytes;
  return Status::OK();
}

struct Stream::Rep {
  int device = -1;
  cudaStream_t stream = nullptr;
};

Stream::Stream() : rep_(std::make_unique<Rep>()) {}

Stream::~Stream() {
  if (rep_->stream != nullptr) cudaStreamDestroy(rep_->stream);
}

namespace {

// The stream of `s` on `device`, created (or re-created) on demand.
Result<cudaStream_t> StreamOn(Stream::Rep* rep, int device) {
  DCP_CUDA(cudaSetDevice(device));
  if (rep->stream == nullptr || rep->device != device) {
    if (rep->stream != nullptr) cudaStreamDestroy(rep->stream);
    rep->stream = nullptr;
    DCP_CUDA(cudaStreamCreateWithFlags(&rep->stream, cudaStreamNonBlocking));
    rep->device = device;
  }
  return rep->stream;
}

}  // namespace

Status CopyToHost(const TensorView& src, void* dst, Stream* stream) {
  DCP_ASSIGN_OR_RETURN(cudaStream_t s, StreamOn(stream->rep(), src.device().index));
  DCP_RETURN_IF_ERROR(ForEachSlab(src, /*to_host=*/true, static_cast<char*>(dst),
                                  [&](char* d, int64_t dp, const char* sp, int64_t spp, int64_t w, int64_t h) {
                                    return CudaStatus(cudaMemcpy2DAsync(d, dp, sp, spp, w, h, cudaMemcpyDeviceToHost, s),
                                                      "cudaMemcpy2DAsync (device to host)");
                                  }));
  return CudaStatus(cudaStreamSynchronize(s), "cudaStreamSynchronize");
}

Status CopyToDevice(const void* src, const TensorView& dst, Stream* stream) {
  DCP_ASSIGN_OR_RETURN(cudaStream_t s, StreamOn(stream->rep(), dst.device().index));
  DCP_RETURN_IF_ERROR(ForEachSlab(dst, /*to_host=*/false, const_cast<char*>(static_cast<const char*>(src)),
                                  [&](char* d, int64_t dp, const char* sp, int64_t spp, int64_t w, int64_t h) {
                                    return CudaStatus(cudaMemcpy2DAsync(d, dp, sp, spp, w, h, cudaMemcpyHostToDevice, s),
                                                      "cudaMemcpy2DAsync (host to device)");
                                  }));
  return CudaStatus(cudaStreamSynchronize(s), "cudaStreamSynchronize");
}

}  // namespace dcp::cuda
