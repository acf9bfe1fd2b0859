// Copyright (c) dcp authors.

#include "engine/coord/local_communicator.h"

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace dcp {
namespace {

// State shared by the ranks of one in-process group.
class LocalGroup {
 public:
  explicit LocalGroup(int n) : n_(n), slots_(static_cast<size_t>(n)) {}

  int size() const { return n_; }

  // Deposits `mine` (one string per destination rank, or one for all), waits
  // for every rank, calls `consume(slots)` with all deposits, then waits until
  // every rank has consumed.
  void Exchange(int rank, std::vector<std::string> mine,
                const std::function<void(const std::vector<std::vector<std::string>>&)>& consume) {
    std::unique_lock<std::mutex> lock(mu_);
    slots_[static_cast<size_t>(rank)] = std::move(mine);
    Arrive(lock, &arrived_, &arrive_gen_);
    consume(slots_);
    Arrive(lock, &departed_, &depart_gen_);
  }

  // The group created by this collective Duplicate (rank 0 creates it).
  std::shared_ptr<LocalGroup> DuplicateGroup(int rank) {
    std::shared_ptr<LocalGroup> child;
    std::unique_lock<std::mutex> lock(mu_);
    if (rank == 0) pending_child_ = std::make_shared<LocalGroup>(n_);
    Arrive(lock, &arrived_, &arrive_gen_);
    child = pending_child_;
    Arrive(lock, &departed_, &depart_gen_);
    return child;
  }

 private:
  // A reusable barrier on (counter, generation). REQUIRES: lock held.
  void Arrive(std::unique_lock<std::mutex>& lock, int* counter, uint64_t* generation) {
    const uint64_t gen = *generation;
    if (++*counter == n_) {
      *counter = 0;
      ++*generation;
      cv_.notify_all();
    } else {
      cv_.wait(lock, [&] { return *generation != gen; });
    }
  }

  const int n_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::vector<std::string>> slots_;
  int arrived_ = 0;
  int departed_ = 0;
  uint64_t arrive_gen_ = 0;
  uint64_t depart_gen_ = 0;
  std::shared_ptr<LocalGroup> pending_child_;
};

class LocalCommunicator : public Communicator {
 public:
  LocalCommunicator(std::shared_ptr<LocalGroup> group, int rank) : group_(std::move(group)), rank_(rank) {}

  int rank() const override { return rank_; }
  int size() const override { return group_->size(); }

  Status Barrier() override {
    group_->Exchange(rank_, {}, [](const auto&) {});
    return Status::OK();
  }

  Status Broadcast(int root, std::string* bytes) override {
    if (root < 0 || root >= size()) return Status::InvalidArgument("broadcast root out of range");
    std::vector<std::string> mine;
    if (rank_ == root) mine.push_back(*bytes);
    group_->Exchange(rank_, std::move(mine), [&](const auto& slots) {
      if (rank_ != root) *bytes = slots[static_cast<size_t>(root)][0];
    });
    return Status::OK();
  }

  Status AllGather(std::string_view local, std::vector<std::string>* all) override {
    group_->Exchange(rank_, {std::string(local)}, [&](const auto& slots) {
      all->resize(slots.size());
      for (size_t r = 0; r < slots.size(); ++r) (*all)[r] = slots[r][0];
    });
    return Status::OK();
  }

  Status Gather(int root, std::string_view local, std::vector<std::string>* all) override {
    if (root < 0 || root >= size()) return Status::InvalidArgument("gather root out of range");
    group_->Exchange(rank_, {std::string(local)}, [&](const auto& slots) {
      all->clear();
      if (rank_ != root) return;
      all->resize(slots.size());
      for (size_t r = 0; r < slots.size(); ++r) (*all)[r] = slots[r][0];
    });
    return Status::OK();
  }

  Status AllToAll(const std::vector<std::string>& send, std::vector<std::string>* recv) override {
    if (static_cast<int>(send.size()) != size()) {
      return Status::InvalidArgument("all-to-all needs one message per rank");
    }
    group_->Exchange(rank_, send, [&](const auto& slots) {
      recv->resize(slots.size());
      for (size_t r = 0; r < slots.size(); ++r) (*recv)[r] = slots[r][static_cast<size_t>(rank_)];
    });
    return Status::OK();
  }

  Result<std::unique_ptr<Communicator>> Duplicate() override {
    return std::unique_ptr<Communicator>(
        std::make_unique<LocalCommunicator>(group_->DuplicateGroup(rank_), rank_));
  }

 private:
  std::shared_ptr<LocalGroup> group_;
  int rank_;
};

}  // namespace

std::vector<std::unique_ptr<Communicator>> NewLocalCommunicators(int n) {
  auto group = std::make_shared<LocalGroup>(n);
  std::vector<std::unique_ptr<Communicator>> comms;
  for (int r = 0; r < n; ++r) comms.push_back(std::make_unique<LocalCommunicator>(group, r));
  return comms;
}

std::unique_ptr<Communicator> NewSelfCommunicator() { return std::move(NewLocalCommunicators(1)[0]); }

}  // namespace dcp
