// sipxdp: the command line. Parses arguments, calls libsipxdp, prints.
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/stat.h>

#include "sipxdp/datapath.h"
#include "sipxdp/guard.h"
#include "sipxdp/policy.h"

using namespace sipxdp;
using json = nlohmann::json;

namespace {

struct Global {
  std::string netns;
  bool verbose = false;
};

[[noreturn]] void die(const Error& e, const Global& g) {
  bool log = !e.detail.empty() && e.err != EPERM;
  std::cerr << "sipxdp: " << one_line(e.message()) << (log && !g.verbose ? " (--verbose shows the kernel's log)" : "")
            << "\n";
  if (log && g.verbose) std::cerr << e.detail;
  std::exit(1);
}

template <typename T>
T must(Result<T> r, const Global& g) {
  if (!r) die(r.error(), g);
  return std::move(r.value());
}

std::string abs_path(const std::string& p) {
  char buf[PATH_MAX];
  if (realpath(p.c_str(), buf)) return buf;
  return p;
}

bool is_staging(const Instance& in) {
  return in.dir == staging_dir(in.ifname, in.netns);
}

// Whole instances visible from this invocation: those of --netns, or of the root netns.
std::vector<Instance> instances(const Global& g) {
  std::vector<Instance> out;
  for (auto& in : list_instances())
    if (in.netns == g.netns && !is_staging(in)) out.push_back(in);
  return out;
}

std::string resolve_iface(const std::string& iface, const Global& g) {
  if (!iface.empty()) return iface;
  auto all = instances(g);
  std::string where = g.netns.empty() ? "" : " in network namespace " + g.netns;
  if (all.empty()) die(make_error("no interface is attached" + where), g);
  if (all.size() > 1) {
    std::string names;
    for (auto& in : all) names += (names.empty() ? "" : ", ") + in.ifname;
    die(make_error("several interfaces are attached" + where + " (" + names + "); name one"), g);
  }
  return all[0].ifname;
}

// Opens the instance of `iface`. With `must_filter`, refuses one that is not
// filtering (a defunct, orphaned or interrupted instance): writing a policy
// to it would report success while nothing is enforced.
Datapath open_instance(const std::string& iface, const Global& g, bool must_filter) {
  std::string dir = pin_dir(iface, g.netns);
  std::string where = g.netns.empty() ? "" : " in network namespace " + g.netns;
  struct stat sb {};
  if (stat(dir.c_str(), &sb) != 0) {
    if (stat(staging_dir(iface, g.netns).c_str(), &sb) == 0)
      die(make_error(iface + where + ": " + inspect_instance(staging_dir(iface, g.netns)).why), g);
    die(make_error(iface + where + " is not attached"), g);
  }
  Instance in = inspect_instance(dir);
  if (in.state != Instance::State::ok) {
    if (must_filter) die(make_error(iface + where + ": " + in.why), g);
    std::cerr << "sipxdp: warning: " << iface << where << ": " << in.why << "\n";
  }
  return must(Datapath::open_pinned(dir), g);
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

std::string ago(uint64_t t) {
  if (!t) return "-";
  char buf[64];
  time_t tt = static_cast<time_t>(t);
  strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", localtime(&tt));
  return buf;
}

// ---- attach -------------------------------------------------------------

struct AttachCmd {
  std::string iface, policy, mode = "auto";
  bool force = false;
};

void check_lockout(const Policy& p, const std::string& iface, bool force, const Global& g);
Policy load_checked(const std::string& file, std::string* text, const Global& g);
bool cancel_pending(const std::string& dir);

void run_attach(const AttachCmd& c, const Global& g) {
  std::string text;
  Policy p = load_checked(c.policy, &text, g);
  XdpMode mode = must(parse_xdp_mode(c.mode), g);
  std::unique_ptr<NetnsScope> ns;
  if (!g.netns.empty()) ns = must(NetnsScope::enter(g.netns), g);
  check_lockout(p, c.iface, c.force, g);
  Datapath dp = must(Datapath::load(p.flows.table_size.value_or(SIPXDP_FLOWS_DEFAULT)), g);
  auto st = dp.attach_and_pin({c.iface, g.netns, mode}, p, text, abs_path(c.policy));
  if (!st) die(st.error(), g);
  auto li = Datapath::link_info(pin_dir(c.iface, g.netns));
  std::cout << "attached to " << c.iface << (g.netns.empty() ? "" : " (netns " + g.netns + ")") << ": "
            << p.rules.size() << " rules, default " << action_name(p.default_action);
  if (li) std::cout << ", program id " << li->prog_id;
  std::cout << "\n";
}

// ---- detach -------------------------------------------------------------

void run_detach(const std::string& iface_arg, bool all, const Global& g) {
  std::string where = g.netns.empty() ? "" : " in network namespace " + g.netns;
  std::vector<std::string> dirs;
  if (all) {
    for (auto& in : list_instances())
      if (in.netns == g.netns) dirs.push_back(in.dir);
  } else {
    struct stat sb {};
    std::string dir = pin_dir(iface_arg, g.netns), staging = staging_dir(iface_arg, g.netns);
    if (stat(dir.c_str(), &sb) == 0) dirs.push_back(dir);
    if (stat(staging.c_str(), &sb) == 0) dirs.push_back(staging);
    if (dirs.empty()) {
      // No pins: a filter may still be there (left by an instance whose pins vanished).
      if (!g.netns.empty() && !netns_exists(g.netns))
        die(make_error("nothing attached to " + iface_arg + where + " (no such network namespace)"), g);
      auto ns = must(NetnsScope::enter(g.netns), g);
      if (!must(Datapath::detach_stray(iface_arg), g)) die(make_error("nothing attached to " + iface_arg + where), g);
      std::cout << "removed the sipxdp egress filter left on " << iface_arg << where
                << " without pins (a clsact qdisc stays: sipxdp cannot tell who created it)\n";
      return;
    }
  }
  for (auto& d : dirs) {
    std::string name = instance_name(inspect_instance(d));
    cancel_pending(d);
    auto st = Datapath::detach(d);
    if (!st) die(st.error(), g);
    std::cout << "detached " << name << "\n";
  }
}

// ---- status -------------------------------------------------------------

std::string flows_text(const json& j) {
  if (!j.value("stateful", false)) return "stateful replies off";
  if (!j.contains("flows")) return "-";
  const json& f = j["flows"];
  uint64_t n = f.value("entries", uint64_t(0)), cap = f.value("capacity", uint64_t(1));
  char buf[160];
  std::snprintf(buf, sizeof(buf), "%llu/%llu entries (%.1f%%), %llu live", static_cast<unsigned long long>(n),
                static_cast<unsigned long long>(cap), 100.0 * double(n) / double(cap ? cap : 1),
                static_cast<unsigned long long>(f.value("live", uint64_t(0))));
  return buf;
}

void run_status(bool as_json, bool all, const Global& g) {
  json out = json::array();
  // From the host's view, instances that need attention in any namespace show too.
  std::vector<Instance> shown;
  for (auto& in : list_instances())
    if (all || in.netns == g.netns || (g.netns.empty() && in.state != Instance::State::ok)) shown.push_back(in);
  for (auto& in : shown) {
    json j;
    j["iface"] = in.ifname;
    j["netns"] = in.netns;
    j["pins"] = in.dir;
    j["state"] = instance_state_name(in.state);
    if (!in.why.empty()) j["problem"] = in.why;
    j["attached"] = in.state == Instance::State::ok;
    if (is_staging(in)) {
      out.push_back(j);
      continue;
    }
    if (auto li = Datapath::link_info(in.dir)) {
      j["prog_id"] = li->prog_id;
      j["link_id"] = li->link_id;
    }
    std::string mode = "-";
    if (in.state == Instance::State::ok) {
      auto ns = NetnsScope::enter(in.netns);
      unsigned idx = ns ? if_nametoindex(in.ifname.c_str()) : 0;
      LIBBPF_OPTS(bpf_xdp_query_opts, q);
      if (idx && bpf_xdp_query(static_cast<int>(idx), 0, &q) == 0) {
        mode = q.attach_mode == XDP_ATTACHED_DRV     ? "native"
               : q.attach_mode == XDP_ATTACHED_SKB   ? "generic"
               : q.attach_mode == XDP_ATTACHED_HW    ? "offload"
               : q.attach_mode == XDP_ATTACHED_MULTI ? "multi"
                                                     : "none";
      }
    }
    j["mode"] = mode;
    auto dp = Datapath::open_pinned(in.dir);
    if (dp) {
      auto m = dp->manifest();
      if (m) {
        j["requested_mode"] = m->mode;
        j["policy"] = m->policy_path;
        j["sha256"] = m->policy_sha256;
        j["rules"] = m->rules.size();
        j["default_action"] = m->default_action;
        j["applied_at"] = m->applied_at;
        j["generation"] = m->generation;
        j["dscp_rules"] = m->dscp.size();
        j["stateful"] = m->stateful;
      }
      if (auto ft = dp->flow_table())
        j["flows"] = {{"entries", ft->entries}, {"live", ft->live}, {"capacity", ft->capacity}};
    }
    out.push_back(j);
  }
  if (as_json) {
    std::cout << out.dump(2) << "\n";
    return;
  }
  if (out.empty()) {
    std::cout << "no interface is attached" << (g.netns.empty() ? "" : " in network namespace " + g.netns) << "\n";
    return;
  }
  for (auto& j : out) {
    std::string ns = j["netns"].get<std::string>(), ifname = j["iface"].get<std::string>();
    std::cout << ifname << (ns.empty() ? "" : " (netns " + ns + ")") << ": ";
    if (!j.value("attached", false)) {
      std::cout << "NOT FILTERING (" << j.value("state", "?") << "): " << j.value("problem", "") << "\n"
                << "  remove it: sipxdp" << (ns.empty() ? "" : " --netns " + ns) << " detach " << ifname << "\n";
      continue;
    }
    std::cout << "xdp " << j.value("mode", "-") << ", program id " << j.value("prog_id", 0u) << "\n"
              << "  policy  " << j.value("policy", "-") << "\n"
              << "  sha256  " << j.value("sha256", "-") << "\n"
              << "  rules   " << j.value("rules", 0u) << ", default " << j.value("default_action", "-") << "\n"
              << "  dscp    " << j.value("dscp_rules", 0u) << " rules (tc egress)\n"
              << "  flows   " << flows_text(j) << "\n"
              << "  applied " << ago(j.value("applied_at", uint64_t(0))) << "\n"
              << "  pins    " << j["pins"].get<std::string>() << "\n";
  }
}

// ---- stats --------------------------------------------------------------

struct StatsCmd {
  std::string iface;
  bool as_json = false;
  bool exact = false;
  bool all = false;
  double watch = 0;
  bool watching = false;
};

json stats_json(const std::string& ifname, const Manifest& m, const std::vector<StatRow>& rows) {
  json j;
  j["iface"] = ifname;
  j["policy"] = m.policy_path;
  j["sha256"] = m.policy_sha256;
  j["rules"] = json::array();
  j["patterns"] = json::array();
  j["dscp"] = json::array();
  j["builtin"] = json::array();
  for (auto& r : rows) {
    json x = {{"name", r.name},
              {"match", r.match},
              {"action", r.action},
              {"packets", r.value.packets},
              {"bytes", r.value.bytes}};
    j[r.builtin ? "builtin" : r.pattern ? "patterns" : r.dscp ? "dscp" : "rules"].push_back(x);
  }
  return j;
}

void run_stats(const StatsCmd& c, const Global& g) {
  std::vector<std::string> targets;
  if (c.iface.empty()) {
    for (auto& in : instances(g)) targets.push_back(in.ifname);
    if (targets.empty())
      die(make_error("no interface is attached" +
                     (g.netns.empty() ? std::string() : " in network namespace " + g.netns)),
          g);
  } else {
    targets.push_back(c.iface);
  }
  std::vector<Datapath> dps;
  for (auto& i : targets) dps.push_back(open_instance(i, g, false));

  std::map<std::string, CounterValue> prev;
  auto prev_t = std::chrono::steady_clock::now();
  bool first = true;
  for (;;) {
    auto now = std::chrono::steady_clock::now();
    double dt = std::chrono::duration<double>(now - prev_t).count();
    json all = json::array();
    std::string screen;
    for (size_t i = 0; i < dps.size(); ++i) {
      Manifest m = must(dps[i].manifest(), g);
      auto rows = must(dps[i].stats(), g);
      if (c.as_json) {
        all.push_back(stats_json(targets[i], m, rows));
        continue;
      }
      char line[512];
      screen += "sipxdp " + targets[i] + (g.netns.empty() ? "" : " (netns " + g.netns + ")") + "  policy " +
                m.policy_path + "  sha256 " + m.policy_sha256.substr(0, 12) + "\n";
      if (c.watching)
        std::snprintf(line, sizeof(line), "%10s %10s %10s %10s  %-6s %-24s %s\n", "pkts", "bytes", "pps", "bit/s",
                      "action", "rule", "match");
      else
        std::snprintf(line, sizeof(line), "%10s %10s  %-6s %-24s %s\n", "pkts", "bytes", "action", "rule", "match");
      screen += line;
      for (auto& r : rows) {
        if (r.builtin && !c.all && r.value.packets == 0 && r.name != "default") continue;
        std::string p = c.exact ? std::to_string(r.value.packets) : human(double(r.value.packets));
        std::string b = c.exact ? std::to_string(r.value.bytes) : human(double(r.value.bytes));
        std::string name = r.builtin ? "(" + r.name + ")" : r.name;
        if (c.watching) {
          std::string key = targets[i] + "/" + r.name;
          double pps = 0, bps = 0;
          if (!first && dt > 0) {
            auto& pv = prev[key];
            pps = double(r.value.packets - pv.packets) / dt;
            bps = double(r.value.bytes - pv.bytes) * 8 / dt;
          }
          prev[key] = r.value;
          std::snprintf(line, sizeof(line), "%10s %10s %10s %10s  %-6s %-24s %s\n", p.c_str(), b.c_str(),
                        rate(pps, "").c_str(), rate(bps, "").c_str(), r.action.c_str(), name.c_str(), r.match.c_str());
        } else {
          std::snprintf(line, sizeof(line), "%10s %10s  %-6s %-24s %s\n", p.c_str(), b.c_str(), r.action.c_str(),
                        name.c_str(), r.match.c_str());
        }
        screen += line;
      }
    }
    if (c.as_json) {
      json out = c.iface.empty() ? all : all[0];
      std::cout << out.dump(c.watching ? -1 : 2) << std::endl;
    } else {
      if (c.watching && isatty(STDOUT_FILENO)) std::cout << "\033[H\033[2J";
      std::cout << screen << std::flush;
    }
    if (!c.watching) return;
    first = false;
    prev_t = now;
    std::this_thread::sleep_for(std::chrono::duration<double>(c.watch));
  }
}

// ---- bans ---------------------------------------------------------------

void run_bans(const std::string& iface_arg, bool as_json, const Global& g) {
  std::string iface = resolve_iface(iface_arg, g);
  Datapath dp = open_instance(iface, g, false);
  auto bans = must(dp.bans(), g);
  std::sort(bans.begin(), bans.end(), [](auto& a, auto& b) { return a.hits > b.hits; });
  if (as_json) {
    json out = json::array();
    for (auto& b : bans)
      out.push_back(
          {{"address", b.prefix.str()}, {"reason", b.reason}, {"hits", b.hits}, {"seconds_left", b.seconds_left}});
    std::cout << out.dump(2) << "\n";
    return;
  }
  if (bans.empty()) {
    std::cout << "no bans on " << iface << "\n";
    return;
  }
  std::printf("%-43s %-24s %10s %12s\n", "address", "reason", "hits", "seconds left");
  for (auto& b : bans)
    std::printf("%-43s %-24s %10llu %12s\n", b.prefix.str().c_str(), b.reason.c_str(),
                static_cast<unsigned long long>(b.hits),
                b.seconds_left < 0 ? "permanent" : std::to_string(b.seconds_left).c_str());
}

void run_ban(bool add, const std::string& addr, uint32_t seconds, const std::string& iface_arg, const Global& g) {
  auto c = parse_cidr(addr);
  if (!c) die(c.error(), g);
  std::string iface = resolve_iface(iface_arg, g);
  Datapath dp = open_instance(iface, g, add);
  auto st = add ? dp.ban_add(c.value(), seconds) : dp.ban_del(c.value());
  if (!st) die(st.error(), g);
  if (add)
    std::cout << "banned " << c->str() << " on " << iface
              << (seconds ? " for " + std::to_string(seconds) + " s" : std::string(" until removed")) << "\n";
  else
    std::cout << "unbanned " << c->str() << " on " << iface << "\n";
}

// ---- validate / apply ---------------------------------------------------

void print_warnings(const Policy& p) {
  for (auto& w : p.warnings) std::cerr << "sipxdp: warning: " << w << "\n";
}

// Reads and checks a policy as apply would: parse, compile, and the stored size.
Policy load_checked(const std::string& file, std::string* text, const Global& g) {
  std::string t;
  Policy p = must(load_policy_file(file, &t), g);
  print_warnings(p);
  if (auto st = check_manifest_fits(p, t); !st) die(make_error(file + ": " + st.error().what), g);
  if (text) *text = std::move(t);
  return p;
}

void run_validate(const std::string& file, const Global& g) {
  Policy p = load_checked(file, nullptr, g);
  auto c = compile_policy(p, fresh_counters(p));
  if (!c) die(make_error(file + ": " + c.error().what), g);
  std::cout << file << ": ok, " << p.rules.size() << " rules, default " << action_name(p.default_action) << ", "
            << c->classes() << " lookup classes, " << c->comb.size() << " combinations, "
            << c->lpm4.size() + c->lpm6.size() << " prefixes\n";
  std::vector<std::string> inspecting;
  for (auto& r : p.rules)
    if (r.inspect_sip) inspecting.push_back(r.name);
  if (!inspecting.empty()) {
    const SipConfig& s = p.sip;
    std::string pats;
    for (auto& pt : s.patterns) pats += (pats.empty() ? "" : ", ") + ("\"" + escape_bytes(pt) + "\"");
    std::cout << "  scanner: " << s.patterns.size() << " patterns (" << pats << ") searched in the "
              << (s.match == SipMatch::headers ? "User-Agent, From, To and Contact headers" : "whole payload") << ", "
              << (s.ignore_case ? "ignoring case" : "case kept") << ", by rules";
    for (auto& n : inspecting) std::cout << " " << n;
    std::cout << "\n  scanner: a hit drops the packet and "
              << (s.ban_seconds ? "bans the source for " + std::to_string(s.ban_seconds) + " s"
                                : std::string("bans nobody (ban_seconds 0)"))
              << "; fragmented datagrams: "
              << (s.fragments == SipFragments::drop ? "dropped" : "every fragment searched")
              << "; trusted: " << s.trusted.size() << " prefixes\n";
  }
}

// Refuses a policy that would drop the SSH session this command runs in, when
// the session's server address is on the interface the policy goes on.
void check_lockout(const Policy& p, const std::string& iface, bool force, const Global& g) {
  auto ssh = parse_ssh_connection(std::getenv("SSH_CONNECTION"));
  if (!ssh || force) return;
  bool on_iface = false;
  ifaddrs* ifa = nullptr;
  if (getifaddrs(&ifa) == 0) {
    for (ifaddrs* i = ifa; i; i = i->ifa_next) {
      if (!i->ifa_addr || iface != i->ifa_name) continue;
      if (i->ifa_addr->sa_family == AF_INET && ssh->server.family == 4)
        on_iface |=
            std::memcmp(&reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, ssh->server.addr.data(), 4) == 0;
      if (i->ifa_addr->sa_family == AF_INET6 && ssh->server.family == 6)
        on_iface |=
            std::memcmp(&reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr, ssh->server.addr.data(), 16) == 0;
    }
    freeifaddrs(ifa);
  }
  if (!on_iface) return;
  if (auto why = lockout_reason(p, *ssh))
    die(make_error("refusing: this policy would drop your SSH session " + ssh->str() + " (" + *why +
                   "); fix the policy, or use --force"),
        g);
}

std::string pending_file(const std::string& dir) {
  return "/run/sipxdp/" + dir.substr(pin_root().size() + 1) + ".pending";
}

// Cancels a pending automatic rollback; true when there was one.
bool cancel_pending(const std::string& dir) {
  std::ifstream in(pending_file(dir));
  pid_t pid = 0;
  if (!(in >> pid) || pid <= 0) return false;
  ::kill(pid, SIGTERM);
  ::unlink(pending_file(dir).c_str());
  return true;
}

Result<ApplySummary> rollback(const std::string& dir) {
  auto dp = Datapath::open_pinned(dir);
  if (!dp) return dp.error();
  auto m = dp->manifest();
  if (!m) return m.error();
  if (m->previous_source.empty())
    return make_error("nothing to roll back to: no earlier policy is stored (none yet, or it was too large to keep)");
  auto p = parse_policy(m->previous_source, m->previous_path);
  if (!p) return p.error();
  return dp->apply(p.value(), m->previous_source, m->previous_path);
}

// The commit-confirmed timer: a detached process that rolls back after
// `seconds` unless `sipxdp confirm` (or another apply) stops it first.
void start_confirm_timer(const std::string& dir, unsigned seconds, const std::string& applied_sha) {
  ::mkdir("/run/sipxdp", 0700);
  pid_t pid = fork();
  if (pid != 0) return;
  setsid();
  if (fork() != 0) _exit(0);
  int null = ::open("/dev/null", O_RDWR);
  dup2(null, 0), dup2(null, 1), dup2(null, 2);
  {
    std::ofstream out(pending_file(dir));
    out << getpid() << "\n";
  }
  sleep(seconds);
  std::ifstream in(pending_file(dir));
  pid_t owner = 0;
  if (!(in >> owner) || owner != getpid()) _exit(0);
  auto dp = Datapath::open_pinned(dir);
  if (dp) {
    auto m = dp->manifest();
    if (m && m->policy_sha256 == applied_sha) (void)rollback(dir);
  }
  ::unlink(pending_file(dir).c_str());
  _exit(0);
}

struct ApplyCmd {
  std::string file, iface;
  bool dry_run = false, force = false;
  unsigned confirm = 0;
};

void print_diff(const PolicyDiff& d) {
  for (auto& line : d.lines()) std::cout << "  " << line << "\n";
}

void run_apply(const ApplyCmd& c, const Global& g) {
  std::string text;
  Policy p = load_checked(c.file, &text, g);
  std::string iface = resolve_iface(c.iface, g);
  std::string dir = pin_dir(iface, g.netns);
  Datapath dp = open_instance(iface, g, !c.dry_run);
  {
    std::unique_ptr<NetnsScope> ns;
    if (!g.netns.empty()) ns = must(NetnsScope::enter(g.netns), g);
    check_lockout(p, iface, c.force, g);
  }
  if (c.dry_run) {
    auto compiled = compile_policy(p, fresh_counters(p));
    if (!compiled) die(make_error(c.file + ": " + compiled.error().what), g);
    if (auto st = dp.check_load_time_settings(p); !st) die(make_error(c.file + ": " + st.error().what), g);
    Manifest m = must(dp.manifest(), g);
    std::cout << "dry run: applying " << c.file << " to " << iface << " would change:\n";
    print_diff(diff_policy(m, p));
    return;
  }
  cancel_pending(dir);
  auto li = Datapath::link_info(dir);
  ApplySummary s = must(dp.apply(p, text, abs_path(c.file)), g);
  std::cout << "applied " << c.file << " to " << iface << ": " << s.rules << " rules (" << s.added << " new, " << s.kept
            << " kept, " << s.removed << " removed), " << s.dscp << " dscp rules, generation " << s.generation;
  if (li) std::cout << ", program id " << li->prog_id << " unchanged";
  std::cout << "\n";
  if (!s.diff.empty()) print_diff(s.diff);
  const size_t shown = std::min<size_t>(s.removed_counts.size(), 20);
  for (size_t i = 0; i < shown; ++i)
    std::cout << "  removed rule " << s.removed_counts[i].first << " had counted " << s.removed_counts[i].second.packets
              << " packets, " << s.removed_counts[i].second.bytes << " bytes\n";
  if (s.removed_counts.size() > shown) {
    CounterValue rest;
    for (size_t i = shown; i < s.removed_counts.size(); ++i) {
      rest.packets += s.removed_counts[i].second.packets;
      rest.bytes += s.removed_counts[i].second.bytes;
    }
    std::cout << "  and " << s.removed_counts.size() - shown << " more removed rules had counted " << rest.packets
              << " packets, " << rest.bytes << " bytes\n";
  }
  if (c.confirm) {
    start_confirm_timer(dir, c.confirm, sha256_hex(text));
    std::cout << "run 'sipxdp" << (g.netns.empty() ? "" : " --netns " + g.netns) << " confirm " << iface << "' within "
              << c.confirm << " s, or the previous policy comes back\n";
  }
}

void run_confirm(const std::string& iface_arg, bool roll_back, const Global& g) {
  std::string iface = resolve_iface(iface_arg, g);
  std::string dir = pin_dir(iface, g.netns);
  bool had = cancel_pending(dir);
  if (!roll_back) {
    if (!had) die(make_error("nothing to confirm on " + iface), g);
    std::cout << "confirmed: the policy on " << iface << " stays\n";
    return;
  }
  (void)open_instance(iface, g, true);
  ApplySummary s = must(rollback(dir), g);
  std::cout << "rolled back " << iface << " to the previous policy: " << s.rules << " rules, generation "
            << s.generation << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sipxdp: an XDP firewall for VoIP servers"};
  app.require_subcommand(1);
  Global g;
  app.add_option("--netns", g.netns, "run against an interface inside this named network namespace");
  app.add_flag("-v,--verbose", g.verbose, "show libbpf and verifier messages");

  AttachCmd ac;
  auto* attach = app.add_subcommand("attach", "load the XDP program on IFACE with a policy");
  attach->add_option("iface", ac.iface, "interface")->required();
  attach->add_option("-p,--policy", ac.policy, "policy file (JSON)")->required();
  attach->add_option("-m,--mode", ac.mode, "XDP mode: auto, native or generic")
      ->check(CLI::IsMember({"auto", "native", "generic", "drv", "skb"}));
  attach->add_flag("--force", ac.force, "attach even if the policy would drop this SSH session");

  std::string detach_iface;
  bool detach_all = false;
  auto* detach = app.add_subcommand("detach", "remove the program and its pins from IFACE");
  detach->add_option("iface", detach_iface, "interface");
  detach->add_flag("--all", detach_all, "detach every interface");

  bool status_json = false, status_all = false;
  auto* status = app.add_subcommand("status", "show attached interfaces");
  status->add_flag("--json", status_json, "print JSON");
  status->add_flag("--all", status_all, "every instance of every network namespace");

  StatsCmd sc;
  auto* stats = app.add_subcommand("stats", "per-rule packet and byte counters");
  stats->add_option("iface", sc.iface, "interface (default: all attached)");
  stats->add_flag("--json", sc.as_json, "print JSON");
  stats->add_flag("-x,--exact", sc.exact, "exact numbers, no K/M/G");
  stats->add_flag("-a,--all", sc.all, "show built-in counters that are zero");
  auto* watch = stats->add_option("-w,--watch", sc.watch, "refresh every SECONDS (default 1) with rates")
                    ->expected(0, 1)
                    ->default_str("1");
  (void)watch;

  std::string validate_file;
  auto* validate = app.add_subcommand("validate", "check a policy without touching the kernel");
  validate->add_option("file", validate_file, "policy file")->required();

  ApplyCmd apc;
  auto* apply = app.add_subcommand("apply", "replace the policy of an attached interface (no reload)");
  apply->add_option("file", apc.file, "policy file")->required();
  apply->add_option("-i,--iface", apc.iface, "interface (default: the only one attached)");
  apply->add_flag("--dry-run", apc.dry_run, "print what would change; touch nothing");
  apply->add_flag("--force", apc.force, "apply even if it would drop this SSH session");
  apply->add_option("--confirm", apc.confirm, "roll back after SECONDS unless 'sipxdp confirm' is run")
      ->check(CLI::Range(1u, 86400u));

  std::string confirm_iface;
  auto* confirm = app.add_subcommand("confirm", "keep the policy applied with --confirm");
  confirm->add_option("iface", confirm_iface, "interface (default: the only one attached)");
  auto* rollback_cmd = app.add_subcommand("rollback", "put the previous policy back now");
  rollback_cmd->add_option("iface", confirm_iface, "interface (default: the only one attached)");

  std::string bans_iface;
  bool bans_json = false;
  auto* bans = app.add_subcommand("bans", "list banned sources");
  bans->add_option("iface", bans_iface, "interface (default: the only one attached)");
  bans->add_flag("--json", bans_json, "print JSON");

  std::string ban_addr, ban_iface;
  uint32_t ban_seconds = 0;
  auto* ban = app.add_subcommand("ban", "ban or unban a source by hand (for fail2ban)");
  ban->require_subcommand(1);
  auto* ban_add = ban->add_subcommand("add", "drop everything from ADDR[/PREFIX]");
  ban_add->add_option("addr", ban_addr, "address or prefix")->required();
  ban_add->add_option("-s,--seconds", ban_seconds, "lift the ban after this many seconds (default: never)");
  ban_add->add_option("-i,--iface", ban_iface, "interface (default: the only one attached)");
  auto* ban_del = ban->add_subcommand("del", "lift a ban");
  ban_del->add_option("addr", ban_addr, "address or prefix")->required();
  ban_del->add_option("-i,--iface", ban_iface, "interface (default: the only one attached)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::cerr << "sipxdp: " << e.what() << " (see sipxdp --help)\n";
    return 2;
  }
  if (g.verbose) set_libbpf_logger([](const std::string& s) { std::cerr << "libbpf: " << s << "\n"; });

  if (!*validate && geteuid() != 0) {
    std::cerr << "sipxdp: " << app.get_subcommands()[0]->get_name()
              << " needs root (CAP_BPF, CAP_NET_ADMIN and access to /sys/fs/bpf)\n";
    return 1;
  }
  if (*attach)
    run_attach(ac, g);
  else if (*detach) {
    if (detach_iface.empty() && !detach_all) {
      std::cerr << "sipxdp: detach needs an interface or --all\n";
      return 2;
    }
    run_detach(detach_iface, detach_all, g);
  } else if (*status)
    run_status(status_json, status_all, g);
  else if (*stats) {
    sc.watching = stats->count("--watch") > 0;
    if (sc.watching && !(sc.watch > 0)) sc.watch = 1;
    run_stats(sc, g);
  } else if (*validate)
    run_validate(validate_file, g);
  else if (*bans)
    run_bans(bans_iface, bans_json, g);
  else if (*ban)
    run_ban(bool(*ban_add), ban_addr, ban_seconds, ban_iface, g);
  else if (*apply)
    run_apply(apc, g);
  else if (*confirm)
    run_confirm(confirm_iface, false, g);
  else if (*rollback_cmd)
    run_confirm(confirm_iface, true, g);
  return 0;
}
