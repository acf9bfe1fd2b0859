// Copyright (c) dcp authors.
//
// dcp._dcp: the extension module under `import dcp`. A thin layer over
// dcp::Store (dcp/store.h): arguments are converted with the GIL held, then
// every data-path call runs with the GIL released. The pure-Python package
// (api/python/dcp) builds the Megatron-compatible layer and the torch /
// NumPy / communicator adapters on top of it.

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <optional>

#include "api/python/convert.h"
#include "api/python/py_communicator.h"
#include "dcp/mpi.h"
#include "dcp/store.h"
#include "engine/inspect/cli.h"
#include "engine/inspect/export.h"
#include "engine/interop/cli.h"
#include "engine/interop/import.h"
#include "engine/inspect/reader.h"
#include "engine/manifest/common_state_codec.h"

namespace dcp::python {
namespace {

namespace py = pybind11;

py::dict SaveReportDict(const SaveReport& r) {
  py::dict d;
  d["chunks_written"] = r.chunks_written;
  d["objects_written"] = r.objects_written;
  d["raw_bytes_written"] = r.raw_bytes_written;
  d["stored_bytes_written"] = r.stored_bytes_written;
  d["chunks_referenced"] = r.chunks_referenced;
  d["raw_bytes_referenced"] = r.raw_bytes_referenced;
  d["base_records_unusable"] = r.base_records_unusable;
  return d;
}

py::dict LoadReportDict(const LoadReport& r) {
  py::dict d;
  d["chunks_read"] = r.chunks_read;
  d["bytes_read"] = r.bytes_read;
  d["chunks_sent"] = r.chunks_sent;
  d["bytes_sent"] = r.bytes_sent;
  d["chunks_received"] = r.chunks_received;
  d["bytes_received"] = r.bytes_received;
  return d;
}

SaveOptions ToSaveOptions(const py::dict& o) {
  SaveOptions s;
  if (o.contains("overwrite")) s.overwrite = py::cast<bool>(o["overwrite"]);
  if (o.contains("chunk_bytes")) s.chunk_bytes = py::cast<uint64_t>(o["chunk_bytes"]);
  if (o.contains("compression")) {
    const std::string c = py::cast<std::string>(o["compression"]);
    if (c == "none") s.compression = Compression::kNone;
    else if (c == "lz4") s.compression = Compression::kLz4;
    else if (c == "lz4_byte_planes") s.compression = Compression::kLz4BytePlane;
    else ThrowIfError(Status::InvalidArgument("unknown compression '" + c + "' (none, lz4, lz4_byte_planes)"));
  }
  if (o.contains("incremental")) s.incremental = py::cast<bool>(o["incremental"]);
  if (o.contains("encode_threads")) s.encode_threads = py::cast<int>(o["encode_threads"]);
  if (o.contains("fully_parallel")) s.fully_parallel = py::cast<bool>(o["fully_parallel"]);
  return s;
}

LoadOptions ToLoadOptions(const py::dict& o) {
  LoadOptions l;
  if (o.contains("read_threads")) l.read_threads = py::cast<int>(o["read_threads"]);
  if (o.contains("max_inflight_bytes")) l.max_inflight_bytes = py::cast<uint64_t>(o["max_inflight_bytes"]);
  if (o.contains("strict")) l.strict = static_cast<StrictHandling>(py::cast<int>(o["strict"]));
  if (o.contains("read_once")) l.read_once = py::cast<bool>(o["read_once"]);
  return l;
}

// (code, message) from dcp.errors.status_of -> a failed status (Internal
// for a code that is not one of dcp's errors).
Status FailureStatus(const py::handle& failure) {
  const auto t = failure.cast<py::tuple>();
  const int code = t[0].cast<int>();
  const std::string message = t[1].cast<std::string>();
  const bool known = code >= static_cast<int>(StatusCode::kInvalidArgument) &&
                     code <= static_cast<int>(StatusCode::kUnimplemented);
  return Status(known ? static_cast<StatusCode>(code) : StatusCode::kInternal, message);
}

// This rank's verdict on the arguments of a collective call. A conversion
// that fails on one rank only must still join the call, or the other ranks
// wait for it forever: its error becomes the call's `local` status (see
// dcp/store.h), and every rank raises it. `failure` is the Python layer's own
// conversion error as (code, message) (dcp.errors.status_of), or None; then
// `convert` runs, and what it throws is turned into a status the same way.
template <typename F>
Status Converted(const py::object& failure, F&& convert) {
  if (!failure.is_none()) return FailureStatus(failure);
  try {
    convert();
    return Status::OK();
  } catch (const StatusError& e) {
    return e.status;
  } catch (py::error_already_set& e) {
    if (!e.matches(PyExc_Exception)) throw;  // KeyboardInterrupt, SystemExit
    try {
      return FailureStatus(py::module_::import("dcp.errors").attr("status_of")(e.value()));
    } catch (...) {
      return Status::InvalidArgument(e.what());
    }
  } catch (const py::type_error& e) {
    return Status::InvalidArgument(std::string("TypeError: ") + e.what());
  } catch (const py::cast_error& e) {
    return Status::InvalidArgument(std::string("TypeError: ") + e.what());
  } catch (const std::exception& e) {
    return Status::InvalidArgument(e.what());
  }
}

// The state dict and options of a put (Converted: the local status).
Status ConvertedSave(const py::object& tree, const py::object& options, const py::object& failure, StateDict* sd,
                     SaveOptions* o) {
  return Converted(failure, [&] {
    *sd = ToStateDict(tree.cast<py::dict>());
    *o = ToSaveOptions(options.cast<py::dict>());
  });
}

// A store and the communicator it runs over (owned here).
class PyStore {
 public:
  static std::unique_ptr<PyStore> Open(const std::string& root, py::object comm, int64_t mpi_fortran_handle,
                                       bool create_if_missing, bool read_only, int lock_wait_ms, bool repair) {
    auto s = std::make_unique<PyStore>();
    if (mpi_fortran_handle >= 0) {
      s->comm_ = ValueOrThrow(NewMpiCommunicatorFromFortranHandle(mpi_fortran_handle));
    } else if (!comm.is_none()) {
      s->comm_ = NewPyCommunicator(comm);
    }
    StoreOptions o;
    o.create_if_missing = create_if_missing;
    o.read_only = read_only;
    o.lock_wait_ms = lock_wait_ms;
    o.repair = repair;
    Result<std::unique_ptr<Store>> opened = Status::Internal("not opened");
    {
      py::gil_scoped_release nogil;
      opened = Store::Open(root, s->comm_.get(), o);
    }
    s->store_ = ValueOrThrow(std::move(opened));
    return s;
  }

  ~PyStore() { Close(); }

  void Close() {
    if (store_) {
      py::gil_scoped_release nogil;  // waits for an async put, which may call the communicator
      store_.reset();
    }
    if (comm_) {
      comm_.reset();
    }
  }

  Store& store() {
    if (!store_) ThrowIfError(Status::FailedPrecondition("the store is closed"));
    return *store_;
  }

  py::dict Put(uint64_t step, const py::object& tree, const py::object& options, const py::object& failure) {
    StateDict sd;
    SaveOptions o;
    const Status local = ConvertedSave(tree, options, failure, &sd, &o);
    SaveReport report;
    Status s;
    Store& st = store();
    {
      py::gil_scoped_release nogil;
      s = st.Put(step, sd, o, &report, local);
    }
    ThrowIfError(s);
    return SaveReportDict(report);
  }

  void PutAsync(uint64_t step, const py::object& tree, const py::object& options, const py::object& failure) {
    StateDict sd;
    SaveOptions o;
    const Status local = ConvertedSave(tree, options, failure, &sd, &o);
    Status s;
    Store& st = store();
    {
      py::gil_scoped_release nogil;
      s = st.PutAsync(step, sd, o, local);
    }
    ThrowIfError(s);
  }

  py::dict Wait() {
    SaveReport report;
    Status s;
    Store& st = store();
    {
      py::gil_scoped_release nogil;
      s = st.WaitForPut(&report);
    }
    ThrowIfError(s);
    return SaveReportDict(report);
  }

  // None while running; the report once done (raises its error if it failed).
  py::object Poll() {
    SaveReport report;
    std::optional<Status> s;
    Store& st = store();
    {
      py::gil_scoped_release nogil;
      s = st.PollPut(&report);
    }
    if (!s) return py::none();
    ThrowIfError(*s);
    return SaveReportDict(report);
  }

  void BeginStep(uint64_t step, const py::object& options, const py::object& failure) {
    SaveOptions o;
    const Status local = Converted(failure, [&] { o = ToSaveOptions(options.cast<py::dict>()); });
    Status s;
    Store& st = store();
    {
      py::gil_scoped_release nogil;
      s = st.BeginStep(step, o, local);
    }
    ThrowIfError(s);
  }

  py::dict PutPart(const py::object& tree, const py::object& failure) {
    StateDict sd;
    const Status local = Converted(failure, [&] { sd = ToStateDict(tree.cast<py::dict>()); });
    SaveReport report;
    Status s;
    Store& st = store();
    {
      py::gil_scoped_release nogil;
      s = st.PutPart(sd, &report, local);
    }
    ThrowIfError(s);
    return SaveReportDict(report);
  }

  void CommitStep() {
    Status s;
    Store& st = store();
    {
      py::gil_scoped_release nogil;
      s = st.CommitStep();
    }
    ThrowIfError(s);
  }

  void AbortStep() {
    Status s;
    Store& st = store();
    {
      py::gil_scoped_release nogil;
      s = st.AbortStep();
    }
    ThrowIfError(s);
  }

  // (common state, report, unexpected keys, missing keys, objects by path)
  py::tuple Get(uint64_t step, const py::object& tree, const py::object& options, const py::object& failure) {
    // The options first and apart: they decide which collectives the get
    // runs, so a rank whose request failed must still pass them on.
    StateDict sd;
    LoadOptions o;
    Status local = Converted(py::none(), [&] { o = ToLoadOptions(options.cast<py::dict>()); });
    if (local.ok()) local = Converted(failure, [&] { sd = ToStateDict(tree.cast<py::dict>()); });
    Result<LoadResult> r = Status::Internal("not run");
    Store& st = store();
    {
      py::gil_scoped_release nogil;
      r = st.Get(step, &sd, o, local);
    }
    LoadResult result = ValueOrThrow(std::move(r));
    return py::make_tuple(FromValue(result.common_state), LoadReportDict(result.report), result.unexpected_keys,
                          result.missing_keys, ObjectsOf(sd));
  }

  void Read(uint64_t step, const std::string& key, const Shape& origin, const Shape& shape, const py::tuple& dest,
            const py::dict& options) {
    const TensorView view = ToView(dest, "destination of tensor '" + key + "'");
    const LoadOptions o = ToLoadOptions(options);
    Status s;
    Store& st = store();
    {
      py::gil_scoped_release nogil;
      s = st.Read(step, key, Box{origin, shape}, view, o);
    }
    ThrowIfError(s);
  }

  std::vector<uint64_t> Steps() { return ValueOrThrow(store().Steps()); }
  std::optional<uint64_t> LatestStep() { return ValueOrThrow(store().LatestStep()); }
  std::optional<uint64_t> AgreedLatestStep() {
    Result<std::optional<uint64_t>> latest = std::optional<uint64_t>();
    Store& st = store();
    {
      py::gil_scoped_release nogil;
      latest = st.AgreedLatestStep();
    }
    return ValueOrThrow(std::move(latest));
  }

  std::optional<uint64_t> LatestStepAtOpen() {
    return ValueOrThrow(Result<std::optional<uint64_t>>(store().LatestStepAtOpen()));
  }

  py::dict Metadata(uint64_t step) {
    StepMetadata m = ValueOrThrow(store().Metadata(step));
    py::dict info;
    info["step"] = m.info.step;
    info["generation"] = m.info.generation;
    info["commit_time_ns"] = m.info.commit_time_ns;
    info["world_size"] = m.info.world_size;
    info["num_tensors"] = m.info.num_tensors;
    info["num_objects"] = m.info.num_objects;
    info["num_chunks"] = m.info.num_chunks;
    info["raw_bytes"] = m.info.raw_bytes;
    info["stored_bytes"] = m.info.stored_bytes;
    info["unique_bytes"] = m.info.unique_bytes;
    py::list tensors, objects;
    for (const auto& t : m.tensors) {
      py::dict d;
      d["key"] = t.key;
      d["dtype"] = std::string(DTypeName(t.dtype));
      d["global_shape"] = t.global_shape;
      d["num_chunks"] = t.num_chunks;
      d["raw_bytes"] = t.raw_bytes;
      d["stored_bytes"] = t.stored_bytes;
      tensors.append(d);
    }
    for (const auto& o : m.objects) {
      py::dict d;
      d["key"] = o.key;
      d["unique_key"] = o.unique_key;
      d["global_shape"] = o.global_shape;
      d["global_offset"] = o.global_offset;
      d["size"] = o.size;
      objects.append(d);
    }
    py::dict out;
    out["info"] = info;
    out["tensors"] = tensors;
    out["objects"] = objects;
    return out;
  }

  // (tensors: list of (key, dtype, shape, bytearray), objects: list of
  // (key, global_shape, global_offset, bytes), common state)
  py::tuple LoadPlain(uint64_t step, const std::vector<std::string>& keys, const py::dict& options) {
    const LoadOptions o = ToLoadOptions(options);
    Result<PlainState> r = Status::Internal("not run");
    Store& st = store();
    {
      py::gil_scoped_release nogil;
      r = st.LoadPlain(step, keys, o);
    }
    PlainState plain = ValueOrThrow(std::move(r));
    py::list tensors, objects;
    for (const auto& t : plain.tensors) {
      py::bytearray data(reinterpret_cast<const char*>(t.data()), t.size_bytes());
      tensors.append(py::make_tuple(t.key(), std::string(DTypeName(t.dtype())), t.shape(), data));
    }
    for (const auto& obj : plain.objects) {
      objects.append(py::make_tuple(obj.key, obj.global_shape, obj.global_offset, py::bytes(obj.data)));
    }
    return py::make_tuple(tensors, objects, FromValue(plain.common_state));
  }

  // `failure`, here and below: the Python layer's error in this rank's
  // arguments (their placeholders are passed), as in Put.
  std::vector<std::string> RemoveTensors(uint64_t step, const std::string& prefix, std::optional<uint64_t> into_step,
                                         bool overwrite, const py::object& failure) {
    RemoveTensorsOptions o;
    o.into_step = into_step;
    o.overwrite = overwrite;
    const Status local = Converted(failure, [] {});
    Result<std::vector<std::string>> r = Status::Internal("not run");
    Store& st = store();
    {
      py::gil_scoped_release nogil;
      r = st.RemoveTensors(step, prefix, o, local);
    }
    return ValueOrThrow(std::move(r));
  }

  void DeleteStep(uint64_t step, const py::object& failure) {
    const Status local = Converted(failure, [] {});
    Status s;
    Store& st = store();
    {
      py::gil_scoped_release nogil;
      s = st.DeleteStep(step, local);
    }
    ThrowIfError(s);
  }

  std::vector<uint64_t> ApplyRetention(uint64_t keep_last, uint64_t keep_every, const std::vector<uint64_t>& keep,
                                       const py::object& failure) {
    RetentionPolicy p;
    p.keep_last = keep_last;
    p.keep_every = keep_every;
    p.keep_steps = keep;
    const Status local = Converted(failure, [] {});
    Result<std::vector<uint64_t>> r = Status::Internal("not run");
    Store& st = store();
    {
      py::gil_scoped_release nogil;
      r = st.ApplyRetention(p, local);
    }
    return ValueOrThrow(std::move(r));
  }

  py::dict CollectGarbage(double compact_dead_fraction, const py::object& failure) {
    GcOptions o;
    o.compact_dead_fraction = compact_dead_fraction;
    const Status local = Converted(failure, [] {});
    GcReport report;
    Status s;
    Store& st = store();
    {
      py::gil_scoped_release nogil;
      s = st.CollectGarbage(&report, o, local);
    }
    ThrowIfError(s);
    py::dict d;
    d["generations_removed"] = report.generations_removed;
    d["records_removed"] = report.records_removed;
    d["bytes_before"] = report.bytes_before;
    d["bytes_after"] = report.bytes_after;
    d["bytes_pending"] = report.bytes_pending;
    d["temporary_files_removed"] = report.temporary_files_removed;
    return d;
  }

  int rank() const { return comm_ ? comm_->rank() : 0; }
  int size() const { return comm_ ? comm_->size() : 1; }
  const std::string& root() { return store().root(); }

 private:
  std::unique_ptr<Communicator> comm_;  // declared first: destroyed after the store
  std::unique_ptr<Store> store_;
};

void TranslateStatus(const StatusError& e) {
  py::module_ errors = py::module_::import("dcp.errors");
  py::object cls = errors.attr("error_class")(static_cast<int>(e.status.code()), e.status.message());
  PyErr_SetObject(cls.ptr(), py::str(e.status.message()).ptr());
}

}  // namespace
}  // namespace dcp::python

PYBIND11_MODULE(_dcp, m) {
  namespace py = pybind11;
  using dcp::python::PyStore;
  using dcp::python::TensorValue;
  m.doc() = "dcp: a distributed checkpoint store (C++ core; see the dcp package)";

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const dcp::python::StatusError& e) {
      dcp::python::TranslateStatus(e);
    }
  });

  py::class_<TensorValue>(m, "TensorValue")
      .def(py::init([](std::string dtype, std::vector<int64_t> shape, py::bytes data) {
             return TensorValue{std::move(dtype), std::move(shape), std::move(data)};
           }),
           py::arg("dtype"), py::arg("shape"), py::arg("data"))
      .def_readonly("dtype", &TensorValue::dtype)
      .def_readonly("shape", &TensorValue::shape)
      .def_readonly("data", &TensorValue::data)
      .def("__repr__", [](const TensorValue& t) {
        return "TensorValue(" + t.dtype + ", " + py::str(py::cast(t.shape)).cast<std::string>() + ")";
      });

  py::class_<PyStore>(m, "Store")
      .def_static("open", &PyStore::Open, py::arg("root"), py::arg("comm"), py::arg("mpi_fortran_handle"),
                  py::arg("create_if_missing"), py::arg("read_only"), py::arg("lock_wait_ms"), py::arg("repair"))
      .def("close", &PyStore::Close)
      .def("put", &PyStore::Put)
      .def("put_async", &PyStore::PutAsync)
      .def("wait", &PyStore::Wait)
      .def("poll", &PyStore::Poll)
      .def("begin_step", &PyStore::BeginStep)
      .def("put_part", &PyStore::PutPart)
      .def("commit_step", &PyStore::CommitStep)
      .def("abort_step", &PyStore::AbortStep)
      .def("get", &PyStore::Get)
      .def("read", &PyStore::Read)
      .def("steps", &PyStore::Steps)
      .def("latest_step", &PyStore::LatestStep)
      .def("agreed_latest_step", &PyStore::AgreedLatestStep)
      .def("latest_step_at_open", &PyStore::LatestStepAtOpen)
      .def("metadata", &PyStore::Metadata)
      .def("load_plain", &PyStore::LoadPlain)
      .def("remove_tensors", &PyStore::RemoveTensors)
      .def("delete_step", &PyStore::DeleteStep)
      .def("apply_retention", &PyStore::ApplyRetention)
      .def("collect_garbage", &PyStore::CollectGarbage)
      .def_property_readonly("rank", &PyStore::rank)
      .def_property_readonly("size", &PyStore::size)
      .def_property_readonly("root", &PyStore::root);

  // ShardedObject values (api/python/dcp/_state.py): dcp's common-state
  // encoding (FlexBuffers), never pickle.
  m.def("encode_value", [](py::handle v, const std::string& path) {
    const dcp::Value value = dcp::python::ToValue(v, path);
    return py::bytes(dcp::python::ValueOrThrow(dcp::manifest::EncodeCommonState(value)));
  });
  m.def("decode_value", [](const py::bytes& b) {
    return dcp::python::FromValue(dcp::python::ValueOrThrow(dcp::manifest::DecodeCommonState(std::string(b))));
  });

  // dcp-inspect (python3 -m dcp.inspect) and its export.
  m.def("inspect_main", [](std::vector<std::string> args) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    py::gil_scoped_release nogil;
    return dcp::inspect::RunCli(static_cast<int>(args.size()), argv.data());
  });
  m.def("export_safetensors", [](const std::string& root, uint64_t step, const std::string& path,
                                 const std::string& keys, uint64_t max_shard_bytes) {
    py::gil_scoped_release nogil;
    auto reader = dcp::python::ValueOrThrow(dcp::inspect::StoreReader::Open(root));
    dcp::inspect::ExportOptions o;
    o.keys_glob = keys;
    o.max_shard_bytes = max_shard_bytes;
    const dcp::inspect::ExportReport r =
        dcp::python::ValueOrThrow(dcp::inspect::ExportSafetensors(reader.get(), step, path, o));
    py::gil_scoped_acquire gil;
    py::dict d;
    d["path"] = r.path;
    d["step"] = r.step;
    d["tensors"] = r.tensors;
    d["data_bytes"] = r.data_bytes;
    d["skipped_objects"] = r.skipped_objects;
    d["files"] = r.files;
    return d;
  });

  // dcp-import (python3 -m dcp.convert from-safetensors) and the import as a function.
  m.def("import_main", [](std::vector<std::string> args) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    py::gil_scoped_release nogil;
    return dcp::interop::RunImportCli(static_cast<int>(args.size()), argv.data());
  });
  m.def("import_safetensors", [](const std::string& root, const std::string& source, std::optional<uint64_t> step,
                                 const std::string& rules, bool keep_unmatched, bool overwrite, bool incremental,
                                 uint64_t chunk_bytes, int threads) {
    py::gil_scoped_release nogil;
    dcp::interop::KeyMapping mapping;
    dcp::interop::ImportOptions o;
    if (!rules.empty()) {
      mapping = dcp::python::ValueOrThrow(dcp::interop::KeyMapping::Read(rules));
      o.mapping = &mapping;
    }
    o.step = step;
    o.keep_unmatched = keep_unmatched;
    o.save.overwrite = overwrite;
    o.save.incremental = incremental;
    if (chunk_bytes > 0) o.save.chunk_bytes = chunk_bytes;
    o.save.encode_threads = threads;
    const dcp::interop::ImportReport r = dcp::python::ValueOrThrow(dcp::interop::ImportSafetensors(root, source, o));
    py::gil_scoped_acquire gil;
    py::dict d;
    d["step"] = r.step;
    d["files"] = r.files;
    d["source_tensors"] = r.source_tensors;
    d["tensors"] = r.tensors;
    d["data_bytes"] = r.data_bytes;
    d["chunks_written"] = r.save.chunks_written;
    d["chunks_referenced"] = r.save.chunks_referenced;
    d["seconds"] = r.seconds;
    return d;
  });

  py::list dtypes;
  for (dcp::DType d : dcp::AllDTypes()) dtypes.append(std::string(dcp::DTypeName(d)));
  m.attr("DTYPES") = dtypes;
}
