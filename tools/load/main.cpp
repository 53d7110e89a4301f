// ringlink-load: drives any WebSocket server over ringlink's own client
// links and reports throughput, latency percentiles, fairness and every error
// it saw. See usage_text() in options.cpp for the command line.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "tools/load/options.hpp"
#include "tools/load/processes.hpp"
#include "tools/load/pubsub.hpp"
#include "tools/load/report.hpp"
#include "tools/load/runner.hpp"

namespace {

enum Exit : int { exit_ok = 0, exit_errors = 1, exit_usage = 2, exit_cannot_run = 3 };

int run_pubsub_main(const ringlink::load::Options& o) {
  ringlink::load::PubsubResults r;
  std::string error;
  if (!ringlink::load::run_pubsub(o, o.progress || ::isatty(STDERR_FILENO) == 1, r, error)) {
    std::fprintf(stderr, "ringlink-load: %s\n", error.c_str());
    return exit_cannot_run;
  }
  ringlink::load::print_pubsub_report(stdout, o, r);
  std::fflush(stdout);
  if (!o.json_path.empty() && !ringlink::load::write_pubsub_json(o.json_path, o, r, error)) {
    std::fprintf(stderr, "ringlink-load: %s\n", error.c_str());
    return exit_cannot_run;
  }
  if (r.errors() > o.max_errors) {
    std::fprintf(stderr, "ringlink-load: %llu errors (more than --max-errors %llu)\n", (unsigned long long)r.errors(),
                 (unsigned long long)o.max_errors);
    return exit_errors;
  }
  return exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  ringlink::load::Options o;
  std::string error;
  switch (ringlink::load::parse_options(args, o, error)) {
    case ringlink::load::ParseOutcome::help:
      std::fputs(ringlink::load::usage_text(), stdout);
      std::fputs(ringlink::load::pubsub_usage_text(), stdout);
      return exit_ok;
    case ringlink::load::ParseOutcome::error:
      std::fprintf(stderr, "ringlink-load: %s\n", error.c_str());
      std::fputs(ringlink::load::usage_text(), stderr);
      return exit_usage;
    case ringlink::load::ParseOutcome::run:
      break;
  }
  signal(SIGPIPE, SIG_IGN);
  if (o.pubsub.enabled) return run_pubsub_main(o);

  ringlink::load::Results r;
  const bool progress = o.progress || ::isatty(STDERR_FILENO) == 1;
  if (!(o.processes > 1 ? ringlink::load::run_load_processes(o, progress, r, error)
                        : ringlink::load::run_load(o, progress, r, error))) {
    std::fprintf(stderr, "ringlink-load: %s\n", error.c_str());
    return exit_cannot_run;
  }
  ringlink::load::print_report(stdout, o, r);
  std::fflush(stdout);
  int status = r.errors() > o.max_errors ? exit_errors : exit_ok;
  if (!o.json_path.empty() && !ringlink::load::write_json(o.json_path, o, r, error)) {
    std::fprintf(stderr, "ringlink-load: %s\n", error.c_str());
    status = exit_cannot_run;
  }
  if (!o.plot_path.empty()) {
    // A missing plot is reported but does not fail the run: the figures are
    // in the report (and the JSON) either way.
    std::string message;
    (void)ringlink::load::write_plot(o.plot_path, o, r, message);
    std::fprintf(stderr, "ringlink-load: %s\n", message.c_str());
  }
  if (r.errors() > o.max_errors)
    std::fprintf(stderr, "ringlink-load: %llu errors (more than --max-errors %llu)\n", (unsigned long long)r.errors(),
                 (unsigned long long)o.max_errors);
  return status;
}
