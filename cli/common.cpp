// Helpers every command uses (cli.h).
#include <limits.h>
#include <sys/stat.h>

#include <cstdio>
#include <iostream>

#include "cli.h"
#include "sipxdp/guard.h"
#include "sipxdp/manifest.h"

namespace sipxdp::cli {

std::string abs_path(const std::string& p) {
  char buf[PATH_MAX];
  if (realpath(p.c_str(), buf)) return buf;
  return p;
}

bool exists(const std::string& path) {
  struct stat sb {};
  return stat(path.c_str(), &sb) == 0;
}

bool is_staging(const Instance& in) {
  return in.dir == staging_dir(in.ifname, in.netns);
}

// Whole instances visible from this invocation: those of --netns, or of the host.
std::vector<Instance> instances(const Global& g) {
  std::vector<Instance> out;
  for (auto& in : list_instances())
    if (in.netns == g.netns && !is_staging(in)) out.push_back(in);
  return out;
}

// The interface named, or the only one attached.
std::string resolve_iface(const std::string& iface, const Global& g) {
  if (!iface.empty()) return iface;
  auto all = instances(g);
  if (all.empty()) {
    for (auto& in : list_instances())
      if (in.netns == g.netns) fail(make_error(in.ifname + g.where() + ": " + in.why));
    fail(make_error("no interface is attached" + g.where()));
  }
  if (all.size() > 1) {
    std::string names;
    for (auto& in : all) names += (names.empty() ? "" : ", ") + in.ifname;
    fail(make_error("several interfaces are attached" + g.where() + " (" + names + "); name one"));
  }
  return all[0].ifname;
}

// The instance of `iface`. With `must_filter`, refuses one that is not
// filtering (defunct, orphaned or interrupted): writing a policy to it would
// report success while nothing is enforced.
Datapath open_instance(const std::string& iface, const Global& g, bool must_filter) {
  std::string dir = pin_dir(iface, g.netns), staging = staging_dir(iface, g.netns);
  if (!exists(dir)) {
    if (exists(staging)) fail(make_error(iface + g.where() + ": " + inspect_instance(staging).why));
    fail(make_error(iface + g.where() + " is not attached"));
  }
  Instance in = inspect_instance(dir);
  if (in.state != Instance::State::ok) {
    if (must_filter) fail(make_error(iface + g.where() + ": " + in.why));
    std::cerr << "sipxdp: warning: " << iface << g.where() << ": " << in.why << "\n";
  }
  return must(Datapath::open_pinned(dir));
}

// Reads and checks a policy as apply would: parse, the stored size; prints its warnings.
Policy load_checked(const std::string& file, std::string* text) {
  std::string t;
  Policy p = must(load_policy_file(file, &t));
  for (auto& w : p.warnings) std::cerr << "sipxdp: warning: " << w << "\n";
  if (auto st = check_manifest_fits(p, t); !st) fail(make_error(file + ": " + st.error().what));
  if (text) *text = std::move(t);
  return p;
}

// Refuses (unless forced) a policy that would drop the SSH session this runs in.
void check_lockout(const Policy& p, const std::string& iface, bool force, const Global& g) {
  if (force) return;
  auto ns = must(NetnsScope::enter(g.netns));
  if (auto why = ssh_lockout(p, iface, std::getenv("SSH_CONNECTION"))) fail(make_error(*why));
}

std::string human(double v) {
  const char* units[] = {"", "K", "M", "G", "T", "P"};
  int u = 0;
  while (v >= 100000 && u < 5) v /= 1000, ++u;
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.0f%s", v, units[u]);
  return buf;
}

std::string rate(double v, const char* unit) {
  const char* units[] = {"", "k", "M", "G", "T"};
  int u = 0;
  while (v >= 1000 && u < 4) v /= 1000, ++u;
  char buf[32];
  std::snprintf(buf, sizeof(buf), u ? "%.1f%s%s" : "%.0f%s%s", v, units[u], unit);
  return buf;
}

std::string when(uint64_t t) {
  if (!t) return "-";
  char buf[64];
  time_t tt = static_cast<time_t>(t);
  strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", localtime(&tt));
  return buf;
}

void print_lines(const std::vector<std::string>& lines) {
  for (auto& l : lines) std::cout << "  " << l << "\n";
}

}  // namespace sipxdp::cli
