// The presets of `sipxdp init`: each is a valid policy whose every rule says
// what it is for, and --mgmt/--rtp land where the README says.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "sipxdp/presets.h"

using namespace sipxdp;

namespace {

Cidr cidr(const std::string& s) {
  auto c = parse_cidr(s);
  REQUIRE(c);
  return *c;
}

nlohmann::json rule(const nlohmann::json& list, const std::string& name) {
  for (auto& r : list)
    if (r["name"] == name) return r;
  FAIL("no rule " << name);
  return {};
}

}  // namespace

TEST_CASE("every preset is a policy whose every rule has a comment") {
  auto names = preset_names();
  CHECK(names == std::vector<std::string>{"asterisk", "freeswitch-full", "freeswitch-minimal", "kamailio-sbc"});
  for (auto& n : names) {
    CAPTURE(n);
    auto text = preset_policy(n, {}, std::nullopt);
    REQUIRE(text);
    auto p = parse_policy(*text, n);
    REQUIRE(p);
    CHECK(p->default_action == Action::drop);
    auto j = nlohmann::json::parse(*text);
    for (auto& r : j["rules"]) CHECK_MESSAGE(r.contains("comment"), r["name"]);
    for (auto& r : j["dscp"]) CHECK_MESSAGE(r.contains("comment"), r["name"]);
    bool mgmt = false;
    for (auto& r : j["rules"]) mgmt |= r["name"].get<std::string>().ends_with("-mgmt");
    CHECK(mgmt);
  }
}

TEST_CASE("--mgmt replaces the management prefixes and sip.trusted; --rtp the media range") {
  auto text = preset_policy("asterisk", {cidr("192.0.2.10/32"), cidr("2001:db8:1::/48")}, PortRange{20000, 29999});
  REQUIRE(text);
  auto j = nlohmann::json::parse(*text);
  nlohmann::json want = {"192.0.2.10/32", "2001:db8:1::/48"};
  for (auto& r : j["rules"])
    if (r["name"].get<std::string>().ends_with("-mgmt")) CHECK(r["src"] == want);
  CHECK(j["sip"]["trusted"] == want);
  CHECK(rule(j["rules"], "rtp")["dport"] == "20000-29999");
  CHECK(rule(j["dscp"], "rtp-ef")["sport"] == "20000-29999");
  CHECK(j["description"].get<std::string>().find(
            "Written by: sipxdp init --preset asterisk --mgmt 192.0.2.10/32,2001:db8:1::/48 --rtp 20000-29999") !=
        std::string::npos);
}

TEST_CASE("the presets open the ports their servers document") {
  auto dports = [](const std::string& preset) {
    auto j = nlohmann::json::parse(preset_policy(preset, {}, std::nullopt).value());
    std::string all;
    for (auto& r : j["rules"])
      if (r.contains("dport")) all += r["proto"].get<std::string>() + ":" + r["dport"].dump() + " ";
    return all;
  };
  auto full = dports("freeswitch-full");
  for (const char* want : {"5070", "5061", "5066", "7443", "8081-8082", "2855-2856", "3478", "1719", "1720", "8021"})
    CHECK_MESSAGE(full.find(want) != std::string::npos, want << " in " << full);
  auto ast = dports("asterisk");
  for (const char* want : {"5060", "5061", "10000-20000", "4569", "5038"})
    CHECK_MESSAGE(ast.find(want) != std::string::npos, want << " in " << ast);
}

TEST_CASE("an unknown preset names the ones there are") {
  auto r = preset_policy("freepbx", {}, std::nullopt);
  REQUIRE_FALSE(r);
  CHECK(r.error().message() == "no preset \"freepbx\" (asterisk, freeswitch-full, freeswitch-minimal, kamailio-sbc)");
}
