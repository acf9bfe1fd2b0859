// Copyright (c) dcp authors.
// The Catch2 runner, compiled once for every test binary.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
