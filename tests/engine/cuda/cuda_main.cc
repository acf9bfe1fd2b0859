// Copyright (c) dcp authors.
//
// Runner of the CUDA tests: skips (exit 77) when no device answers.

#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>

#include "engine/cuda/device.h"

int main(int argc, char** argv) {
  Catch::Session session;
  if (int rc = session.applyCommandLine(argc, argv); rc != 0) return rc;
  if (!session.config().listTestNamesOnly() && dcp::cuda::DeviceCount() == 0) {
    std::printf("no CUDA device answers: CUDA tests skipped\n");
    return 77;
  }
  return session.run();
}
