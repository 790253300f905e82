// sipxdp: the command line. A table of commands, each with its options and a
// run(); all the work is libsipxdp's. Parses arguments, calls the library,
// prints (text, or JSON with --json).
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include <signal.h>

#include <atomic>

#include <systemd/sd-daemon.h>

#include "cli.h"
#include "sipxdp/config.h"
#include "sipxdp/confirm.h"
#include "sipxdp/datapath.h"
#include "sipxdp/guard.h"
#include "sipxdp/instance.h"
#include "sipxdp/iptables_import.h"
#include "sipxdp/manifest.h"
#include "sipxdp/policy.h"
#include "sipxdp/presets.h"
#include "sipxdp/version.h"
#include "sipxdp/watch.h"

namespace sipxdp::cli {

// ---- the commands ---------------------------------------------------------

void do_attach(const AttachArgs& a, const Global& g) {
  std::string text;
  Policy p = load_checked(a.policy, &text);
  auto ns = must(NetnsScope::enter(g.netns));
  check_lockout(p, a.iface, a.force, g);
  Datapath dp = must(Datapath::load(p.flows.table_size.value_or(SIPXDP_FLOWS_DEFAULT),
                                    p.sip.rate_limit_sources.value_or(SIPXDP_RL_SOURCES_DEFAULT)));
  must(dp.attach_and_pin({a.iface, g.netns, a.mode}, p, text, abs_path(a.policy)));
  auto li = Datapath::link_info(pin_dir(a.iface, g.netns));
  if (a.json) {
    json j = {{"iface", a.iface},
              {"netns", g.netns},
              {"rules", p.rules.size()},
              {"default_action", action_name(p.default_action)},
              {"mode", instance_xdp_mode(inspect_instance(pin_dir(a.iface, g.netns)))},
              {"warnings", p.warnings}};
    if (li) j["prog_id"] = li->prog_id, j["link_id"] = li->link_id;
    std::cout << j.dump(2) << "\n";
    return;
  }
  std::cout << "attached to " << g.label(a.iface) << ": " << p.rules.size() << " rules, default "
            << action_name(p.default_action);
  if (li) std::cout << ", program id " << li->prog_id;
  std::cout << "\n";
}

class Attach : public Command {
  AttachArgs a_;
  std::string mode_ = "auto";

 public:
  const char* name() const override { return "attach"; }
  const char* help() const override { return "load the XDP program on IFACE with a policy"; }
  void define(CLI::App& app) override {
    app.add_option("iface", a_.iface, "interface")->required();
    app.add_option("-p,--policy", a_.policy, "policy file (JSON)")->required();
    app.add_option("-m,--mode", mode_, "XDP mode: auto, native or generic")
        ->check(CLI::IsMember({"auto", "native", "generic", "drv", "skb"}));
    app.add_flag("--force", a_.force, "attach even if the policy would drop this SSH session");
    app.add_flag("--json", a_.json, "print JSON");
  }
  void run(const Global& g) override {
    a_.mode = must(parse_xdp_mode(mode_));
    do_attach(a_, g);
  }
};

// Removes the instance of `iface` (with --netns: of that namespace), or with
// `all` every instance of the namespace; `everywhere`: of every namespace.
void do_detach(const std::string& iface, bool all, bool everywhere, const Global& g) {
  std::vector<std::string> dirs;
  if (all || everywhere) {
    for (auto& in : list_instances())
      if (everywhere || in.netns == g.netns) dirs.push_back(in.dir);
  } else {
    for (auto& d : {pin_dir(iface, g.netns), staging_dir(iface, g.netns)})
      if (exists(d)) dirs.push_back(d);
    if (dirs.empty()) {
      // No pins: a filter may still be there (left by an instance whose pins vanished).
      if (!g.netns.empty() && !netns_exists(g.netns))
        fail(make_error("nothing attached to " + iface + g.where() + " (no such network namespace)"));
      auto ns = must(NetnsScope::enter(g.netns));
      if (!must(Datapath::detach_stray(iface))) fail(make_error("nothing attached to " + iface + g.where()));
      std::cout << "removed the sipxdp egress filter left on " << iface << g.where()
                << " without pins (a clsact qdisc stays: sipxdp cannot tell who created it)\n";
      return;
    }
  }
  for (auto& d : dirs) {
    std::string name = instance_name(inspect_instance(d));
    cancel_pending_rollback(d);
    must(Datapath::detach(d));
    std::cout << "detached " << name << "\n";
  }
}

class Detach : public Command {
  std::string iface_;
  bool all_ = false, everywhere_ = false;

 public:
  const char* name() const override { return "detach"; }
  const char* help() const override { return "remove the program and its pins from IFACE"; }
  void define(CLI::App& app) override {
    app.add_option("iface", iface_, "interface");
    app.add_flag("--all", all_, "detach every interface (of --netns, or of the host)");
    app.add_flag("--all-namespaces", everywhere_, "detach every interface of every network namespace");
  }
  void run(const Global& g) override {
    if (iface_.empty() && !all_ && !everywhere_)
      fail(make_error("detach needs an interface, --all or --all-namespaces"));
    do_detach(iface_, all_, everywhere_, g);
  }
};

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

json instance_json(const Instance& in) {
  json j = {{"iface", in.ifname},
            {"netns", in.netns},
            {"pins", in.dir},
            {"state", instance_state_name(in.state)},
            {"attached", in.state == Instance::State::ok}};
  if (!in.why.empty()) j["problem"] = in.why;
  if (is_staging(in)) return j;
  if (auto li = Datapath::link_info(in.dir)) j["prog_id"] = li->prog_id, j["link_id"] = li->link_id;
  j["mode"] = in.state == Instance::State::ok ? instance_xdp_mode(in) : "-";
  if (auto dp = Datapath::open_pinned(in.dir)) {
    if (auto m = dp->manifest()) {
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
  return j;
}

class Status_ : public Command {
  bool json_ = false, all_ = false;

 public:
  const char* name() const override { return "status"; }
  const char* help() const override { return "show attached interfaces"; }
  void define(CLI::App& app) override {
    app.add_flag("--json", json_, "print JSON");
    app.add_flag("--all", all_, "every instance of every network namespace");
  }
  void run(const Global& g) override {
    // From the host's view, instances that need attention in any namespace show too.
    json out = json::array();
    for (auto& in : list_instances())
      if (all_ || in.netns == g.netns || (g.netns.empty() && in.state != Instance::State::ok))
        out.push_back(instance_json(in));
    if (json_) {
      std::cout << out.dump(2) << "\n";
      return;
    }
    if (out.empty()) {
      std::cout << "no interface is attached" << g.where() << "\n";
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
                << "  applied " << when(j.value("applied_at", uint64_t(0))) << "\n"
                << "  pins    " << j["pins"].get<std::string>() << "\n";
    }
  }
};

json stats_json(const std::string& ifname, const Manifest& m, const std::vector<StatRow>& rows) {
  json j;
  j["iface"] = ifname;
  j["policy"] = m.policy_path;
  j["sha256"] = m.policy_sha256;
  j["rules"] = json::array();
  j["patterns"] = json::array();
  j["dscp"] = json::array();
  j["rate_limits"] = json::array();
  j["builtin"] = json::array();
  for (auto& r : rows) {
    json x = {{"name", r.name},
              {"match", r.match},
              {"action", r.action},
              {"packets", r.value.packets},
              {"bytes", r.value.bytes}};
    j[r.builtin      ? "builtin"
      : r.pattern    ? "patterns"
      : r.dscp       ? "dscp"
      : r.rate_limit ? "rate_limits"
                     : "rules"]
        .push_back(x);
  }
  return j;
}

class Stats : public Command {
  std::string iface_;
  bool json_ = false, exact_ = false, all_ = false;
  double watch_ = 0;
  CLI::Option* watch_opt_ = nullptr;

 public:
  const char* name() const override { return "stats"; }
  const char* help() const override { return "per-rule packet and byte counters"; }
  void define(CLI::App& app) override {
    app.add_option("iface", iface_, "interface (default: all attached)");
    app.add_flag("--json", json_, "print JSON");
    app.add_flag("-x,--exact", exact_, "exact numbers, no K/M/G");
    app.add_flag("-a,--all", all_, "show built-in counters that are zero");
    watch_opt_ = app.add_option("-w,--watch", watch_, "refresh every SECONDS (default 1) with rates")
                     ->expected(0, 1)
                     ->default_str("1");
  }
  void run(const Global& g) override {
    const bool watching = watch_opt_->count() > 0;
    if (watching && !(watch_ > 0)) watch_ = 1;
    std::vector<std::string> targets;
    if (iface_.empty()) {
      for (auto& in : instances(g)) targets.push_back(in.ifname);
      if (targets.empty()) fail(make_error("no interface is attached" + g.where()));
    } else {
      targets.push_back(iface_);
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
        Manifest m = must(dps[i].manifest());
        auto rows = must(dps[i].stats());
        if (json_) {
          all.push_back(stats_json(targets[i], m, rows));
          continue;
        }
        char line[512];
        screen += "sipxdp " + g.label(targets[i]) + "  policy " + m.policy_path + "  sha256 " +
                  m.policy_sha256.substr(0, 12) + "\n";
        if (watching)
          std::snprintf(line, sizeof(line), "%10s %10s %10s %10s  %-6s %-24s %s\n", "pkts", "bytes", "pps", "bit/s",
                        "action", "rule", "match");
        else
          std::snprintf(line, sizeof(line), "%10s %10s  %-6s %-24s %s\n", "pkts", "bytes", "action", "rule", "match");
        screen += line;
        for (auto& r : rows) {
          if (r.builtin && !all_ && r.value.packets == 0 && r.name != "default") continue;
          std::string p = exact_ ? std::to_string(r.value.packets) : human(double(r.value.packets));
          std::string b = exact_ ? std::to_string(r.value.bytes) : human(double(r.value.bytes));
          std::string name = r.builtin ? "(" + r.name + ")" : r.name;
          if (watching) {
            std::string key = targets[i] + "/" + r.name;
            double pps = 0, bps = 0;
            if (!first && dt > 0) {
              auto& pv = prev[key];
              pps = double(r.value.packets - pv.packets) / dt;
              bps = double(r.value.bytes - pv.bytes) * 8 / dt;
            }
            prev[key] = r.value;
            std::snprintf(line, sizeof(line), "%10s %10s %10s %10s  %-6s %-24s %s\n", p.c_str(), b.c_str(),
                          rate(pps, "").c_str(), rate(bps, "").c_str(), r.action.c_str(), name.c_str(),
                          r.match.c_str());
          } else {
            std::snprintf(line, sizeof(line), "%10s %10s  %-6s %-24s %s\n", p.c_str(), b.c_str(), r.action.c_str(),
                          name.c_str(), r.match.c_str());
          }
          screen += line;
        }
      }
      if (json_) {
        json out = iface_.empty() ? all : all[0];
        std::cout << out.dump(watching ? -1 : 2) << std::endl;
      } else {
        if (watching && isatty(STDOUT_FILENO)) std::cout << "\033[H\033[2J";
        std::cout << screen << std::flush;
      }
      if (!watching) return;
      first = false;
      prev_t = now;
      std::this_thread::sleep_for(std::chrono::duration<double>(watch_));
    }
  }
};

class Validate : public Command {
  std::string file_;
  bool json_ = false;

 public:
  const char* name() const override { return "validate"; }
  const char* help() const override { return "check a policy without touching the kernel"; }
  bool needs_root() const override { return false; }
  void define(CLI::App& app) override {
    app.add_option("file", file_, "policy file")->required();
    app.add_flag("--json", json_, "print JSON");
  }
  void run(const Global&) override {
    Policy p = load_checked(file_, nullptr);
    auto c = compile_policy(p, fresh_counters(p));
    if (!c) fail(make_error(file_ + ": " + c.error().what));
    std::vector<std::string> inspecting;
    for (auto& r : p.rules)
      if (r.inspect_sip) inspecting.push_back(r.name);
    const SipConfig& s = p.sip;
    if (json_) {
      json j = {{"file", file_},
                {"ok", true},
                {"rules", p.rules.size()},
                {"default_action", action_name(p.default_action)},
                {"classes", c->classes()},
                {"combinations", c->comb.size()},
                {"prefixes", c->lpm4.size() + c->lpm6.size()},
                {"dscp_rules", p.dscp.size()},
                {"warnings", p.warnings},
                {"settings", policy_settings(p)}};
      if (!inspecting.empty())
        j["scanner"] = {{"patterns", s.patterns},
                        {"match", s.match == SipMatch::headers ? "headers" : "payload"},
                        {"ignore_case", s.ignore_case},
                        {"ban_seconds", s.ban_seconds},
                        {"fragments", s.fragments == SipFragments::drop ? "drop" : "inspect"},
                        {"trusted", s.trusted.size()},
                        {"rules", inspecting}};
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::cout << file_ << ": ok, " << p.rules.size() << " rules, default " << action_name(p.default_action) << ", "
              << c->classes() << " lookup classes, " << c->comb.size() << " combinations, "
              << c->lpm4.size() + c->lpm6.size() << " prefixes\n";
    if (inspecting.empty()) return;
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
    auto settings = policy_settings(p);
    std::string limits;
    for (auto& l : settings["sip.rate_limits"]) limits += (limits.empty() ? "" : "; ") + l;
    std::cout << "  sip: rate limits: " << (limits.empty() ? "none" : limits)
              << "\n  sip: auth failures: " << settings["sip.auth_failures"][0]
              << "; learned trust: " << settings["sip.learned_trust"][0] << "; IPv6 sources per /" << s.ipv6_prefix
              << "\n";
  }
};

void print_summary(const ApplyArgs& a, const std::string& iface, const ApplySummary& s,
                   const std::optional<Datapath::LinkInfo>& li, const Global& g) {
  if (a.json) {
    json j = to_json(s);
    j["file"] = a.file;
    j["iface"] = iface;
    if (li) j["prog_id"] = li->prog_id;
    if (a.confirm) j["confirm_within_seconds"] = a.confirm;
    std::cout << j.dump(2) << "\n";
    return;
  }
  std::cout << "applied " << a.file << " to " << iface << ": " << s.rules << " rules (" << s.added << " new, " << s.kept
            << " kept, " << s.removed << " removed), " << s.dscp << " dscp rules, generation " << s.generation;
  if (li) std::cout << ", program id " << li->prog_id << " unchanged";
  std::cout << "\n";
  if (!s.diff.empty()) print_lines(s.diff.lines());
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
  if (a.confirm)
    std::cout << "run 'sipxdp" << (g.netns.empty() ? "" : " --netns " + g.netns) << " confirm " << iface << "' within "
              << a.confirm << " s, or the previous policy comes back\n";
}

void do_apply(const ApplyArgs& a, const Global& g) {
  std::string text;
  Policy p = load_checked(a.file, &text);
  std::string iface = resolve_iface(a.iface, g);
  std::string dir = pin_dir(iface, g.netns);
  Datapath dp = open_instance(iface, g, !a.dry_run);
  check_lockout(p, iface, a.force, g);
  if (a.dry_run) {
    auto compiled = compile_policy(p, fresh_counters(p));
    if (!compiled) fail(make_error(a.file + ": " + compiled.error().what));
    if (auto st = dp.check_load_time_settings(p); !st) fail(make_error(a.file + ": " + st.error().what));
    PolicyDiff d = diff_policy(must(dp.manifest()), p);
    if (a.json) {
      std::cout << json{{"dry_run", true}, {"file", a.file}, {"iface", iface}, {"changes", to_json(d)}}.dump(2) << "\n";
      return;
    }
    std::cout << "dry run: applying " << a.file << " to " << iface << " would change:\n";
    print_lines(d.lines());
    return;
  }
  cancel_pending_rollback(dir);
  auto li = Datapath::link_info(dir);
  ApplySummary s = must(dp.apply(p, text, abs_path(a.file)));
  if (a.confirm) must(start_confirm_timer(dir, a.confirm, sha256_hex(text)));
  print_summary(a, iface, s, li ? std::optional<Datapath::LinkInfo>(li.value()) : std::nullopt, g);
}

namespace {
std::atomic<bool> g_stop{false};

void on_stop_signal(int) {
  g_stop = true;
}
}  // namespace

void catch_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
}

bool stop_requested() {
  return g_stop;
}

// Applies `a.file` whenever it changes, until SIGTERM or SIGINT. An edit that
// cannot be applied is reported (one line) and the live policy stays; the
// next good edit is applied.
void watch_and_apply(const ApplyArgs& a, const Global& g) {
  std::string iface = resolve_iface(a.iface, g);
  std::string dir = pin_dir(iface, g.netns);
  catch_stop_signals();
  auto w = must(FileWatch::open(a.file));
  std::string live = must(open_instance(iface, g, true).manifest()).policy_sha256, refused;
  std::cout << "watching " << a.file << " for " << g.label(iface) << std::endl;
  while (!g_stop) {
    auto text = read_policy_text(a.file);
    std::string sha = text ? sha256_hex(text.value()) : "";
    if (!text) {
      if (refused != "missing")
        std::cerr << "sipxdp: " << one_line(text.error().message()) << "; the live policy stays" << std::endl;
      refused = "missing";
    } else if (sha != live && sha != refused) {
      try {
        Policy p = load_checked(a.file, nullptr);
        Datapath dp = open_instance(iface, g, true);
        check_lockout(p, iface, a.force, g);
        auto li = Datapath::link_info(dir);
        ApplySummary s = must(dp.apply(p, text.value(), abs_path(a.file)));
        print_summary(a, iface, s, li ? std::optional<Datapath::LinkInfo>(li.value()) : std::nullopt, g);
        std::cout << std::flush;
        live = sha;
        refused.clear();
      } catch (const Failure& f) {
        std::cerr << "sipxdp: " << one_line(f.error.message()) << "; the live policy stays" << std::endl;
        refused = sha;
      }
    }
    must(w.wait(g_stop));
  }
  std::cout << "stopped watching " << a.file << std::endl;
}

class Apply : public Command {
  ApplyArgs a_;
  bool watch_ = false;

 public:
  const char* name() const override { return "apply"; }
  const char* help() const override { return "replace the policy of an attached interface (no reload)"; }
  void define(CLI::App& app) override {
    app.add_option("file", a_.file, "policy file")->required();
    app.add_option("-i,--iface", a_.iface, "interface (default: the only one attached)");
    app.add_flag("--dry-run", a_.dry_run, "print what would change; touch nothing");
    app.add_flag("--force", a_.force, "apply even if it would drop this SSH session");
    app.add_flag("--json", a_.json, "print JSON");
    app.add_option("--confirm", a_.confirm, "roll back after SECONDS unless 'sipxdp confirm' is run")
        ->check(CLI::Range(1u, 86400u));
    app.add_flag("--watch", watch_, "apply again whenever the file changes (until stopped)");
  }
  void run(const Global& g) override {
    if (watch_ && (a_.dry_run || a_.confirm)) fail(make_error("--watch goes with neither --dry-run nor --confirm"));
    if (watch_)
      watch_and_apply(a_, g);
    else
      do_apply(a_, g);
  }
};

class Confirm : public Command {
  std::string iface_;

 public:
  const char* name() const override { return "confirm"; }
  const char* help() const override { return "keep the policy applied with --confirm"; }
  void define(CLI::App& app) override { app.add_option("iface", iface_, "interface (default: the only one attached)"); }
  void run(const Global& g) override {
    std::string iface = resolve_iface(iface_, g);
    if (!cancel_pending_rollback(pin_dir(iface, g.netns))) fail(make_error("nothing to confirm on " + iface));
    std::cout << "confirmed: the policy on " << iface << " stays\n";
  }
};

class Rollback : public Command {
  std::string iface_;

 public:
  const char* name() const override { return "rollback"; }
  const char* help() const override { return "put the previous policy back now"; }
  void define(CLI::App& app) override { app.add_option("iface", iface_, "interface (default: the only one attached)"); }
  void run(const Global& g) override {
    std::string iface = resolve_iface(iface_, g);
    std::string dir = pin_dir(iface, g.netns);
    cancel_pending_rollback(dir);
    (void)open_instance(iface, g, true);
    ApplySummary s = must(rollback(dir));
    std::cout << "rolled back " << iface << " to the previous policy: " << s.rules << " rules, generation "
              << s.generation << "\n";
  }
};

// What the systemd units run: the settings of /etc/sipxdp (or --config-dir).
class Service : public Command {
  std::string action_, iface_;

 public:
  const char* name() const override { return "service"; }
  const char* help() const override {
    return "run, start, reload, stop or watch IFACE as configured in /etc/sipxdp (what the systemd units run)";
  }
  void define(CLI::App& app) override {
    app.add_option("action", action_, "run (start, then log drop events until stopped), start, reload, stop or watch")
        ->required()
        ->check(CLI::IsMember({"run", "start", "reload", "stop", "watch"}));
    app.add_option("iface", iface_, "interface")->required();
  }
  void run(const Global& g0) override {
    Config cfg = must(load_config(g0.config_dir.empty() ? default_config_dir() : g0.config_dir));
    InterfaceConfig ic = cfg.interface(iface_);
    Global g = g0;
    g.netns = ic.netns;
    std::string dir = pin_dir(iface_, g.netns), staging = staging_dir(iface_, g.netns);
    if (action_ == "stop") {
      // systemd runs ExecStop also when the service's process died on its
      // own (SERVICE_RESULT says how): the firewall must not go with it.
      const char* result = std::getenv("SERVICE_RESULT");
      if (result && *result && std::string(result) != "success") {
        std::cout << g.label(iface_) << ": the service's process ended (" << result
                  << "); the firewall stays attached (sipxdp detach " << iface_ << " removes it)\n";
        return;
      }
      if (!exists(dir) && !exists(staging)) {
        std::cout << g.label(iface_) << ": nothing attached\n";
        return;
      }
      do_detach(iface_, false, false, g);
      return;
    }
    if (action_ == "reload") {
      do_apply(ApplyArgs{.file = ic.policy, .iface = iface_, .force = true}, g);
      return;
    }
    if (action_ == "watch") {
      watch_and_apply(ApplyArgs{.file = ic.policy, .iface = iface_, .force = true}, g);
      return;
    }
    // start (and run): attach; what a crash or an unclean stop left is replaced.
    bool attached = false;
    if (exists(dir) || exists(staging)) {
      Instance in = inspect_instance(exists(dir) ? dir : staging);
      if (in.state == Instance::State::ok) {
        std::cout << g.label(iface_) << ": already attached; applying " << ic.policy << "\n";
        do_apply(ApplyArgs{.file = ic.policy, .iface = iface_, .force = true}, g);
        attached = true;
      } else {
        std::cout << g.label(iface_) << ": replacing an instance that does not filter (" << in.why << ")\n";
        do_detach(iface_, false, false, g);
      }
    }
    if (!attached) do_attach(AttachArgs{.iface = iface_, .policy = ic.policy, .mode = ic.mode, .force = true}, g);
    if (action_ != "run") return;
    // run: filtering from here on; the rest is the journal's drop lines.
    std::cout << std::flush;
    catch_stop_signals();
    sd_notify(0, ("READY=1\nSTATUS=filtering " + g.label(iface_)).c_str());
    log_events(dir, iface_, g.netns, cfg.log_events_per_minute);
    sd_notify(0, "STOPPING=1");
  }
};

class Init : public Command {
  std::string preset_, mgmt_, rtp_;

 public:
  const char* name() const override { return "init"; }
  const char* help() const override { return "write a starting policy for a kind of server to stdout"; }
  bool needs_root() const override { return false; }
  void define(CLI::App& app) override {
    app.add_option("--preset", preset_, "freeswitch-minimal, freeswitch-full, asterisk or kamailio-sbc")->required();
    app.add_option("--mgmt", mgmt_, "the management host or network (CIDRs, comma-separated)");
    app.add_option("--rtp", rtp_, "the media port range, LO-HI");
  }
  void run(const Global&) override {
    std::vector<Cidr> mgmt;
    for (size_t start = 0; !mgmt_.empty() && start <= mgmt_.size();) {
      size_t comma = mgmt_.find(',', start);
      std::string one = mgmt_.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      auto c = parse_cidr(one);
      if (!c) fail(make_error("--mgmt: " + c.error().what));
      mgmt.push_back(c.value());
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    std::optional<PortRange> rtp;
    if (!rtp_.empty()) {
      unsigned lo = 0, hi = 0;
      char dash = 0, extra = 0;
      if (std::sscanf(rtp_.c_str(), "%u%c%u%c", &lo, &dash, &hi, &extra) != 3 || dash != '-' || lo > hi || hi > 65535)
        fail(make_error("--rtp: \"" + rtp_ + "\" is not a port range LO-HI"));
      rtp = PortRange{uint16_t(lo), uint16_t(hi)};
    }
    std::cout << must(preset_policy(preset_, mgmt, rtp));
  }
};

// Translates iptables rules into a policy: what cannot be translated is
// listed (stderr, with line numbers), never dropped silently.
class Import : public Command {
  std::string file_;
  bool strict_ = false;

 public:
  const char* name() const override { return "import"; }
  const char* help() const override { return "translate an iptables-save file into a policy (on stdout)"; }
  bool needs_root() const override { return false; }
  void define(CLI::App& app) override {
    app.add_option("file", file_, "an iptables-save (or ip6tables-save) file")->required();
    app.add_flag("--strict", strict_, "fail when any line is not translated exactly");
  }
  void run(const Global&) override {
    std::string text = must(read_policy_text(file_));
    ImportResult r = must(import_iptables_save(text, file_));
    size_t untranslated = 0, different = 0;
    for (auto& n : r.notes) {
      std::cerr << "sipxdp: " << (n.translated_differently ? "note" : "not translated") << ": " << file_;
      if (n.line) std::cerr << ":" << n.line;
      std::cerr << ": " << one_line(n.text) << "\n";
      (n.translated_differently ? different : untranslated)++;
    }
    std::cout << r.policy.dump(2) << "\n";
    if (!r.notes.empty())
      std::cerr << "sipxdp: " << file_ << ": " << untranslated << " lines not translated, " << different
                << " translated with a difference (see above)\n";
    if (strict_ && !r.notes.empty()) fail(make_error(file_ + ": not every line translates exactly (--strict)"));
  }
};

std::vector<std::unique_ptr<Command>> commands() {
  std::vector<std::unique_ptr<Command>> v;
  v.push_back(std::make_unique<Attach>());
  v.push_back(std::make_unique<Detach>());
  v.push_back(std::make_unique<Status_>());
  v.push_back(std::make_unique<Stats>());
  v.push_back(std::make_unique<Validate>());
  v.push_back(std::make_unique<Apply>());
  v.push_back(std::make_unique<Confirm>());
  v.push_back(std::make_unique<Rollback>());
  for (auto& c : sources_commands()) v.push_back(std::move(c));
  v.push_back(std::make_unique<Service>());
  v.push_back(std::make_unique<Init>());
  v.push_back(std::make_unique<Import>());
  for (auto& c : observe_commands()) v.push_back(std::move(c));
  return v;
}

}  // namespace sipxdp::cli

using namespace sipxdp;
using namespace sipxdp::cli;

int main(int argc, char** argv) {
  CLI::App app{"sipxdp: an XDP firewall for VoIP servers"};
  app.require_subcommand(1);
  app.fallthrough();
  Global g;
  app.add_option("--netns", g.netns, "run against an interface inside this named network namespace");
  app.add_flag("-v,--verbose", g.verbose, "show libbpf and verifier messages");
  app.add_option("--config-dir", g.config_dir, "configuration directory (default $SIPXDP_CONFIG_DIR or /etc/sipxdp)");
  app.set_version_flag("-V,--version",
                       std::string("sipxdp ") + sipxdp::version() + " (git " + sipxdp::git_commit() + ")");
  auto table = commands();
  std::map<CLI::App*, Command*> by_app;
  for (auto& c : table) {
    CLI::App* sub = app.add_subcommand(c->name(), c->help());
    c->define(*sub);
    by_app[sub] = c.get();
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::cerr << "sipxdp: " << one_line(e.what()) << " (see sipxdp --help)\n";
    return 2;
  }
  if (g.verbose) set_libbpf_logger([](const std::string& s) { std::cerr << "libbpf: " << s << "\n"; });
  Command* c = by_app[app.get_subcommands()[0]];
  if (c->needs_root() && geteuid() != 0) {
    std::cerr << "sipxdp: " << c->name() << " needs root (CAP_BPF, CAP_NET_ADMIN and access to /sys/fs/bpf)\n";
    return 1;
  }
  try {
    c->run(g);
  } catch (const Failure& f) {
    bool log = !f.error.detail.empty() && f.error.err != EPERM;
    std::cerr << "sipxdp: " << one_line(f.error.message())
              << (log && !g.verbose ? " (--verbose shows the kernel's log)" : "") << "\n";
    if (log && g.verbose) std::cerr << f.error.detail;
    return 1;
  }
  return 0;
}
