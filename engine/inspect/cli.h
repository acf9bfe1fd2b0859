// Copyright (c) dcp authors.
//
// The dcp-inspect command line (see cli.cc for its subcommands): parses
// argv, runs the subcommand, prints to stdout/stderr. The tool's main and the
// Python package's `python3 -m dcp.inspect` both call it.
//
// Thread safety: one call at a time per process (it writes stdout/stderr).

#ifndef DCP_ENGINE_INSPECT_CLI_H_
#define DCP_ENGINE_INSPECT_CLI_H_

namespace dcp::inspect {

// Returns the exit code: 0 success, 1 an error or a problem found, 2 bad usage.
int RunCli(int argc, char** argv);

}  // namespace dcp::inspect

#endif  // DCP_ENGINE_INSPECT_CLI_H_
