// Copyright (c) dcp authors.
//
// CountingCommunicator: forwards every collective to another communicator
// and counts them, so that tests can state how many collective rounds a
// protocol takes (at 1k-16k ranks, rounds are what a checkpoint pays for).
// Duplicates are not counted: they are the async put's own channel.
//
// Thread safety: as the communicator it wraps; rounds() may be read once the
// collectives have returned.

#ifndef DCP_TESTS_TESTING_COUNTING_COMMUNICATOR_H_
#define DCP_TESTS_TESTING_COUNTING_COMMUNICATOR_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dcp/communicator.h"

namespace dcp::testing {

class CountingCommunicator : public Communicator {
 public:
  explicit CountingCommunicator(Communicator* inner) : inner_(inner) {}

  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }
  Status Barrier() override {
    ++rounds_;
    return inner_->Barrier();
  }
  Status Broadcast(int root, std::string* bytes) override {
    ++rounds_;
    return inner_->Broadcast(root, bytes);
  }
  Status AllGather(std::string_view local, std::vector<std::string>* all) override {
    ++rounds_;
    return inner_->AllGather(local, all);
  }
  Status Gather(int root, std::string_view local, std::vector<std::string>* all) override {
    ++rounds_;
    return inner_->Gather(root, local, all);
  }
  Status AllToAll(const std::vector<std::string>& send, std::vector<std::string>* recv) override {
    ++rounds_;
    return inner_->AllToAll(send, recv);
  }
  Result<std::unique_ptr<Communicator>> Duplicate() override { return inner_->Duplicate(); }
  bool SupportsConcurrentDuplicates() const override { return inner_->SupportsConcurrentDuplicates(); }

  // Collectives since construction or the last Reset.
  int rounds() const { return rounds_; }
  void Reset() { rounds_ = 0; }

 private:
  Communicator* inner_;
  int rounds_ = 0;
};

}  // namespace dcp::testing

#endif  // DCP_TESTS_TESTING_COUNTING_COMMUNICATOR_H_
