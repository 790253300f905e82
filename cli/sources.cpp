// Who is kept out and who is let in: `bans` (with why, since when and for how
// long), `ban add|del` (by hand, for fail2ban), and `trusted` (configured
// prefixes and the phones whose registration taught trust).
#include <algorithm>
#include <iostream>

#include "cli.h"

namespace sipxdp::cli {

namespace {

using json = nlohmann::json;

// IFACE and --json: what bans and trusted take.
void iface_json_options(CLI::App& app, std::string& iface, bool& json) {
  app.add_option("iface", iface, "interface (default: the only one attached)");
  app.add_flag("--json", json, "print JSON");
}

std::string left_text(int64_t s) {
  return s < 0 ? "permanent" : std::to_string(s);
}

class Bans : public Command {
  std::string iface_;
  bool json_ = false;

 public:
  const char* name() const override { return "bans"; }
  const char* help() const override { return "list banned sources, why, since when and for how long"; }
  void define(CLI::App& app) override { iface_json_options(app, iface_, json_); }
  void run(const Global& g) override {
    std::string iface = resolve_iface(iface_, g);
    Datapath dp = open_instance(iface, g, false);
    auto bans = must(dp.bans());
    std::sort(bans.begin(), bans.end(), [](auto& a, auto& b) { return a.hits > b.hits; });
    if (json_) {
      json out = json::array();
      for (auto& b : bans)
        out.push_back({{"address", b.prefix.str()},
                       {"kind", b.kind},
                       {"reason", b.reason},
                       {"hits", b.hits},
                       {"since", b.since_unix},
                       {"seconds_left", b.seconds_left}});
      std::cout << out.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
      return;
    }
    if (bans.empty()) {
      std::cout << "no bans on " << iface << "\n";
      return;
    }
    std::printf("%-43s %-9s %-24s %10s %-19s %12s\n", "address", "kind", "reason", "hits", "since", "seconds left");
    for (auto& b : bans)
      std::printf("%-43s %-9s %-24s %10llu %-19s %12s\n", b.prefix.str().c_str(), b.kind.c_str(),
                  escape_bytes(b.reason).c_str(), static_cast<unsigned long long>(b.hits), when(b.since_unix).c_str(),
                  left_text(b.seconds_left).c_str());
  }
};

class Ban : public Command {
  std::string addr_, iface_, reason_;
  uint32_t seconds_ = 0;
  bool all_ = false;
  CLI::App* add_ = nullptr;

 public:
  const char* name() const override { return "ban"; }
  const char* help() const override { return "ban or unban a source by hand (for fail2ban)"; }
  void define(CLI::App& app) override {
    app.require_subcommand(1);
    add_ = app.add_subcommand("add", "drop everything from ADDR[/PREFIX]");
    add_->add_option("addr", addr_, "address or prefix")->required();
    add_->add_option("-s,--seconds", seconds_, "lift the ban after this many seconds (default: never)");
    add_->add_option("-i,--iface", iface_, "interface (default: the only one attached)");
    auto* del = app.add_subcommand("del", "lift the bans of ADDR[/PREFIX] and every automatic ban inside it");
    auto* addr = del->add_option("addr", addr_, "address or prefix");
    auto* all = del->add_flag("--all", all_, "lift every ban (of --reason only, when given)");
    del->add_option("--reason", reason_, "with --all: only bans of this kind")
        ->check(CLI::IsMember({"pattern", "ratelimit", "auth", "manual"}));
    addr->excludes(all);
    del->add_option("-i,--iface", iface_, "interface (default: the only one attached)");
  }
  void run(const Global& g) override {
    bool add = add_->parsed();
    if (!add && !reason_.empty() && !all_) fail(make_error("ban del: --reason goes with --all"));
    if (!add && !all_ && addr_.empty()) fail(make_error("ban del: give ADDR[/PREFIX], or --all"));
    Cidr c;
    if (!addr_.empty()) c = must(parse_cidr(addr_));
    // An IPv4-mapped address (::ffff:198.18.0.9, as dual-stack servers log
    // IPv4 peers) is the IPv4 address on the wire.
    if (auto v4 = embedded_ipv4(c)) c = *v4;
    std::string iface = resolve_iface(iface_, g);
    Datapath dp = open_instance(iface, g, add);
    if (add) {
      must(dp.ban_add(c, seconds_));
      std::cout << "banned " << c.str() << " on " << iface
                << (seconds_ ? " for " + std::to_string(seconds_) + " s" : std::string(" until removed")) << "\n";
      return;
    }
    size_t n = must(all_ ? dp.ban_del_all(reason_) : dp.ban_del(c));
    if (!all_ && n == 0) fail(make_error(c.str() + " is not banned"));
    std::cout << "unbanned " << (all_ ? (reason_.empty() ? "all" : reason_) : c.str()) << " on " << iface << " (" << n
              << (n == 1 ? " ban" : " bans") << " lifted)\n";
  }
};

class Trusted : public Command {
  std::string iface_;
  bool json_ = false;

 public:
  const char* name() const override { return "trusted"; }
  const char* help() const override {
    return "sources never rate-limited nor banned: sip.trusted, and phones a 2xx to their REGISTER made trusted";
  }
  void define(CLI::App& app) override { iface_json_options(app, iface_, json_); }
  void run(const Global& g) override {
    std::string iface = resolve_iface(iface_, g);
    Datapath dp = open_instance(iface, g, false);
    Manifest m = must(dp.manifest());
    auto learned = must(dp.learned_trust());
    std::sort(learned.begin(), learned.end(), [](auto& a, auto& b) { return a.seconds_left > b.seconds_left; });
    std::vector<std::string> configured;
    if (auto it = m.settings.find("sip.trusted"); it != m.settings.end()) configured = it->second;
    std::string mode = "off";
    if (auto it = m.settings.find("sip.learned_trust"); it != m.settings.end() && !it->second.empty())
      mode = it->second[0];
    if (json_) {
      json out;
      out["iface"] = iface;
      out["configured"] = configured;
      out["learned_trust"] = mode;
      out["learned"] = json::array();
      for (auto& t : learned)
        out["learned"].push_back({{"address", t.addr.str()},
                                  {"proto", t.proto},
                                  {"port", t.port},
                                  {"since", t.since_unix},
                                  {"seconds_left", t.seconds_left},
                                  {"hits", t.hits}});
      std::cout << out.dump(2) << "\n";
      return;
    }
    std::cout << "trusted on " << iface << " (sip.trusted: never scanned, limited nor banned)\n";
    if (configured.empty()) std::cout << "  none configured\n";
    for (auto& c : configured) std::cout << "  " << c << "\n";
    std::cout << "learned (" << mode << "): registered phones, exempt from rate limits and bans of their address\n";
    if (learned.empty()) {
      std::cout << "  none now\n";
      return;
    }
    std::printf("  %-39s %-5s %5s %-19s %12s %10s\n", "address", "proto", "port", "since", "seconds left", "past bans");
    for (auto& t : learned)
      std::printf("  %-39s %-5s %5u %-19s %12lld %10llu\n", t.addr.str().c_str(), t.proto.c_str(), t.port,
                  when(t.since_unix).c_str(), static_cast<long long>(t.seconds_left),
                  static_cast<unsigned long long>(t.hits));
  }
};

}  // namespace

std::vector<std::unique_ptr<Command>> sources_commands() {
  std::vector<std::unique_ptr<Command>> v;
  v.push_back(std::make_unique<Bans>());
  v.push_back(std::make_unique<Ban>());
  v.push_back(std::make_unique<Trusted>());
  return v;
}

}  // namespace sipxdp::cli
