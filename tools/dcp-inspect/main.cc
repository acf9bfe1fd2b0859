// Copyright (c) dcp authors.
//
// dcp-inspect: see what a dcp store holds.
//
//   dcp-inspect ROOT [--json]              committed steps
//   dcp-inspect ROOT show STEP [--json]    tensors and objects of one step
//
// A thin main over engine/inspect. Exit code: 0 on success, 1 on an error
// (printed to stderr), 2 on bad usage.

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "engine/inspect/inspect.h"

int main(int argc, char** argv) {
  CLI::App app{"dcp-inspect: see what a dcp checkpoint store holds"};
  std::string root;
  bool json = false;
  app.add_option("root", root, "store root directory")->required();
  app.add_flag("--json", json, "print JSON instead of tables");
  auto* ls = app.add_subcommand("ls", "list committed steps (the default)");
  auto* show = app.add_subcommand("show", "tensors and objects of one step");
  uint64_t step = 0;
  show->add_option("step", step, "step number")->required();
  app.require_subcommand(0, 1);
  ls->fallthrough();  // "--json" may follow the subcommand
  show->fallthrough();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  std::string out;
  dcp::Status status;
  if (show->parsed()) {
    auto md = dcp::inspect::ShowStep(root, step);
    status = md.status();
    if (md.ok()) out = json ? dcp::inspect::RenderStepJson(*md) : dcp::inspect::RenderStepTable(*md);
  } else {
    (void)ls;
    auto steps = dcp::inspect::ListSteps(root);
    status = steps.status();
    if (steps.ok()) out = json ? dcp::inspect::RenderStepsJson(*steps) : dcp::inspect::RenderStepsTable(*steps);
  }
  if (!status.ok()) {
    std::fprintf(stderr, "dcp-inspect: %s\n", status.ToString().c_str());
    return 1;
  }
  std::fputs(out.c_str(), stdout);
  return 0;
}
