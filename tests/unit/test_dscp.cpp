// The "dscp" list and the stateful-reply settings: parsing, errors, compilation.
#include <doctest/doctest.h>

#include <map>

#include "policies.h"

#include "sipxdp/compiler.h"
#include "sipxdp/policy.h"

using namespace sipxdp;
using namespace sipxdp::test;

namespace {

std::string with_dscp(const std::string& entries, const std::string& extra = "") {
  return "{\"version\": 1, \"default_action\": \"drop\",\n \"dscp\": [\n" + entries + "\n]" + extra + "}";
}

}  // namespace

TEST_CASE("DSCP classes by name and number") {
  CHECK(parse_dscp_class("cs0") == 0);
  CHECK(parse_dscp_class("cs3") == 24);
  CHECK(parse_dscp_class("CS7") == 56);
  CHECK(parse_dscp_class("af11") == 10);
  CHECK(parse_dscp_class("af41") == 34);
  CHECK(parse_dscp_class("af43") == 38);
  CHECK(parse_dscp_class("ef") == 46);
  CHECK(parse_dscp_class("EF") == 46);
  CHECK(parse_dscp_class("va") == 44);
  CHECK(parse_dscp_class("le") == 1);
  CHECK(parse_dscp_class("63") == 63);
  CHECK_FALSE(parse_dscp_class("64"));
  CHECK_FALSE(parse_dscp_class("cs8"));
  CHECK_FALSE(parse_dscp_class("af44"));
  CHECK_FALSE(parse_dscp_class("af51"));
  CHECK_FALSE(parse_dscp_class("gold"));
}

TEST_CASE("the issue's dscp list parses and compiles") {
  Policy p = parse_ok(with_dscp(R"(
  {"name": "sip-cs3",  "proto": "udp", "sport": [5060, 5080], "class": "cs3"},
  {"name": "sip-tcp",  "proto": "tcp", "sport": [5060, 5061], "class": "cs3"},
  {"name": "rtp-ef",   "proto": "udp", "sport": "16384-32768", "class": "ef"},
  {"name": "to-peer",  "proto": "udp", "dport": 5060, "dst": ["198.18.0.0/16", "198.18.1.0/24", "2001:db8::/32"], "class": 40},
  {"name": "peer-lan", "dst": "198.18.1.0/24", "class": "af41"})"));
  REQUIRE(p.dscp.size() == 5);
  CHECK(p.dscp[0].proto == 17);
  CHECK(p.dscp[0].dscp == 24);
  CHECK(p.dscp[1].proto == 6);
  CHECK(p.dscp[2].sport == std::vector<PortRange>{{16384, 32768}});
  CHECK(p.dscp[2].dscp == 46);
  CHECK(p.dscp[3].dscp == 40);
  CHECK(p.dscp[3].class_name == "40");
  CHECK(p.dscp[0].match_text() == "udp sport 5060,5080");
  CHECK(p.dscp[4].match_text() == "any dst 198.18.1.0/24");
  CHECK(p.flows.stateful);

  auto c = compile_policy(p, fresh_counters(p));
  REQUIRE(c.ok());
  REQUIRE(c->dscp.size() == 5);
  CHECK(c->hdr.ndscp == 5);
  CHECK((c->hdr.flags & SIPXDP_HDR_DSCP_DST));
  CHECK((c->hdr.flags & SIPXDP_HDR_STATEFUL));
  CHECK(c->hdr.flow_timeout_s[SIPXDP_FLOW_UDP] == 60);
  CHECK(c->hdr.flow_timeout_s[SIPXDP_FLOW_TCP] == 600);
  CHECK(c->dscp[0].nsport == 2);
  CHECK(c->dscp[0].sport[1][0] == 5080);
  CHECK(c->dscp[2].sport[0][0] == 16384);
  CHECK(c->dscp[2].sport[0][1] == 32768);
  CHECK(c->dscp[3].ndport == 1);
  CHECK(c->dscp[3].dst == 1);
  // The destination masks: a longer prefix carries the rules of the prefixes covering it.
  std::map<int, uint32_t> mask4;
  for (auto& e : c->lpm4)
    if (e.dir == SIPXDP_DIR_DSCP) mask4[e.plen] = e.cls;
  CHECK(mask4.size() == 2);
  CHECK(mask4[16] == (1u << 3));
  CHECK(mask4[24] == ((1u << 3) | (1u << 4)));
  int v6 = 0;
  for (auto& e : c->lpm6)
    if (e.dir == SIPXDP_DIR_DSCP) v6 += e.plen == 32 && e.cls == (1u << 3);
  CHECK(v6 == 1);
}

TEST_CASE("stateful settings") {
  Policy p = parse_ok(
      with_dscp("", R"(, "stateful": false, "flow_timeouts": {"udp": 30, "icmp": 5}, "flow_table_size": 4096)"));
  CHECK_FALSE(p.flows.stateful);
  CHECK(p.flows.timeout_s[SIPXDP_FLOW_UDP] == 30);
  CHECK(p.flows.timeout_s[SIPXDP_FLOW_ICMP] == 5);
  CHECK(p.flows.timeout_s[SIPXDP_FLOW_TCP] == 600);
  CHECK(p.flows.table_size == 4096u);
  auto c = compile_policy(p, fresh_counters(p));
  REQUIRE(c.ok());
  CHECK_FALSE((c->hdr.flags & SIPXDP_HDR_STATEFUL));
  CHECK(c->hdr.flow_timeout_s[SIPXDP_FLOW_UDP] == 30);
}

TEST_CASE("bad DSCP rules and flow settings name the place") {
  CHECK(parse_err(with_dscp(R"(  {"name": "x", "proto": "udp", "sport": 5060, "class": "gold"})")) ==
        "p.json:3:57: rule \"x\": unknown DSCP class \"gold\" (cs0-cs7, af11-af43, ef, va, le, or 0-63)");
  CHECK(parse_err(with_dscp(R"(  {"name": "x", "proto": "udp", "sport": 5060, "class": 64})")) ==
        "p.json:3:57: rule \"x\": unknown DSCP class 64 (cs0-cs7, af11-af43, ef, va, le, or 0-63)");
  CHECK(parse_err(with_dscp(R"(  {"name": "x", "proto": "udp", "sport": 5060})")) ==
        "p.json:3:3: rule \"x\": missing \"class\" (cs0-cs7, af11-af43, ef, va, le, or 0-63)");
  CHECK(parse_err(with_dscp(R"(  {"name": "x", "sport": 5060, "class": "ef"})")) ==
        "p.json:3:26: rule \"x\": \"sport\" needs \"proto\" tcp or udp");
  CHECK(parse_err(with_dscp(R"(  {"name": "x", "proto": "udp", "sport": [1,2,3,4,5,6,7,8,9], "class": "ef"})")) ==
        "p.json:3:42: rule \"x\": \"sport\": 9 ports or ranges, at most 8 in a DSCP rule");
  CHECK(parse_err(with_dscp(R"(  {"name": "x", "proto": "udp", "dst": "198.18.0.1/24", "class": "ef"})"))
            .find("p.json:3:40: rule \"x\": \"198.18.0.1/24\" has host bits set") == 0);
  CHECK(parse_err(with_dscp(R"(  {"name": "x", "proto": "udp", "class": "ef", "queue": 3})")) ==
        "p.json:3:48: rule \"x\": unknown field \"queue\" in a DSCP rule");
  CHECK(parse_err(with_dscp(R"(  {"name": "x", "class": "ef"}, {"name": "x", "class": "cs3"})")) ==
        "p.json:3:42: rule \"x\": duplicate DSCP rule name (DSCP rule names must be unique)");
  CHECK(parse_err(with_dscp("", R"(, "stateful": "yes")")) == "p.json:4:16: \"stateful\" must be true or false");
  CHECK(parse_err(with_dscp("", R"(, "flow_timeouts": {"sctp": 5})")) ==
        "p.json:4:22: flow_timeouts: unknown protocol \"sctp\" (tcp, udp, icmp)");
  CHECK(parse_err(with_dscp("", R"(, "flow_timeouts": {"udp": 0})")) ==
        "p.json:4:29: flow_timeouts.udp must be a whole number of seconds from 1 to 604800");
  CHECK(parse_err(with_dscp("", R"(, "flow_table_size": 10)")) ==
        "p.json:4:23: flow_table_size must be a whole number of flows from 1024 to 16777216");
  std::string many;
  for (int i = 0; i <= SIPXDP_MAX_DSCP_RULES; ++i)
    many += std::string(i ? "," : "") + "{\"name\": \"r" + std::to_string(i) + "\", \"class\": \"ef\"}";
  CHECK(parse_err(with_dscp(many)) == "p.json:2:10: too many DSCP rules: 33 (at most 32)");
}
