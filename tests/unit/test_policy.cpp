#include <doctest/doctest.h>

#include <algorithm>

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

TEST_CASE("hardening: duplicate keys are errors at the second occurrence") {
  CHECK(parse_err(R"({"default_action":"drop","default_action":"allow","version":1})") ==
        "p.json:1:26: invalid JSON: duplicate key \"default_action\" (first at 1:2)");
  CHECK(parse_err("{\"version\":1,\"default_action\":\"drop\",\"rules\":[\n"
                  "  {\"name\":\"a\",\"action\":\"drop\",\"action\":\"allow\"}]}") ==
        "p.json:2:31: invalid JSON: duplicate key \"action\" (first at 2:15)");
  CHECK(parse_err("{\"version\":1,\"default_action\":\"drop\",\"rules\":[\n"
                  "  {\"name\":\"a\",\"src\":\"198.18.0.0/24\",\"action\":\"allow\",\"src\":\"0.0.0.0/0\"}]}")
            .find("duplicate key \"src\"") != std::string::npos);
  // The same key in different objects is fine.
  parse_ok(
      R"({"version":1,"default_action":"drop","rules":[{"name":"a","action":"drop"},{"name":"b","action":"drop"}]})");
}

TEST_CASE("hardening: numbers out of range, deep nesting and huge values never abort") {
  CHECK(parse_err(R"({"version":1e309})") ==
        "p.json:1:12: invalid JSON: number out of range (number overflow parsing '1e309')");
  CHECK(parse_err(R"({"version":1,"default_action":"drop","flow_table_size":-1e400})").find("number out of range") !=
        std::string::npos);
  CHECK(parse_err(R"({"version":18446744073709551616,"default_action":"drop"})").find("unsupported version") !=
        std::string::npos);
  std::string deep = "{\"version\":1,\"default_action\":\"drop\",\"description\":" + std::string(100000, '[') +
                     std::string(100000, ']') + "}";
  CHECK(parse_err(deep) == "p.json:1:115: invalid JSON: nested deeper than 64 levels");
  // An error about a large value quotes only its start.
  std::string big(100000, 'x');
  std::string e = parse_err(R"({"version":1,"default_action":")" + big + R"("})");
  CHECK(e.size() < 200);
  CHECK(e.find("action must be \"allow\" or \"drop\", not \"xxxx") != std::string::npos);
  std::string nested = R"({"version":1,"default_action":[[[[[[1]]]]]]})";
  CHECK(parse_err(nested) == "p.json:1:31: action must be \"allow\" or \"drop\", not a list");
}

TEST_CASE("hardening: files that are not policies") {
  auto dir = load_policy_file("/");
  REQUIRE(!dir.ok());
  CHECK(dir.error().message() == "cannot read policy /: it is a directory");
  auto zero = load_policy_file("/dev/zero");
  REQUIRE(!zero.ok());
  CHECK(zero.error().message() == "cannot read policy /dev/zero: larger than 8 MiB (the limit for a policy file)");
}

TEST_CASE("hardening: accept and deny are not actions") {
  CHECK(parse_err(R"({"version":1,"default_action":"accept"})") ==
        "p.json:1:31: action must be \"allow\" or \"drop\", not \"accept\"");
  CHECK(parse_err(R"({"version":1,"default_action":"drop","rules":[{"name":"x","action":"deny"}]})") ==
        "p.json:1:68: rule \"x\": action must be \"allow\" or \"drop\", not \"deny\"");
}

TEST_CASE("hardening: warnings for doubtful patterns and mapped prefixes") {
  Policy p = parse_ok(R"({"version":1,"default_action":"drop",
    "sip":{"scanner_patterns":["abc","system","caf\u00e9-scan","User-Agent: x\r\nFrom"],"ignore_case":true,"match":"headers"},
    "rules":[{"name":"m","proto":"tcp","dport":22,"src":"::ffff:198.18.0.0/120","action":"allow"}]})");
  auto has = [&](const std::string& s) {
    return std::any_of(p.warnings.begin(), p.warnings.end(), [&](auto& w) { return w.find(s) != std::string::npos; });
  };
  CHECK(p.warnings.size() == 5);
  CHECK(has("t.json:2:32: pattern \"abc\" is 3 bytes"));
  CHECK(has("pattern \"system\" is a common word: with ignore_case"));
  CHECK(has("pattern \"caf\\xc3\\xa9-scan\" has non-ASCII bytes"));
  CHECK(has("pattern \"User-Agent: x\\r\\nFrom\" contains CR or LF: in headers mode"));
  CHECK(has("rule \"m\": \"::ffff:198.18.0.0/120\" is an IPv4-mapped IPv6 prefix"));
  CHECK(has("write the IPv4 prefix 198.18.0.0/24"));
  // The defaults warn about nothing.
  CHECK(parse_ok(R"({"version":1,"default_action":"drop","rules":[
    {"name":"s","proto":"udp","dport":5060,"action":"allow","inspect_sip":true}]})")
            .warnings.empty());
}

TEST_CASE("hardening: escape_bytes keeps one line") {
  CHECK(escape_bytes("a\r\nb\t\"\\") == "a\\r\\nb\\t\\\"\\\\");
  CHECK(escape_bytes(std::string("x\0y", 3)) == "x\\x00y");
  CHECK(escape_bytes("\xff") == "\\xff");
}

TEST_CASE("hardening: errors quoting control characters stay one line") {
  // Found by the fuzzer: a key holding an escaped newline.
  std::string e = parse_err(R"({"version":1,"default_action":"drop","comm\u000at":1})");
  CHECK(e == "p.json:1:38: unknown field \"comm\\nt\"");
  e = parse_err(R"({"version":1,"default_action":"drop","rules":[{"name":"a\u0001b","action":"drop"}]})");
  CHECK(e.find('\x01') == std::string::npos);
  CHECK(e.find("rule \"a\\x01b\"") != std::string::npos);
  e = parse_err("{\"version\":1,\"default_action\":\"drop\",\"a\\u000ab\":1,\"a\\u000ab\":2}");
  CHECK(e.find('\n') == std::string::npos);
}
