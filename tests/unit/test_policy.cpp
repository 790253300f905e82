#include <doctest/doctest.h>

#include "policies.h"

#include "sipxdp/policy.h"

using namespace sipxdp;
using namespace sipxdp::test;

namespace {

const char* kExample = R"({
  "version": 1,
  "default_action": "drop",
  "rules": [
    {"name": "sip-udp", "proto": "udp", "dport": [5060, 5080], "action": "allow"},
    {"name": "rtp",     "proto": "udp", "dport": "16384-32768", "action": "allow"},
    {"name": "esl",     "proto": "tcp", "dport": 8021, "src": ["198.18.0.10/32", "2001:db8:5::10/128"], "action": "allow"},
    {"name": "ping",    "proto": "icmp", "icmp_type": 8, "action": "allow"},
    {"name": "ssh",     "proto": "tcp", "dport": 22, "action": "allow"}
  ]
})";

}  // namespace

TEST_CASE("the issue's example policy parses") {
  auto r = parse_policy(kExample, "p.json");
  REQUIRE(r.ok());
  const Policy& p = r.value();
  CHECK(p.default_action == Action::drop);
  REQUIRE(p.rules.size() == 5);
  CHECK(p.rules[0].dport == std::vector<PortRange>{{5060, 5060}, {5080, 5080}});
  CHECK(p.rules[1].dport == std::vector<PortRange>{{16384, 32768}});
  REQUIRE(p.rules[2].src.size() == 2);
  CHECK(p.rules[2].src[0].str() == "198.18.0.10/32");
  CHECK(p.rules[2].src[1].family == 6);
  CHECK(p.rules[3].icmp_type == std::vector<PortRange>{{8, 8}});
  CHECK(p.rules[0].match_text() == "udp dport 5060,5080");
  CHECK(p.rules[2].match_text() == "tcp dport 8021 src 198.18.0.10/32,2001:db8:5::10/128");
}

TEST_CASE("protocol forms") {
  auto r = parse_policy(R"({"version":1,"default_action":"allow","rules":[
    {"name":"a","proto":["udp","tcp"],"dport":5060,"action":"drop"},
    {"name":"b","proto":47,"action":"drop"},
    {"name":"c","proto":"any","action":"drop"},
    {"name":"d","proto":17,"sport":"1000:2000","action":"allow"}]})",
                        "p.json");
  REQUIRE(r.ok());
  CHECK(r->rules[0].protos.size() == 2);
  CHECK(r->rules[1].other_protos == std::vector<uint8_t>{47});
  CHECK(r->rules[2].protos.empty());
  CHECK(r->rules[3].protos == std::vector<ProtoKind>{ProtoKind::udp});
  CHECK(r->rules[3].sport == std::vector<PortRange>{{1000, 2000}});
}

TEST_CASE("bad JSON names file:line:col") {
  CHECK(parse_err("{\n  \"version\": 1,\n  \"rules\": [,]\n}").rfind("p.json:3:13: invalid JSON", 0) == 0);
  CHECK(parse_err("").rfind("p.json:1:1: invalid JSON", 0) == 0);
}

TEST_CASE("semantic errors name the place and the rule") {
  const std::string head = "{\"version\": 1, \"default_action\": \"drop\", \"rules\": [\n";
  auto rule = [&](const std::string& r) { return head + r + "\n]}"; };

  CHECK(parse_err(rule(R"(  {"name": "rtp", "proto": "udp", "dport": "32768-16384", "action": "allow"})")) ==
        "p.json:2:44: rule \"rtp\": port range 32768-16384 is reversed (low-high)");
  CHECK(parse_err(rule(R"(  {"name": "x", "proto": "udp", "dport": 70000, "action": "allow"})")) ==
        "p.json:2:42: rule \"x\": port 70000 is out of range (0-65535)");
  CHECK(parse_err(rule(R"(  {"name": "x", "proto": "udp", "dport": "50a", "action": "allow"})")) ==
        "p.json:2:42: rule \"x\": bad port \"50a\" (a number, \"lo-hi\", or a list of them)");
  CHECK(parse_err(rule(R"(  {"name": "x", "proto": "udp", "dports": 5060, "action": "allow"})")) ==
        "p.json:2:33: rule \"x\": unknown field \"dports\"");
  CHECK(parse_err(rule(R"(  {"name": "x", "proto": "tcp", "src": ["198.18.0.300/32"], "action": "allow"})")) ==
        "p.json:2:41: rule \"x\": \"198.18.0.300/32\" is not an IPv4 or IPv6 address or CIDR");
  CHECK(parse_err(rule(R"(  {"name": "x", "proto": "tcp", "src": "198.18.0.1/24", "action": "allow"})")) ==
        "p.json:2:40: rule \"x\": \"198.18.0.1/24\" has host bits set (did you mean 198.18.0.0/24?)");
  CHECK(parse_err(rule(R"(  {"name": "x", "proto": "tcp", "src": ["2001:db8::/129"], "action": "allow"})")) ==
        "p.json:2:41: rule \"x\": prefix length /129 is too long for IPv6 in \"2001:db8::/129\"");
  CHECK(parse_err(rule(R"(  {"name": "x", "proto": "udp", "action": "maybe"})")) ==
        "p.json:2:43: rule \"x\": action must be \"allow\" or \"drop\", not \"maybe\"");
  CHECK(parse_err(rule(R"(  {"name": "x", "proto": "icmp", "dport": 5, "action": "allow"})")) ==
        "p.json:2:43: rule \"x\": \"dport\" needs \"proto\" tcp or udp (or a list of them)");
  CHECK(parse_err(rule(R"(  {"name": "x", "dport": 5, "action": "allow"})")) ==
        "p.json:2:26: rule \"x\": \"dport\" needs \"proto\" tcp or udp (or a list of them)");
  CHECK(parse_err(rule(R"(  {"name": "x", "proto": "udp", "icmp_type": 8, "action": "allow"})")) ==
        "p.json:2:46: rule \"x\": \"icmp_type\" needs \"proto\" icmp or icmpv6");
  CHECK(parse_err(rule(R"(  {"name": "x", "proto": "icmp", "icmp_type": 256, "action": "allow"})")) ==
        "p.json:2:47: rule \"x\": ICMP type 256 is out of range (0-255)");
  CHECK(parse_err(rule(R"(  {"name": "x", "proto": "sctpx", "action": "allow"})")) ==
        "p.json:2:26: rule \"x\": unknown protocol \"sctpx\" (tcp, udp, icmp, icmpv6, any, or a number 0-255)");
  CHECK(parse_err(rule(R"(  {"name": "x", "proto": "udp", "dport": [], "action": "allow"})")) ==
        "p.json:2:42: rule \"x\": empty port list (omit the field to match any)");
  CHECK(parse_err(rule(R"(  {"name": "a b", "action": "allow"})")) ==
        "p.json:2:12: rule \"a b\": rule names are 1-63 characters of A-Z a-z 0-9 - _ .");
  CHECK(parse_err(rule(R"(  {"proto": "udp", "action": "allow"})")) == "p.json:2:3: rule #1 has no \"name\"");
  CHECK(parse_err(rule(R"(  {"name": "x", "proto": "udp"})")) ==
        "p.json:2:3: rule \"x\": missing \"action\" (\"allow\" or \"drop\")");
  CHECK(parse_err(rule(R"(  {"name": "dup", "action": "allow"},
  {"name": "dup", "action": "drop"})")) ==
        "p.json:3:12: rule \"dup\": duplicate rule name (rule names must be unique)");
}

TEST_CASE("top-level errors") {
  CHECK(parse_err(R"({"version": 2, "default_action": "drop"})") ==
        "p.json:1:13: unsupported version 2 (this sipxdp reads version 1)");
  CHECK(parse_err(R"({"default_action": "drop"})") == "p.json:1:1: missing \"version\" (use 1)");
  CHECK(parse_err(R"({"version": 1})") == "p.json:1:1: missing \"default_action\" (\"allow\" or \"drop\")");
  CHECK(parse_err(R"({"version": 1, "default_action": "drop", "rulez": []})") ==
        "p.json:1:42: unknown field \"rulez\"");
  CHECK(parse_err(R"({"version": 1, "default_action": "drop", "rules": {}})") ==
        "p.json:1:51: \"rules\" must be an array");
  CHECK(parse_err("[1]") == "p.json:1:1: the policy must be a JSON object");
}

TEST_CASE("cidr parsing") {
  CHECK(parse_cidr("198.18.0.1").value().plen == 32);
  CHECK(parse_cidr("2001:db8::1").value().plen == 128);
  CHECK(parse_cidr("0.0.0.0/0").value().plen == 0);
  CHECK(parse_cidr("::/0").value().family == 6);
  CHECK(!parse_cidr("198.18.0.0/").ok());
  CHECK(!parse_cidr("198.18.0.0/33").ok());
  CHECK(!parse_cidr("nonsense").ok());
  CHECK(parse_cidr("2001:db8:1::/48").value().str() == "2001:db8:1::/48");
}

TEST_CASE("the shipped examples are valid") {
  for (const char* f : {"freeswitch.json"}) {
    std::string path = std::string(SIPXDP_EXAMPLES_DIR) + "/" + f;
    auto r = load_policy_file(path);
    CHECK_MESSAGE(r.ok(), path << ": " << (r.ok() ? "" : r.error().what));
  }
}

TEST_CASE("a missing file is one clear error") {
  auto r = load_policy_file("/nonexistent/p.json");
  REQUIRE(!r.ok());
  CHECK(r.error().message() == "cannot read policy /nonexistent/p.json: No such file or directory");
}
