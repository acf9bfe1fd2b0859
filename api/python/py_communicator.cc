// Copyright (c) dcp authors.

#include "api/python/py_communicator.h"

#include <pybind11/stl.h>

#include <string>
#include <vector>

namespace dcp::python {
namespace {

namespace py = pybind11;

class PyCommunicator final : public Communicator {
 public:
  explicit PyCommunicator(py::object impl) : impl_(std::move(impl)) {
    py::gil_scoped_acquire gil;
    rank_ = py::cast<int>(impl_.attr("rank"));
    size_ = py::cast<int>(impl_.attr("size"));
  }
  ~PyCommunicator() override {
    py::gil_scoped_acquire gil;
    impl_ = py::object();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  Status Barrier() override {
    return Call("barrier", [&] { impl_.attr("barrier")(); });
  }

  Status Broadcast(int root, std::string* bytes) override {
    return Call("broadcast", [&] {
      py::object out = impl_.attr("broadcast")(root, py::bytes(*bytes));
      *bytes = py::cast<std::string>(out);
    });
  }

  Status AllGather(std::string_view local, std::vector<std::string>* all) override {
    return Call("allgather", [&] {
      py::object out = impl_.attr("allgather")(py::bytes(local.data(), local.size()));
      *all = py::cast<std::vector<std::string>>(out);
      if (all->size() != static_cast<size_t>(size_)) throw std::runtime_error("allgather returned the wrong count");
    });
  }

  Status Gather(int root, std::string_view local, std::vector<std::string>* all) override {
    return Call("gather", [&] {
      py::object out = impl_.attr("gather")(root, py::bytes(local.data(), local.size()));
      *all = py::cast<std::vector<std::string>>(out);
      if (rank_ != root) all->clear();
      else if (all->size() != static_cast<size_t>(size_)) throw std::runtime_error("gather returned the wrong count");
    });
  }

  Status AllToAll(const std::vector<std::string>& send, std::vector<std::string>* recv) override {
    return Call("alltoall", [&] {
      py::list l;
      for (const auto& s : send) l.append(py::bytes(s));
      *recv = py::cast<std::vector<std::string>>(impl_.attr("alltoall")(l));
      if (recv->size() != static_cast<size_t>(size_)) throw std::runtime_error("alltoall returned the wrong count");
    });
  }

  Result<std::unique_ptr<Communicator>> Duplicate() override {
    py::object dup;
    Status s = Call("duplicate", [&] { dup = impl_.attr("duplicate")(); });
    if (!s.ok()) return s;
    return std::unique_ptr<Communicator>(new PyCommunicator(std::move(dup)));
  }

 private:
  template <typename Fn>
  Status Call(const char* what, Fn fn) {
    py::gil_scoped_acquire gil;
    try {
      fn();
      return Status::OK();
    } catch (py::error_already_set& e) {
      return Status::IOError(std::string("communicator ") + what + " failed: " + e.what());
    } catch (const std::exception& e) {
      return Status::IOError(std::string("communicator ") + what + " failed: " + e.what());
    }
  }

  py::object impl_;
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace

std::unique_ptr<Communicator> NewPyCommunicator(pybind11::object impl) {
  return std::make_unique<PyCommunicator>(std::move(impl));
}

}  // namespace dcp::python
