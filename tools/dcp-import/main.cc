// Copyright (c) dcp authors.
//
// dcp-import: bring a safetensors model into a dcp store.
// A thin main over engine/interop (the command line is interop::RunImportCli).

#include "engine/interop/cli.h"

int main(int argc, char** argv) { return dcp::interop::RunImportCli(argc, argv); }
