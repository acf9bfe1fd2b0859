// Copyright (c) dcp authors.
//
// dcp-inspect: see, verify, compare and extract what a dcp store holds.
// A thin main over engine/inspect (the command line is inspect::RunCli).

#include "engine/inspect/cli.h"

int main(int argc, char** argv) { return dcp::inspect::RunCli(argc, argv); }
