// The command line's shared parts: the global options, the way out on an
// error (one line, exit status 1), helpers every command uses, the command
// interface, and the operations several commands share (attach, detach,
// apply, stop signals).
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "sipxdp/datapath.h"
#include "sipxdp/instance.h"
#include "sipxdp/policy.h"
#include "sipxdp/result.h"

namespace sipxdp::cli {

using json = nlohmann::json;

struct Global {
  std::string netns;
  std::string config_dir;
  bool verbose = false;
  std::string where() const { return netns.empty() ? "" : " in network namespace " + netns; }
  std::string label(const std::string& iface) const { return iface + (netns.empty() ? "" : " (netns " + netns + ")"); }
};

// The way out of a command on an error: one line on stderr, exit status 1.
struct Failure {
  Error error;
};

[[noreturn]] inline void fail(Error e) {
  throw Failure{std::move(e)};
}

template <typename T>
T must(Result<T> r) {
  if (!r) fail(r.error());
  return std::move(r.value());
}

inline void must(const Status& s) {
  if (!s) fail(s.error());
}

std::string abs_path(const std::string& p);

bool exists(const std::string& path);

bool is_staging(const Instance& in);
std::vector<Instance> instances(const Global& g);
std::string resolve_iface(const std::string& iface, const Global& g);
Datapath open_instance(const std::string& iface, const Global& g, bool must_filter);
Policy load_checked(const std::string& file, std::string* text);
void check_lockout(const Policy& p, const std::string& iface, bool force, const Global& g);

std::string human(double v);

std::string rate(double v, const char* unit);

std::string when(uint64_t t);

void print_lines(const std::vector<std::string>& lines);

class Command {
 public:
  virtual ~Command() = default;
  virtual const char* name() const = 0;
  virtual const char* help() const = 0;
  virtual bool needs_root() const { return true; }
  virtual void define(CLI::App& app) = 0;
  virtual void run(const Global& g) = 0;
};

struct AttachArgs {
  std::string iface, policy;
  XdpMode mode = XdpMode::auto_;
  bool force = false, json = false;
};
void do_attach(const AttachArgs& a, const Global& g);
// Removes the instance of `iface` (with --netns: of that namespace), or with
// `all` every instance of the namespace; `everywhere`: of every namespace.
void do_detach(const std::string& iface, bool all, bool everywhere, const Global& g);

struct ApplyArgs {
  std::string file, iface;
  bool dry_run = false, force = false, json = false;
  unsigned confirm = 0;
};
void do_apply(const ApplyArgs& a, const Global& g);
// Applies `a.file` whenever it changes, until SIGTERM or SIGINT.
void watch_and_apply(const ApplyArgs& a, const Global& g);

// SIGTERM and SIGINT set a flag instead of killing (loops check it).
void catch_stop_signals();
bool stop_requested();

// The commands of observe.cpp: events, capture, exporter.
std::vector<std::unique_ptr<Command>> observe_commands();
// bans, ban, trusted (cli/sources.cpp).
std::vector<std::unique_ptr<Command>> sources_commands();
// Logs the drop events of the instance at `dir` (one line each on stdout,
// at most `per_minute` lines a minute, then a count of what was left out)
// until a stop signal; for the service.
void log_events(const std::string& dir, const std::string& iface, const std::string& netns, unsigned per_minute);

}  // namespace sipxdp::cli
