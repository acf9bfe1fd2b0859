// Copyright (c) dcp authors.
//
// dcp-import's command line (tools/dcp-import is a thin main over it):
//
//   dcp-import ROOT SOURCE [--step N] [--rules FILE] [--keep-unmatched]
//              [--overwrite] [--incremental] [--chunk-bytes N]
//              [--compression none|lz4|lz4-byte-plane] [--threads N] [--json]
//
// SOURCE is a .safetensors file or a sharded model's *.safetensors.index.json.
// Exit codes: 0 imported, 1 an error (a message naming the file, tensor or
// rule), 2 bad usage.

#ifndef DCP_ENGINE_INTEROP_CLI_H_
#define DCP_ENGINE_INTEROP_CLI_H_

namespace dcp::interop {

int RunImportCli(int argc, char** argv);

}  // namespace dcp::interop

#endif  // DCP_ENGINE_INTEROP_CLI_H_
