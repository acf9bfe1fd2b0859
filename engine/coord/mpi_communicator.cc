// Copyright (c) dcp authors.

#include "engine/coord/mpi_communicator.h"

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace dcp {
namespace {

Status MpiStatus(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return Status::OK();
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  return Status::IOError(std::string(call) + " failed: " + std::string(text, static_cast<size_t>(len)));
}

// Waits for a non-blocking collective without holding a core. Open MPI's
// blocking calls poll in sched_yield: with more ranks than cores (a rank per
// GPU on a node short of cores, the benches on this project's 2-core VMs) a
// rank that waits for slower ones takes their CPU, and a save or load waits
// at each protocol step for its slowest rank. Polls for about 50 us (a
// collective among ranks that arrive together), then sleeps between polls,
// from 10 us doubling to 100 us.
//
// Only for the small first exchange of each collective (the sizes), where
// ranks wait for each other: a non-blocking collective moves on only while
// its rank calls MPI, so each of its steps can cost a nap (a few steps for 8
// bytes per rank), and a large one sent in fragments would cost one per
// fragment. The data that follows, once every rank is there, goes through
// the blocking calls.
// If MPI_Test fails (this communicator returns errors rather than aborting),
// the request is taken as finished: MPI offers no way to wait for it otherwise.
Status AwaitRequest(int rc, MPI_Request* request, const char* call) {
  DCP_RETURN_IF_ERROR(MpiStatus(rc, call));
  using Clock = std::chrono::steady_clock;
  const Clock::time_point spin_until = Clock::now() + std::chrono::microseconds(50);
  std::chrono::microseconds nap(10);
  for (;;) {
    int done = 0;
    DCP_RETURN_IF_ERROR(MpiStatus(MPI_Test(request, &done, MPI_STATUS_IGNORE), call));
    if (done) return Status::OK();
    if (Clock::now() < spin_until) continue;
    std::this_thread::sleep_for(nap);
    nap = std::min(2 * nap, std::chrono::microseconds(100));
  }
}

#define DCP_MPI(call) DCP_RETURN_IF_ERROR(MpiStatus((call), #call))
// Starts the non-blocking collective `start` with the arguments that follow
// and a request of its own (its last argument), then waits (AwaitRequest).
#define DCP_MPI_AWAIT(start, ...)                                                     \
  do {                                                                                \
    MPI_Request request;                                                              \
    const char* call = #start "(" #__VA_ARGS__ ")";                                   \
    DCP_RETURN_IF_ERROR(AwaitRequest(start(__VA_ARGS__, &request), &request, call));  \
  } while (0)

// Largest piece sent in one MPI call (counts are ints).
constexpr uint64_t kMaxPiece = uint64_t{1} << 30;
// The all-to-all's point-to-point messages (collectives never match tags).
constexpr int kAllToAllTag = 7;

class MpiCommunicator : public Communicator {
 public:
  explicit MpiCommunicator(MPI_Comm comm) : comm_(comm) {
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Comm_free(&comm_);
  }

  // A private duplicate of `parent` that returns errors instead of aborting.
  static Result<std::unique_ptr<Communicator>> DupOf(MPI_Comm parent) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) return Status::FailedPrecondition("MPI is not initialized");
    MPI_Comm dup;
    DCP_MPI(MPI_Comm_dup(parent, &dup));
    DCP_MPI(MPI_Comm_set_errhandler(dup, MPI_ERRORS_RETURN));
    return std::unique_ptr<Communicator>(std::make_unique<MpiCommunicator>(dup));
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  Status Barrier() override {
    DCP_MPI_AWAIT(MPI_Ibarrier, comm_);
    return Status::OK();
  }

  Status Broadcast(int root, std::string* bytes) override {
    uint64_t n = rank_ == root ? bytes->size() : 0;
    DCP_MPI_AWAIT(MPI_Ibcast, &n, 1, MPI_UINT64_T, root, comm_);
    if (rank_ != root) bytes->resize(n);
    return BcastBytes(bytes->data(), n, root);
  }

  Status AllGather(std::string_view local, std::vector<std::string>* all) override {
    std::vector<uint64_t> sizes;
    DCP_RETURN_IF_ERROR(ExchangeSizes(local.size(), &sizes));
    all->assign(static_cast<size_t>(size_), std::string());
    uint64_t total = 0;
    for (uint64_t s : sizes) total += s;
    if (total < kMaxPiece) {
      std::vector<int> counts(sizes.begin(), sizes.end()), displs(static_cast<size_t>(size_));
      for (int r = 1; r < size_; ++r) displs[r] = displs[r - 1] + counts[r - 1];
      std::string flat(total, '\0');
      DCP_MPI(MPI_Allgatherv(local.data(), static_cast<int>(local.size()), MPI_BYTE, flat.data(),
                             counts.data(), displs.data(), MPI_BYTE, comm_));
      for (int r = 0; r < size_; ++r) (*all)[r] = flat.substr(displs[r], counts[r]);
      return Status::OK();
    }
    for (int r = 0; r < size_; ++r) {  // very large: one broadcast per rank
      std::string& slot = (*all)[r];
      if (r == rank_) slot.assign(local);
      else slot.resize(sizes[r]);
      DCP_RETURN_IF_ERROR(BcastBytes(slot.data(), sizes[r], r));
    }
    return Status::OK();
  }

  Status Gather(int root, std::string_view local, std::vector<std::string>* all) override {
    all->clear();
    uint64_t n = local.size();
    std::vector<uint64_t> sizes(rank_ == root ? size_ : 0);
    DCP_MPI_AWAIT(MPI_Igather, &n, 1, MPI_UINT64_T, sizes.data(), 1, MPI_UINT64_T, root, comm_);
    uint64_t total = 0;
    if (rank_ == root) {
      for (uint64_t s : sizes) total += s;
    }
    // (The ranks other than the root wait here for the slowest rank's size.)
    DCP_MPI_AWAIT(MPI_Ibcast, &total, 1, MPI_UINT64_T, root, comm_);
    if (total < kMaxPiece) {
      std::vector<int> counts, displs;
      std::string flat;
      if (rank_ == root) {
        counts.assign(sizes.begin(), sizes.end());
        displs.assign(static_cast<size_t>(size_), 0);
        for (int r = 1; r < size_; ++r) displs[r] = displs[r - 1] + counts[r - 1];
        flat.resize(total);
      }
      DCP_MPI(MPI_Gatherv(local.data(), static_cast<int>(local.size()), MPI_BYTE, flat.data(),
                          counts.data(), displs.data(), MPI_BYTE, root, comm_));
      if (rank_ == root) {
        all->resize(static_cast<size_t>(size_));
        for (int r = 0; r < size_; ++r) (*all)[r] = flat.substr(displs[r], counts[r]);
      }
      return Status::OK();
    }
    // Very large: point-to-point in pieces.
    if (rank_ == root) {
      all->resize(static_cast<size_t>(size_));
      for (int r = 0; r < size_; ++r) {
        if (r == root) {
          (*all)[r].assign(local);
          continue;
        }
        (*all)[r].resize(sizes[r]);
        DCP_RETURN_IF_ERROR(RecvBytes((*all)[r].data(), sizes[r], r));
      }
      return Status::OK();
    }
    return SendBytes(local.data(), local.size(), root);
  }

  // Point-to-point between the callers' strings: no flat copy of what is
  // sent or received (a read-once round moves up to a quarter of the load's
  // budget, and those copies, with the page faults of fresh buffers, were
  // most of a round's CPU). Messages over kMaxPiece go in pieces, in order
  // (MPI does not let messages of one sender, tag and communicator overtake).
  Status AllToAll(const std::vector<std::string>& send, std::vector<std::string>* recv) override {
    if (static_cast<int>(send.size()) != size_) {
      return Status::InvalidArgument("all-to-all needs one message per rank");
    }
    std::vector<uint64_t> send_sizes(size_), recv_sizes(size_);
    for (int r = 0; r < size_; ++r) send_sizes[r] = send[r].size();
    DCP_MPI_AWAIT(MPI_Ialltoall, send_sizes.data(), 1, MPI_UINT64_T, recv_sizes.data(), 1, MPI_UINT64_T, comm_);
    recv->resize(static_cast<size_t>(size_));
    std::vector<MPI_Request> requests;
    // A failed post or wait must not return while requests still point into
    // the callers' strings (a receive could later write into freed memory):
    // what is still active is cancelled (a receive not yet matched) and then
    // completed. A send to a rank that posted its receives completes; one
    // whose peer never comes hangs here, as a completed post would have in
    // the wait.
    auto abandon = [&](Status failed) {
      for (MPI_Request& r : requests) {
        if (r != MPI_REQUEST_NULL) MPI_Cancel(&r);
      }
      MPI_Waitall(static_cast<int>(requests.size()), requests.data(), MPI_STATUSES_IGNORE);
      return failed;
    };
    auto post = [&](bool receive, char* data, uint64_t bytes, int peer) -> Status {
      for (uint64_t done = 0; done < bytes; done += kMaxPiece) {
        const int n = static_cast<int>(std::min(kMaxPiece, bytes - done));
        requests.push_back(MPI_REQUEST_NULL);
        if (receive) {
          DCP_MPI(MPI_Irecv(data + done, n, MPI_BYTE, peer, kAllToAllTag, comm_, &requests.back()));
        } else {
          DCP_MPI(MPI_Isend(data + done, n, MPI_BYTE, peer, kAllToAllTag, comm_, &requests.back()));
        }
      }
      return Status::OK();
    };
    for (int step = 1; step < size_; ++step) {  // receives first, from the nearest ranks on
      const int from = (rank_ - step + size_) % size_;
      (*recv)[from].resize(recv_sizes[from]);
      if (Status s = post(true, (*recv)[from].data(), recv_sizes[from], from); !s.ok()) return abandon(s);
    }
    for (int step = 1; step < size_; ++step) {
      const int to = (rank_ + step) % size_;
      if (Status s = post(false, const_cast<char*>(send[to].data()), send_sizes[to], to); !s.ok()) {
        return abandon(s);
      }
    }
    (*recv)[rank_] = send[rank_];
    // On an error MPI_Waitall leaves the requests it did not complete active.
    const Status waited = MpiStatus(
        MPI_Waitall(static_cast<int>(requests.size()), requests.data(), MPI_STATUSES_IGNORE), "MPI_Waitall");
    return waited.ok() ? waited : abandon(waited);
  }

  Result<std::unique_ptr<Communicator>> Duplicate() override { return DupOf(comm_); }

  bool SupportsConcurrentDuplicates() const override {
    int provided = MPI_THREAD_SINGLE;
    MPI_Query_thread(&provided);
    return provided == MPI_THREAD_MULTIPLE;
  }

 private:
  Status ExchangeSizes(uint64_t mine, std::vector<uint64_t>* sizes) {
    sizes->assign(static_cast<size_t>(size_), 0);
    DCP_MPI_AWAIT(MPI_Iallgather, &mine, 1, MPI_UINT64_T, sizes->data(), 1, MPI_UINT64_T, comm_);
    return Status::OK();
  }
  Status BcastBytes(char* data, uint64_t n, int root) {
    for (uint64_t done = 0; done < n; done += kMaxPiece) {
      const int piece = static_cast<int>(std::min(kMaxPiece, n - done));
      DCP_MPI(MPI_Bcast(data + done, piece, MPI_BYTE, root, comm_));
    }
    return Status::OK();
  }
  Status SendBytes(const char* data, uint64_t n, int to) {
    for (uint64_t done = 0; done < n; done += kMaxPiece) {
      const int piece = static_cast<int>(std::min(kMaxPiece, n - done));
      DCP_MPI(MPI_Send(data + done, piece, MPI_BYTE, to, 9, comm_));
    }
    return Status::OK();
  }
  Status RecvBytes(char* data, uint64_t n, int from) {
    for (uint64_t done = 0; done < n; done += kMaxPiece) {
      const int piece = static_cast<int>(std::min(kMaxPiece, n - done));
      DCP_MPI(MPI_Recv(data + done, piece, MPI_BYTE, from, 9, comm_, MPI_STATUS_IGNORE));
    }
    return Status::OK();
  }

  MPI_Comm comm_;
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace

Result<std::unique_ptr<MpiRuntime>> MpiRuntime::Init(int* argc, char*** argv) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  int provided = 0;
  if (initialized) {
    MPI_Query_thread(&provided);
    return std::unique_ptr<MpiRuntime>(new MpiRuntime(false, provided));
  }
  DCP_MPI(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided));
  return std::unique_ptr<MpiRuntime>(new MpiRuntime(true, provided));
}

MpiRuntime::~MpiRuntime() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (owns_ && !finalized) MPI_Finalize();
}

Result<std::unique_ptr<Communicator>> NewMpiWorldCommunicator() {
  return MpiCommunicator::DupOf(MPI_COMM_WORLD);
}

Result<std::unique_ptr<Communicator>> NewMpiCommunicatorFromFortranHandle(int64_t fortran_handle) {
  return MpiCommunicator::DupOf(MPI_Comm_f2c(static_cast<MPI_Fint>(fortran_handle)));
}

}  // namespace dcp
