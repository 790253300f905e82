// iptables-save -> sipxdp policy: every translation, every kind of note, and
// every produced policy parses.
#include <doctest/doctest.h>

#include "policies.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "model.h"
#include "sipxdp/compiler.h"
#include "sipxdp/iptables_import.h"
#include "sipxdp/reference.h"

using namespace sipxdp;
using namespace sipxdp::test;
using ojson = nlohmann::ordered_json;

namespace {

struct Imported {
  ImportResult r;
  Policy p;
  const ojson& rules() const { return r.policy["rules"]; }
};

// Imports text that must translate; the policy it gives must parse.
Imported import_ok(const std::string& text) {
  auto r = import_iptables_save(text, "t.rules");
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().what));
  Policy p = parse_ok(r->policy.dump(2));
  return {std::move(r.value()), std::move(p)};
}

std::string import_err(const std::string& text) {
  auto r = import_iptables_save(text, "t.rules");
  REQUIRE_MESSAGE(!r.ok(), "expected an error for: " << text);
  return r.error().what;
}

// A filter table: line 1 *filter, 2 :INPUT, 3 :FORWARD, 4 :OUTPUT; `lines` start at line 5.
std::string filter(const std::string& input_policy, const std::string& lines) {
  return "*filter\n:INPUT " + input_policy + " [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n" + lines +
         "COMMIT\n";
}

const ImportNote* find_note(const ImportResult& r, size_t line, const std::string& part) {
  for (auto& n : r.notes)
    if (n.line == line && n.text.find(part) != std::string::npos) return &n;
  return nullptr;
}

// A note at `line` containing `part`, of the given kind.
bool has_note(const ImportResult& r, size_t line, const std::string& part, bool differently) {
  const ImportNote* n = find_note(r, line, part);
  return n && n->translated_differently == differently;
}

std::string notes_text(const ImportResult& r) {
  std::string s;
  for (auto& n : r.notes) s += std::to_string(n.line) + (n.translated_differently ? " ~ " : " x ") + n.text + "\n";
  return s;
}

// Notes other than the one every filter table gets (IPv4 rules apply to IPv6 too).
size_t rule_notes(const ImportResult& r) {
  return std::count_if(r.notes.begin(), r.notes.end(),
                       [](const ImportNote& n) { return n.text.find("iptables-save rules are for IPv4") != 0; });
}

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  REQUIRE_MESSAGE(f.good(), "cannot read " << path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("import: the FreeSWITCH reference ruleset") {
  std::string path = std::string(SIPXDP_EXAMPLES_DIR) + "/../tests/import/freeswitch.rules";
  auto r = import_iptables_save(read_file(path), "freeswitch.rules");
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().what));
  const ojson& j = r->policy;
  Policy p = parse_ok(j.dump(2));
  INFO(j.dump(2));
  INFO(notes_text(r.value()));

  std::vector<std::string> keys;
  for (auto& [k, v] : j.items()) keys.push_back(k);
  CHECK(keys ==
        std::vector<std::string>{"version", "description", "default_action", "stateful", "sip", "rules", "dscp"});
  CHECK(j["description"] == "Imported from freeswitch.rules (iptables-save)");
  CHECK(j["default_action"] == "drop");
  CHECK(j["stateful"] == true);
  CHECK(j["sip"] == ojson::parse(R"({"scanner_patterns": ["sipcli", "friendly-scanner", "VaxSIPUserAgent"],
                                     "ignore_case": false, "ban_seconds": 0})"));
  CHECK(j["rules"] == ojson::parse(R"([
    {"name": "in-tcp-6245", "proto": "tcp", "dport": 6245, "action": "allow"},
    {"name": "in-udp-3478", "proto": "udp", "dport": 3478, "action": "allow"},
    {"name": "in-udp-3479", "proto": "udp", "dport": 3479, "action": "allow"},
    {"name": "in-tcp-5002", "proto": "tcp", "dport": 5002, "action": "allow"},
    {"name": "in-udp-5003", "proto": "udp", "dport": 5003, "action": "allow"},
    {"name": "in-udp-5060", "proto": "udp", "dport": 5060, "action": "allow", "inspect_sip": true},
    {"name": "in-tcp-5060", "proto": "tcp", "dport": 5060, "action": "allow"},
    {"name": "in-tcp-5061", "proto": "tcp", "dport": 5061, "action": "allow"},
    {"name": "in-udp-16384-32768", "proto": "udp", "dport": "16384-32768", "action": "allow"},
    {"name": "in-tcp-8080-from-198.18.0.10", "proto": "tcp", "dport": 8080, "src": "198.18.0.10/32",
     "action": "allow"},
    {"name": "in-icmp-8", "proto": "icmp", "icmp_type": 8, "action": "allow"}])"));
  CHECK(j["dscp"] == ojson::parse(R"([
    {"name": "cs3-udp-5060", "proto": "udp", "sport": 5060, "class": "cs3"},
    {"name": "cs3-tcp-5060", "proto": "tcp", "sport": 5060, "class": "cs3"},
    {"name": "cs3-tcp-5061", "proto": "tcp", "sport": 5061, "class": "cs3"},
    {"name": "ef-udp-16384-32768", "proto": "udp", "sport": "16384-32768", "class": "ef"}])"));

  // Every line left out or changed is noted, at its line.
  CHECK(r->notes.size() == 6);
  CHECK(has_note(r.value(), 23, "iptables-save rules are for IPv4", true));
  CHECK(has_note(r.value(), 27, "sip.ban_seconds is 0", true));
  CHECK(has_note(r.value(), 33, "-i lo: not needed", false));
  CHECK(has_note(r.value(), 34, "counter martian", false));
  CHECK(has_note(r.value(), 35, "RELATED", true));
  CHECK(has_note(r.value(), 47, "-j LOG: not translated", false));

  // First match, as iptables judges them.
  CHECK(p.rules[reference_match(p, v4(17, 40000, 5060, "203.0.113.9"))].name == "in-udp-5060");
  CHECK(p.rules[reference_match(p, v4(6, 40000, 8080, "198.18.0.10"))].name == "in-tcp-8080-from-198.18.0.10");
  CHECK(reference_match(p, v4(6, 40000, 8080, "198.18.0.11")) == -1);
  CHECK(reference_match(p, v4(17, 40000, 5080, "203.0.113.9")) == -1);
  CHECK(reference_match(p, v4(6, 40000, 22, "203.0.113.9")) == -1);
  CHECK(p.dscp[3].dscp == 46);
  auto c = compile_policy(p, fresh_counters(p));
  REQUIRE_MESSAGE(c.ok(), (c.ok() ? "" : c.error().what));
  CHECK(c->dscp.size() == 4);
}

TEST_CASE("import: chain policies become default_action") {
  auto a = import_ok(filter("ACCEPT", ""));
  CHECK(a.r.policy["default_action"] == "allow");
  CHECK(a.p.default_action == Action::allow);
  CHECK(a.r.policy["stateful"] == false);
  CHECK(a.rules().empty());
  auto d = import_ok(filter("DROP", ""));
  CHECK(d.r.policy["default_action"] == "drop");
  CHECK(has_note(d.r, 1, "iptables-save rules are for IPv4", true));
  CHECK(d.r.notes.size() == 1);

  auto none = import_ok("*mangle\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n");
  CHECK(none.r.policy["default_action"] == "allow");
  CHECK(has_note(none.r, 0, "no *filter table", true));
  auto no_input = import_ok("*filter\n-A INPUT -p tcp --dport 22 -j DROP\nCOMMIT\n");
  CHECK(no_input.r.policy["default_action"] == "allow");
  CHECK(has_note(no_input.r, 1, "no :INPUT line", true));

  // ip6tables-save output: the same, and the note turned round.
  auto v6 = import_ok("# Generated by ip6tables-save v1.8.9 (nf_tables) on Mon Dec  1 02:22:15 2025\n" +
                      filter("DROP", "-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 128 -j ACCEPT\n"));
  CHECK(has_note(v6.r, 2, "ip6tables-save rules", true));
  CHECK(v6.r.policy["description"] == "Imported from t.rules (ip6tables-save)");
  CHECK(v6.rules()[0] ==
        ojson::parse(R"({"name": "in-icmpv6-128", "proto": "icmpv6", "icmp_type": 128, "action": "allow"})"));
}

TEST_CASE("import: protocols, ports and addresses") {
  auto i = import_ok(filter("DROP",
                            "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n"                // 5
                            "-A INPUT -p udp --dport 5060 -j ACCEPT\n"                     // 6: -m udp implied
                            "-A INPUT -p udp -m udp --dport 10000:20000 -j ACCEPT\n"       // 7
                            "-A INPUT -p tcp -m tcp --dport :1023 -j DROP\n"               // 8
                            "-A INPUT -p tcp -m tcp --sport 1024: --dport 80 -j ACCEPT\n"  // 9
                            "-A INPUT -p udp -m udp --sport 53 -j ACCEPT\n"                // 10
                            "-A INPUT -p udp -m multiport --dports 5060,5080,7000:7010 -j ACCEPT\n"  // 11
                            "-A INPUT -p tcp -m multiport --sports 80,443 -j ACCEPT\n"               // 12
                            "-A INPUT -s 198.18.0.0/24,2001:db8::/32 -d 198.19.0.1/32 -j ACCEPT\n"   // 13
                            "-A INPUT -s 198.18.0.10/24 -p tcp -m tcp --dport 8021 -j ACCEPT\n"      // 14
                            "-A INPUT -s 10.0.0.0/255.0.0.0 -j DROP\n"                               // 15
                            "-A INPUT -s 203.0.113.7 -j DROP\n"                                      // 16
                            "-A INPUT -p 47 -j ACCEPT\n"                                             // 17
                            "-A INPUT -p esp -j ACCEPT\n"                                            // 18
                            "-A INPUT -p 112 -j ACCEPT\n"                                            // 19
                            "-A INPUT -p all -s 198.51.100.0/24 -j ACCEPT\n"                         // 20
                            "-A INPUT -j DROP\n"));                                                  // 21
  INFO(i.r.policy.dump(2));
  INFO(notes_text(i.r));
  const ojson& r = i.rules();
  REQUIRE(r.size() == 17);
  CHECK(r[0] == ojson::parse(R"({"name": "in-tcp-22", "proto": "tcp", "dport": 22, "action": "allow"})"));
  CHECK(r[1] == ojson::parse(R"({"name": "in-udp-5060", "proto": "udp", "dport": 5060, "action": "allow"})"));
  CHECK(r[2]["dport"] == "10000-20000");
  CHECK(r[3] == ojson::parse(R"({"name": "drop-tcp-0-1023", "proto": "tcp", "dport": "0-1023", "action": "drop"})"));
  CHECK(r[4]["dport"] == 80);
  CHECK(r[4]["sport"] == "1024-65535");
  CHECK(r[5] == ojson::parse(R"({"name": "in-udp-sport-53", "proto": "udp", "sport": 53, "action": "allow"})"));
  CHECK(r[6]["dport"] == ojson::parse(R"([5060, 5080, "7000-7010"])"));
  CHECK(r[6]["name"] == "in-udp-5060_5080_7000-7010");
  CHECK(r[7]["sport"] == ojson::parse("[80, 443]"));
  CHECK(r[8]["src"] == ojson::parse(R"(["198.18.0.0/24", "2001:db8::/32"])"));
  CHECK(r[8]["dst"] == "198.19.0.1/32");
  CHECK(r[8]["name"] == "in-from-198.18.0.0_24-to-198.19.0.1");
  CHECK(!r[8].contains("proto"));
  // Host bits are cleared as iptables clears them, and reported.
  CHECK(r[9]["src"] == "198.18.0.0/24");
  CHECK(has_note(i.r, 14, "198.18.0.10/24 has host bits set: written as 198.18.0.0/24", true));
  CHECK(r[10]["src"] == "10.0.0.0/8");
  CHECK(r[11] == ojson::parse(R"({"name": "drop-from-203.0.113.7", "src": "203.0.113.7/32", "action": "drop"})"));
  CHECK(r[12]["proto"] == "gre");
  CHECK(r[13]["proto"] == "esp");
  CHECK(r[14]["proto"] == 112);
  CHECK(r[14]["name"] == "in-112");
  CHECK(!r[15].contains("proto"));
  CHECK(r[16] == ojson::parse(R"({"name": "drop-all", "action": "drop"})"));
  CHECK(rule_notes(i.r) == 1);

  CHECK(i.p.rules[6].dport == std::vector<PortRange>{{5060, 5060}, {5080, 5080}, {7000, 7010}});
  CHECK(reference_match(i.p, v4(6, 40000, 22, "203.0.113.9")) == 0);
  CHECK(reference_match(i.p, v4(6, 40000, 23, "203.0.113.9")) == 3);
  CHECK(reference_match(i.p, v4(6, 80, 40000, "203.0.113.9")) == 7);
  CHECK(reference_match(i.p, v4(47, 0, 0, "203.0.113.9")) == 12);
}

TEST_CASE("import: ICMP types by number and name") {
  auto i = import_ok(filter("DROP",
                            "-A INPUT -p icmp -m icmp --icmp-type 8 -j ACCEPT\n"                     // 5
                            "-A INPUT -p icmp --icmp-type echo-reply -j ACCEPT\n"                    // 6
                            "-A INPUT -p icmp --icmp-type destination-unreachable -j ACCEPT\n"       // 7
                            "-A INPUT -p icmp --icmp-type time-exceeded -j ACCEPT\n"                 // 8
                            "-A INPUT -p icmp --icmp-type 3/4 -j ACCEPT\n"                           // 9
                            "-A INPUT -p icmp --icmp-type port-unreachable -j ACCEPT\n"              // 10
                            "-A INPUT -p icmpv6 --icmp-type echo-request -j ACCEPT\n"                // 11
                            "-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type echo-request -j ACCEPT\n"  // 12
                            "-A INPUT -p icmp --icmp-type any -j ACCEPT\n"                           // 13
                            "-A INPUT -p icmp --icmp-type bogus -j ACCEPT\n"));                      // 14
  INFO(notes_text(i.r));
  const ojson& r = i.rules();
  REQUIRE(r.size() == 9);
  CHECK(r[0]["icmp_type"] == 8);
  CHECK(r[1]["icmp_type"] == 0);
  CHECK(r[2]["icmp_type"] == 3);
  CHECK(r[3]["icmp_type"] == 11);
  CHECK(r[4]["icmp_type"] == 3);
  CHECK(has_note(i.r, 9, "--icmp-type 3/4: matches every code of type 3", true));
  CHECK(has_note(i.r, 10, "--icmp-type port-unreachable: matches every code of type 3", true));
  CHECK(r[6] == ojson::parse(R"({"name": "in-icmpv6-128", "proto": "icmpv6", "icmp_type": 128, "action": "allow"})"));
  CHECK(r[7]["icmp_type"] == 128);
  CHECK(r[7]["name"] == "in-icmpv6-128-2");
  CHECK(!r[8].contains("icmp_type"));
  CHECK(has_note(i.r, 14, "--icmp-type bogus: not translated (unknown ICMP type)", false));
}

TEST_CASE("import: comments name rules; names are unique") {
  auto i = import_ok(
      filter("DROP",
             "-A INPUT -p udp -m udp --dport 5060 -m comment --comment \"Allow SIP (UDP)\" -j ACCEPT\n"       // 5
             "-A INPUT -p tcp -m tcp --dport 5060 -m comment --comment \"Allow SIP (UDP)\" -j ACCEPT\n"       // 6
             "-A INPUT -p tcp -m tcp --dport 22 -m comment --comment \"say \\\"hi\\\" \\\\ ok\" -j ACCEPT\n"  // 7
             "-A INPUT -p tcp -m tcp --dport 23 -m comment --comment \"!!!\" -j ACCEPT\n"                     // 8
             "-A INPUT -p tcp -m tcp --dport 23 -j ACCEPT\n"                                                  // 9
             "-A INPUT -p tcp -m tcp --dport 23 -j ACCEPT\n"                                                  // 10
             "-A INPUT -p tcp -m tcp --dport 24 -m comment --comment \"" +
                 std::string(80, 'x') +
                 "\" -j ACCEPT\n"  // 11
                 "-A INPUT -p tcp -m tcp --dport 25 -m comment --comment \"" +
                 std::string(80, 'x') + "\" -j ACCEPT\n"));  // 12
  const ojson& r = i.rules();
  REQUIRE(r.size() == 8);
  CHECK(r[0]["name"] == "allow-sip-udp");
  CHECK(r[0]["comment"] == "Allow SIP (UDP)");
  CHECK(r[1]["name"] == "allow-sip-udp-2");
  CHECK(r[2]["name"] == "say-hi-ok");
  CHECK(r[2]["comment"] == "say \"hi\" \\ ok");
  CHECK(r[3]["name"] == "in-tcp-23");
  CHECK(r[3]["comment"] == "!!!");
  CHECK(r[4]["name"] == "in-tcp-23-2");
  CHECK(r[5]["name"] == "in-tcp-23-3");
  CHECK(r[6]["name"] == std::string(63, 'x'));
  CHECK(r[7]["name"] == std::string(61, 'x') + "-2");
  CHECK(rule_notes(i.r) == 0);
}

TEST_CASE("import: REJECT, RETURN and targets without an equivalent") {
  auto i =
      import_ok(filter("DROP",
                       "-A INPUT -p tcp -m tcp --dport 113 -j REJECT --reject-with tcp-reset\n"                     // 5
                       "-A INPUT -p udp -m udp --dport 9 -j RETURN\n"                                               // 6
                       "-A INPUT -m limit --limit 5/min -j LOG --log-prefix \"iptables denied: \" --log-level 7\n"  // 7
                       "-A INPUT -p tcp -m tcp --dport 22 -j NFQUEUE --queue-num 1\n"                               // 8
                       "-A INPUT -j MARK --set-xmark 0x1/0xffffffff\n"                                              // 9
                       "-A INPUT -p tcp -m tcp --dport 25\n"));  // 10
  INFO(notes_text(i.r));
  const ojson& r = i.rules();
  REQUIRE(r.size() == 2);
  CHECK(r[0] == ojson::parse(R"({"name": "drop-tcp-113", "proto": "tcp", "dport": 113, "action": "drop"})"));
  CHECK(has_note(i.r, 5, "REJECT becomes drop: XDP cannot answer", true));
  // RETURN from INPUT: the chain's policy.
  CHECK(r[1]["action"] == "drop");
  CHECK(has_note(i.r, 7, "-j LOG: not translated", false));
  CHECK(has_note(i.r, 8, "-j NFQUEUE: not translated (no equivalent in sipxdp)", false));
  CHECK(has_note(i.r, 9, "-j MARK: not translated (it does not decide", false));
  CHECK(has_note(i.r, 10, "no -j target", false));
  CHECK(rule_notes(i.r) == 5);
}

TEST_CASE("import: ESTABLISHED becomes stateful; other states") {
  auto est = import_ok(filter("DROP",
                              "-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT\n"
                              "-A INPUT -p tcp -m state --state NEW -m tcp --dport 6245 -j ACCEPT\n"));
  CHECK(est.r.policy["stateful"] == true);
  CHECK(est.p.flows.stateful);
  REQUIRE(est.rules().size() == 1);
  CHECK(est.rules()[0] == ojson::parse(R"({"name": "in-tcp-6245", "proto": "tcp", "dport": 6245, "action": "allow"})"));
  CHECK(has_note(est.r, 5, "RELATED: \"stateful\" lets in ICMP errors", true));
  CHECK(rule_notes(est.r) == 1);  // NEW changes nothing when established packets are accepted

  auto ct = import_ok(filter("DROP", "-A INPUT -m conntrack --ctstate ESTABLISHED -j ACCEPT\n"));
  CHECK(ct.r.policy["stateful"] == true);
  CHECK(rule_notes(ct.r) == 0);

  // Without an ESTABLISHED accept: no stateful replies, and NEW changed meaning.
  auto no = import_ok(filter("DROP", "-A INPUT -p tcp -m state --state NEW -m tcp --dport 6245 -j ACCEPT\n"));
  CHECK(no.r.policy["stateful"] == false);
  CHECK_FALSE(no.p.flows.stateful);
  CHECK(has_note(no.r, 5, "--state NEW: left out; without an ESTABLISHED accept", true));

  auto odd = import_ok(filter("ACCEPT",
                              "-A INPUT -m conntrack --ctstate INVALID -j DROP\n"                           // 5
                              "-A INPUT -m state --state ESTABLISHED -j DROP\n"                             // 6
                              "-A INPUT -p udp -m udp --sport 53 -m state --state ESTABLISHED -j ACCEPT\n"  // 7
                              "-A INPUT -m conntrack --ctstatus ASSURED -j ACCEPT\n"                        // 8
                              "-A INPUT -m conntrack ! --ctstate NEW -j ACCEPT\n"));                        // 9
  INFO(notes_text(odd.r));
  CHECK(odd.rules().empty());
  CHECK(has_note(odd.r, 5, "--state INVALID: not translated (sipxdp has no connection tracking)", false));
  CHECK(has_note(odd.r, 6, "not translated (sipxdp's only connection state is \"stateful\"", false));
  CHECK(odd.r.policy["stateful"] == true);
  CHECK(has_note(odd.r, 7, "ESTABLISHED limited to udp sport 53", true));
  CHECK(has_note(odd.r, 8, "conntrack --ctstatus: not translated", false));
  CHECK(has_note(odd.r, 9, "! --ctstate NEW: not translated (sipxdp rules have no negation)", false));

  auto late = import_ok(filter("DROP",
                               "-A INPUT -s 203.0.113.0/24 -j DROP\n"
                               "-A INPUT -m state --state ESTABLISHED -j ACCEPT\n"));
  CHECK(has_note(late.r, 6, "ESTABLISHED after drop rules", true));
}

TEST_CASE("import: interfaces") {
  auto lo = import_ok(filter("DROP",
                             "-A INPUT -i lo -j ACCEPT\n"
                             "-A INPUT -d 127.0.0.0/8 ! -i lo -j REJECT --reject-with icmp-port-unreachable\n"
                             "-A INPUT -s 127.0.0.0/8 ! -i lo -j DROP\n"));
  CHECK(lo.rules().empty());
  CHECK(has_note(lo.r, 5, "-i lo: not needed (XDP is attached to one interface", false));
  CHECK(has_note(lo.r, 6, "counter martian", false));
  CHECK(has_note(lo.r, 7, "counter martian", false));
  auto not_lo = import_ok(filter("DROP", "-A INPUT -s 198.18.0.0/24 ! -i lo -j DROP\n"));
  CHECK(has_note(not_lo.r, 5, "! -i lo: not translated (sipxdp rules have no negation)", false));

  // One interface named: the policy is for it.
  auto one = import_ok(filter("DROP",
                              "-A INPUT -i eth0 -p tcp -m tcp --dport 22 -j ACCEPT\n"
                              "-A INPUT -p udp -m udp --dport 5060 -j ACCEPT\n"));
  REQUIRE(one.rules().size() == 2);
  CHECK(one.rules()[0]["dport"] == 22);
  CHECK(has_note(one.r, 5, "-i eth0: translated without it", true));

  // Several: the rules for one of them are not this policy's.
  auto two = import_ok(filter("DROP",
                              "-A INPUT -i eth0 -p tcp -m tcp --dport 22 -j ACCEPT\n"
                              "-A INPUT -i eth1 -j ACCEPT\n"
                              "-A INPUT -p udp -m udp --dport 5060 -j ACCEPT\n"
                              "-A INPUT ! -i eth0 -p tcp -m tcp --dport 80 -j ACCEPT\n"));
  REQUIRE(two.rules().size() == 1);
  CHECK(two.rules()[0]["dport"] == 5060);
  CHECK(has_note(two.r, 5, "-i eth0: not translated (the rules name several interfaces: eth0, eth1", false));
  CHECK(has_note(two.r, 6, "-i eth1: not translated", false));
  CHECK(has_note(two.r, 8, "! -i eth0: not translated (sipxdp rules have no negation)", false));
}

TEST_CASE("import: negations and matches without an equivalent") {
  auto i = import_ok(filter("DROP",
                            "-A INPUT ! -s 198.18.0.0/24 -p tcp -m tcp --dport 22 -j DROP\n"           // 5
                            "-A INPUT -p tcp -m tcp ! --dport 22 -j ACCEPT\n"                          // 6
                            "-A INPUT -p udp -m udp --dport 5060 -m limit --limit 50/sec -j ACCEPT\n"  // 7
                            "-A INPUT -p tcp -m tcp --dport 22 -m recent --update --seconds 60 --hitcount 4 "
                            "--name SSH --mask 255.255.255.255 --rsource -j DROP\n"               // 8
                            "-A INPUT -m set --match-set blocked src -j DROP\n"                   // 9
                            "-A INPUT -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j ACCEPT\n"  // 10
                            "-A INPUT -f -j DROP\n"                                               // 11
                            "-A INPUT -s example.com -j ACCEPT\n"                                 // 12
                            "-A INPUT -p tcp -m tcp --dport ssh -j ACCEPT\n"                      // 13
                            "-A INPUT -p sctp -m sctp --dport 5060 -j ACCEPT\n"                   // 14
                            "-A INPUT -p tcp -m tcp --dport 22 --frobnicate -j ACCEPT\n"          // 15
                            "-A INPUT ! -p udp -j DROP\n"));                                      // 16
  INFO(notes_text(i.r));
  CHECK(i.rules().empty());
  CHECK(has_note(i.r, 5, "! -s 198.18.0.0/24: not translated (sipxdp rules have no negation)", false));
  CHECK(has_note(i.r, 6, "! --dport 22: not translated", false));
  CHECK(has_note(i.r, 7, "-m limit: not translated (sipxdp has no rate limits)", false));
  CHECK(has_note(i.r, 8, "-m recent: not translated", false));
  CHECK(has_note(i.r, 9, "-m set: not translated", false));
  CHECK(has_note(i.r, 10, "--tcp-flags: not translated", false));
  CHECK(has_note(i.r, 11, "-f: not translated", false));
  CHECK(has_note(i.r, 12, "-s example.com: not translated", false));
  CHECK(has_note(i.r, 13, "--dport ssh: not translated", false));
  CHECK(has_note(i.r, 14, "-m sctp: not translated", false));
  CHECK(has_note(i.r, 15, "--frobnicate: not translated (unknown option)", false));
  CHECK(has_note(i.r, 16, "! -p udp: not translated", false));
  CHECK(rule_notes(i.r) == 12);
}

TEST_CASE("import: multiport --ports becomes two rules") {
  auto i = import_ok(filter("DROP", "-A INPUT -p tcp -m multiport --ports 5060,5061 -j ACCEPT\n"));
  REQUIRE(i.rules().size() == 2);
  CHECK(i.rules()[0] ==
        ojson::parse(R"({"name": "in-tcp-5060_5061", "proto": "tcp", "dport": [5060, 5061], "action": "allow"})"));
  CHECK(
      i.rules()[1] ==
      ojson::parse(R"({"name": "in-tcp-sport-5060_5061", "proto": "tcp", "sport": [5060, 5061], "action": "allow"})"));
  CHECK(has_note(i.r, 5, "multiport --ports (source or destination port) becomes two rules", true));
  CHECK(reference_match(i.p, v4(6, 5061, 40000, "203.0.113.9")) == 1);
}

TEST_CASE("import: string drops become scanner patterns on the accepts they guard") {
  auto i = import_ok(
      filter("DROP",
             "-A INPUT -p udp -m udp --dport 5060 -m string --string \"friendly-scanner\" --algo bm -j DROP\n"    // 5
             "-A INPUT -p udp -m udp --dport 5060 -m string --string \"sipcli\" --algo kmp --to 65535 -j DROP\n"  // 6
             "-A INPUT -p udp -m udp --dport 5080 -m string --string \"friendly-scanner\" --algo bm -j DROP\n"    // 7
             "-A INPUT -p tcp -m tcp --dport 5060 -m string --string \"sipvicious\" --algo bm -j REJECT\n"        // 8
             "-A INPUT -p udp -m udp --dport 5060 -j ACCEPT\n"                                                    // 9
             "-A INPUT -p udp -m udp --dport 5080 -j ACCEPT\n"                                                    // 10
             "-A INPUT -p tcp -m tcp --dport 5060 -j ACCEPT\n"                                                    // 11
             "-A INPUT -p udp -m udp --dport 16384:32768 -j ACCEPT\n"));                                          // 12
  INFO(i.r.policy.dump(2));
  INFO(notes_text(i.r));
  CHECK(i.r.policy["sip"] ==
        ojson::parse(R"({"scanner_patterns": ["friendly-scanner", "sipcli", "sipvicious"], "ignore_case": false,
                         "ban_seconds": 0})"));
  CHECK(has_note(i.r, 5, "sip.ban_seconds is 0 because iptables drops without banning", true));
  CHECK(has_note(i.r, 8, "REJECT becomes drop", true));
  const ojson& r = i.rules();
  REQUIRE(r.size() == 4);
  CHECK(r[0]["inspect_sip"] == true);
  CHECK(r[1]["inspect_sip"] == true);
  CHECK(r[2]["inspect_sip"] == true);
  CHECK(!r[3].contains("inspect_sip"));
  // sipxdp searches every pattern wherever it inspects.
  CHECK(has_note(i.r, 9, "also \"sipvicious\"", true));
  CHECK(has_note(i.r, 10, "also \"sipcli\", \"sipvicious\"", true));
  CHECK(has_note(i.r, 11, "also \"friendly-scanner\", \"sipcli\"", true));
  CHECK(i.p.sip.ban_seconds == 0);
  CHECK(i.p.rules[0].inspect_sip);
}

TEST_CASE("import: a string drop guards only the accepts after it") {
  auto i =
      import_ok(filter("DROP",
                       "-A INPUT -p udp -m udp --dport 5060 -j ACCEPT\n"
                       "-A INPUT -p udp -m udp --dport 5060 -m string --string \"friendly-scanner\" --algo bm -j DROP\n"
                       "-A INPUT -p udp -m udp --dport 5060 -s 198.18.0.0/24 -j ACCEPT\n"));
  REQUIRE(i.rules().size() == 2);
  CHECK(!i.rules()[0].contains("inspect_sip"));
  CHECK(i.rules()[1]["inspect_sip"] == true);
}

TEST_CASE("import: an accept wider than the string drops is split") {
  auto i = import_ok(
      filter("DROP",
             "-A INPUT -p udp -m udp --dport 5060 -m string --string \"friendly-scanner\" --algo bm -j DROP\n"  // 5
             "-A INPUT -p udp -m udp --dport 5000:6000 -j ACCEPT\n"                                             // 6
             "-A INPUT -s 198.18.0.10/32 -j ACCEPT\n"                                                           // 7
             "-A INPUT -p udp -m multiport --dports 5060,5060 -j ACCEPT\n"));                                   // 8
  INFO(i.r.policy.dump(2));
  INFO(notes_text(i.r));
  const ojson& r = i.rules();
  REQUIRE(r.size() == 5);
  CHECK(r[0] == ojson::parse(R"({"name": "in-udp-5000-6000-inspect", "proto": "udp", "dport": 5060,
                                 "action": "allow", "inspect_sip": true})"));
  CHECK(r[1] ==
        ojson::parse(R"({"name": "in-udp-5000-6000", "proto": "udp", "dport": "5000-6000", "action": "allow"})"));
  CHECK(has_note(i.r, 6, "split: what the string drops before it search (udp dport 5060)", true));
  // The management host's packets to 5060 were searched too: a rule of their own.
  CHECK(r[2] == ojson::parse(R"({"name": "in-from-198.18.0.10-inspect", "proto": "udp", "dport": 5060,
                                 "src": "198.18.0.10/32", "action": "allow", "inspect_sip": true})"));
  CHECK(r[3] == ojson::parse(R"({"name": "in-from-198.18.0.10", "src": "198.18.0.10/32", "action": "allow"})"));
  CHECK(has_note(i.r, 7, "split", true));
  // Covered port by port: inspected whole.
  CHECK(r[4]["inspect_sip"] == true);
  CHECK(reference_match(i.p, v4(17, 40000, 5060, "203.0.113.9")) == 0);
  CHECK(reference_match(i.p, v4(17, 40000, 5061, "203.0.113.9")) == 1);
  CHECK(reference_match(i.p, v4(6, 40000, 22, "198.18.0.10")) == 3);
}

TEST_CASE("import: under default accept, what the drops search gets a last rule") {
  auto i =
      import_ok(filter("ACCEPT",
                       "-A INPUT -p udp -m udp --dport 5060 -m string --string \"friendly-scanner\" --algo bm -j DROP\n"
                       "-A INPUT -p tcp -m tcp --dport 5060 -m string --string \"friendly-scanner\" --algo bm -j DROP\n"
                       "-A INPUT -p tcp -m tcp --dport 5060 -j DROP\n"));
  INFO(i.r.policy.dump(2));
  const ojson& r = i.rules();
  REQUIRE(r.size() == 2);
  CHECK(r[1] == ojson::parse(R"({"name": "scan-udp-5060", "proto": "udp", "dport": 5060, "action": "allow",
                                 "inspect_sip": true})"));
  CHECK(has_note(i.r, 5, "default_action is allow", true));
  CHECK(find_note(i.r, 6, "default_action is allow") == nullptr);  // tcp 5060 is dropped by the rule after it
}

TEST_CASE("import: string match forms") {
  auto i = import_ok(
      filter("DROP",
             "-A INPUT -p udp -m string --hex-string \"|0d0a|User-Agent|3a20|iWar\" --algo bm -j DROP\n"           // 5
             "-A INPUT -p udp -m string --hex-string \"|55736572|\" --algo bm --icase -j DROP\n"                   // 6
             "-A INPUT -p udp -m string --string \"FRIENDLY-SCANNER\" --algo bm --icase -j DROP\n"                 // 7
             "-A INPUT -p udp -m string --string \"friendly-scanner\" --algo bm --icase -j DROP\n"                 // 8
             "-A INPUT -p udp -m string --string \"a \\\"q\\\" b\\\\c'd\" --algo bm --from 28 --to 200 -j DROP\n"  // 9
             "-A INPUT -m string --string \"sipsak\" --algo bm -j DROP\n"                                          // 10
             "-A INPUT -p udp -m string --string \"x\" --algo bm -j DROP\n"                                        // 11
             "-A INPUT -p udp -m string --hex-string \"|ff|abc\" --algo bm -j DROP\n"                              // 12
             "-A INPUT -p udp -m string --hex-string \"|0d0|\" --algo bm -j DROP\n"                                // 13
             "-A INPUT -p udp -m string ! --string \"INVITE\" --algo bm -j DROP\n"                                 // 14
             "-A INPUT -p udp -m string --string \"sipvicious\" --algo bm -j ACCEPT\n"                             // 15
             "-A INPUT -p icmp -m string --string \"sipvicious\" --algo bm -j DROP\n"                              // 16
             "-A INPUT -p udp -m string --string \"ab\" --algo bm -m string --string \"cd\" --algo bm -j DROP\n"   // 17
             "-A INPUT -p udp -m string --hex-string \"x\\\\|y|41|\" --algo bm --from 0 --to 65535 -j DROP\n"      // 18
             "-A INPUT -p udp -m string --string \"sipcli\" --algo bm --to 99999999999999999999 -j DROP\n"         // 19
             "-A INPUT -p udp -m udp --dport 5060 -j ACCEPT\n"                                                     // 20
             "-A INPUT -p tcp -m tcp --dport 5060 -j ACCEPT\n"));                                                  // 21
  INFO(i.r.policy.dump(2));
  INFO(notes_text(i.r));
  CHECK(i.r.policy["sip"]["scanner_patterns"] ==
        ojson::parse(R"(["\r\nUser-Agent: iWar", "User", "FRIENDLY-SCANNER", "a \"q\" b\\c'd", "sipsak", "x|yA",
                       "sipcli"])"));
  CHECK(i.r.policy["sip"]["ignore_case"] == true);
  CHECK(i.p.sip.ignore_case);
  CHECK(has_note(i.r, 5, "is matched ignoring case", true));
  CHECK(find_note(i.r, 6, "is matched ignoring case") == nullptr);
  CHECK(has_note(i.r, 9, "--from/--to: ignored", true));
  CHECK(has_note(i.r, 10, "-m string without -p: sipxdp searches UDP and TCP payloads only", true));
  CHECK(has_note(i.r, 11, "--string \"x\": not translated (1 bytes; sipxdp patterns are 2-64 bytes)", false));
  CHECK(has_note(i.r, 12, "not UTF-8", false));
  CHECK(has_note(i.r, 13, "bad |hex| notation", false));
  CHECK(has_note(i.r, 14, "! --string: not translated", false));
  CHECK(has_note(i.r, 15, "-m string -j ACCEPT: not translated", false));
  CHECK(has_note(i.r, 16, "-m string on icmp: not translated", false));
  CHECK(has_note(i.r, 17, "-m string twice", false));
  CHECK(find_note(i.r, 18, "--from/--to") == nullptr);  // the whole packet, as iptables-save never writes it
  CHECK(has_note(i.r, 19, "--from/--to: ignored", true));
  REQUIRE(i.rules().size() == 2);
  CHECK(i.rules()[0]["inspect_sip"] == true);
  CHECK(i.rules()[1]["inspect_sip"] == true);  // the drop without -p searched TCP too

  auto too_long = import_ok(
      filter("DROP", "-A INPUT -p udp -m string --string \"" + std::string(65, 'y') + "\" --algo bm -j DROP\n"));
  CHECK(has_note(too_long.r, 5, "--string \"yyyy", false));
  CHECK(has_note(too_long.r, 5, "not translated (65 bytes; sipxdp patterns are 2-64 bytes)", false));
  CHECK(!too_long.r.policy.contains("sip"));
}

TEST_CASE("import: at most 64 patterns") {
  std::string lines;
  for (int k = 0; k < 66; ++k)
    lines += "-A INPUT -p udp -m udp --dport 5060 -m string --string \"scanner-" + std::to_string(k) +
             "\" --algo bm -j DROP\n";
  lines += "-A INPUT -p udp -m udp --dport 5060 -j ACCEPT\n";
  auto i = import_ok(filter("DROP", lines));
  CHECK(i.r.policy["sip"]["scanner_patterns"].size() == 64);
  CHECK(has_note(i.r, 5 + 64, "\"scanner-64\": not translated (sipxdp holds at most 64 patterns)", false));
  CHECK(has_note(i.r, 5 + 65, "\"scanner-65\": not translated", false));
}

TEST_CASE("import: DSCP marks from the mangle table") {
  auto i = import_ok(
      "*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
      ":POSTROUTING ACCEPT [0:0]\n"
      "-A OUTPUT -p udp -m udp --sport 5060 -j DSCP --set-dscp 0x18\n"                                      // 7
      "-A OUTPUT -p tcp -m multiport --sports 5060,5061 -j DSCP --set-dscp-class CS3\n"                     // 8
      "-A OUTPUT -p udp -m udp --sport 16384:32768 -j DSCP --set-dscp-class ef\n"                           // 9
      "-A POSTROUTING -d 198.18.1.0/24 -p udp -m udp --dport 5004 -j DSCP --set-dscp-class af41\n"          // 10
      "-A OUTPUT -p udp -m udp --sport 5060 -m comment --comment \"SIP to trunk\" -j DSCP --set-dscp 40\n"  // 11
      "-A OUTPUT -p udp -m udp --dport 9 -j DSCP --set-dscp 11\n"                                           // 12
      "-A PREROUTING -p udp -m udp --dport 5060 -j DSCP --set-dscp 0x18\n"                                  // 13
      "-A OUTPUT -j MARK --set-xmark 0x1/0xffffffff\n"                                                      // 14
      "-A OUTPUT -p udp -j TOS --set-tos 0x10/0x3f\n"                                                       // 15
      "-A OUTPUT -s 198.18.0.1/32 -p udp -j DSCP --set-dscp 0x18\n"                                         // 16
      "-A OUTPUT -p udp -m udp --sport 5060 -j DSCP --set-dscp 0x40\n"                                      // 17
      "COMMIT\n");
  INFO(i.r.policy.dump(2));
  INFO(notes_text(i.r));
  const ojson& d = i.r.policy["dscp"];
  REQUIRE(d.size() == 6);
  // iptables applies every DSCP target that matches (the last wins): rule 11
  // overrides rule 7 for the same packets, so the list is reversed.
  CHECK(has_note(i.r, 7, "DSCP rules in reverse order", true));
  CHECK(d[0] == ojson::parse(R"({"name": "dscp11-udp-dport-9", "proto": "udp", "dport": 9, "class": 11})"));
  CHECK(d[1] == ojson::parse(R"({"name": "sip-to-trunk", "proto": "udp", "sport": 5060, "class": "cs5",
                                 "comment": "SIP to trunk"})"));
  CHECK(d[2] == ojson::parse(R"({"name": "af41-udp-dport-5004-to-198.18.1.0_24", "proto": "udp", "dport": 5004,
                                 "dst": "198.18.1.0/24", "class": "af41"})"));
  CHECK(d[3] ==
        ojson::parse(R"({"name": "ef-udp-16384-32768", "proto": "udp", "sport": "16384-32768", "class": "ef"})"));
  CHECK(d[4] ==
        ojson::parse(R"({"name": "cs3-tcp-5060_5061", "proto": "tcp", "sport": [5060, 5061], "class": "cs3"})"));
  CHECK(d[5] == ojson::parse(R"({"name": "cs3-udp-5060", "proto": "udp", "sport": 5060, "class": "cs3"})"));
  CHECK(i.p.dscp[1].dscp == 40);
  CHECK(has_note(i.r, 13, "-j DSCP in PREROUTING: not translated", false));
  CHECK(has_note(i.r, 14, "*mangle OUTPUT -j MARK: not translated", false));
  CHECK(has_note(i.r, 15, "-j TOS: not translated", false));
  CHECK(has_note(i.r, 16, "-s on a DSCP rule: not translated", false));
  CHECK(has_note(i.r, 17, "-j DSCP without a valid --set-dscp", false));
}

TEST_CASE("import: DSCP rules that do not overlap keep their order") {
  auto i = import_ok(
      "*mangle\n:OUTPUT ACCEPT [0:0]\n"
      "-A OUTPUT -p udp -m udp --sport 5060 -j DSCP --set-dscp 0x18\n"
      "-A OUTPUT -p udp -m udp --sport 5060 -j DSCP --set-dscp 0x18\n"
      "-A OUTPUT -p udp -m udp --sport 16384:32768 -o eth0 -j DSCP --set-dscp 0x2e\n"
      "COMMIT\n");
  const ojson& d = i.r.policy["dscp"];
  REQUIRE(d.size() == 3);
  CHECK(d[0]["name"] == "cs3-udp-5060");
  CHECK(d[1]["name"] == "cs3-udp-5060-2");
  CHECK(d[2]["class"] == "ef");
  CHECK(has_note(i.r, 5, "-o eth0: translated without it", true));
  CHECK(find_note(i.r, 3, "reverse") == nullptr);
}

TEST_CASE("import: chains and tables sipxdp does not have") {
  auto i = import_ok(
      "*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
      "-A POSTROUTING -o eth0 -j MASQUERADE\n"  // 4
      "COMMIT\n"
      "*raw\n:PREROUTING ACCEPT [0:0]\n"
      "-A PREROUTING -p udp -m udp --dport 16384:32768 -j CT --notrack\n"  // 8
      "COMMIT\n"
      "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT DROP [0:0]\n:f2b-sip - [0:0]\n:my-chain - [0:0]\n"
      "-A INPUT -p udp -m multiport --dports 5060 -j f2b-sip\n"                       // 16
      "-A INPUT -p tcp -j my-chain\n"                                                 // 17
      "-A INPUT -p tcp -g my-chain\n"                                                 // 18
      "-A FORWARD -j ACCEPT\n"                                                        // 19
      "-A OUTPUT -p udp -m udp --dport 53 -j ACCEPT\n"                                // 20
      "-A f2b-sip -s 203.0.113.9/32 -j REJECT --reject-with icmp-port-unreachable\n"  // 21
      "-A my-chain -p tcp -m tcp --dport 22 -j ACCEPT\n"                              // 22
      "COMMIT\n");
  INFO(notes_text(i.r));
  CHECK(i.rules().empty());
  CHECK(has_note(i.r, 4, "*nat: not translated", false));
  CHECK(has_note(i.r, 8, "*raw: not translated", false));
  CHECK(has_note(i.r, 12, ":FORWARD DROP: not translated", false));
  CHECK(has_note(i.r, 13, ":OUTPUT DROP: not translated (sipxdp does not filter outbound packets)", false));
  CHECK(has_note(i.r, 16, "-j f2b-sip: not translated (fail2ban's chain", false));
  CHECK(has_note(i.r, 17, "-j my-chain: not translated (user-defined chains are not followed)", false));
  CHECK(has_note(i.r, 18, "-g my-chain: not translated", false));
  CHECK(has_note(i.r, 19, "FORWARD: not translated", false));
  CHECK(has_note(i.r, 20, "OUTPUT: not translated", false));
  CHECK(has_note(i.r, 21, "chain f2b-sip: not translated (fail2ban's chain", false));
  CHECK(has_note(i.r, 22, "chain my-chain: not translated", false));
  // In line order.
  CHECK(std::is_sorted(i.r.notes.begin(), i.r.notes.end(),
                       [](const ImportNote& a, const ImportNote& b) { return a.line < b.line; }));
}

TEST_CASE("import: iptables-save -c counters and comment lines") {
  auto i = import_ok(
      "# Generated by iptables-save v1.8.9 (nf_tables) on Mon Dec  1 02:22:15 2025\n"
      "*filter\n:INPUT DROP [120:34567]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [99:1234]\n"
      "[10:600] -A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\r\n"
      "\n"
      "   # an indented comment\n"
      "[0:0] -A INPUT -p udp -m udp --dport 5060 -j ACCEPT\n"
      "COMMIT\n"
      "# Completed on Mon Dec  1 02:22:15 2025\n");
  REQUIRE(i.rules().size() == 2);
  CHECK(i.rules()[0]["dport"] == 22);
  CHECK(i.rules()[1]["dport"] == 5060);
}

TEST_CASE("import: text that is not iptables-save output is an error naming the line") {
  CHECK(import_err("-A INPUT -p tcp --dport 22 -j ACCEPT\n") ==
        "t.rules:1: -A outside a table (no *filter, *mangle... line before it)");
  CHECK(import_err("*filter\n:INPUT DROP [0:0]\nCOMMIT\n-A INPUT -j ACCEPT\n") ==
        "t.rules:4: -A outside a table (no *filter, *mangle... line before it)");
  CHECK(import_err("-P INPUT DROP\n") ==
        "t.rules:1: not an iptables-save line (expected *table, :chain, -A, COMMIT or #): \"-P INPUT DROP\"");
  CHECK(import_err("*filter\niptables -I INPUT -j DROP\nCOMMIT\n").find("t.rules:2: not an iptables-save line") == 0);
  CHECK(import_err("*filter\n-I INPUT -j DROP\nCOMMIT\n").find("t.rules:2: not an iptables-save line") == 0);
  CHECK(import_err(":INPUT DROP [0:0]\n") ==
        "t.rules:1: :INPUT outside a table (no *filter, *mangle... line before it)");
  CHECK(import_err("COMMIT\n") == "t.rules:1: COMMIT outside a table");
  CHECK(import_err("*filter\n:INPUT DROP [0:0]\n-A INPUT -j ACCEPT\n") ==
        "t.rules:1: table *filter has no COMMIT (is the file cut short?)");
  CHECK(import_err("*filter\n*mangle\nCOMMIT\n") ==
        "t.rules:2: table *mangle starts before table *filter (line 1) has its COMMIT");
  CHECK(import_err("*filter\nCOMMIT\n*filter\nCOMMIT\n") == "t.rules:3: table *filter appears twice (line 1 and here)");
  CHECK(import_err("*filter\n-A INPUT -m comment --comment \"open -j ACCEPT\nCOMMIT\n") ==
        "t.rules:2: unterminated quote");
  CHECK(import_err("*filter\n-A nosuch -j ACCEPT\nCOMMIT\n") ==
        "t.rules:2: chain nosuch is not declared in table *filter (no :nosuch line)");
  CHECK(import_err("*filter\n:INPUT REJECT [0:0]\nCOMMIT\n") ==
        "t.rules:2: built-in chain INPUT has policy \"REJECT\" (ACCEPT or DROP)");
  CHECK(import_err("*filter\n:mine ACCEPT [0:0]\nCOMMIT\n").find("t.rules:2: chain mine of table *filter") == 0);
  CHECK(import_err("*filter\n:INPUT\nCOMMIT\n").find("t.rules:2: chain INPUT has no policy") == 0);
  CHECK(import_err("*filter\n-A INPUT -p\nCOMMIT\n") == "t.rules:2: -p needs a value");
  CHECK(import_err("*filter\n-A INPUT -p tcp !\nCOMMIT\n") == "t.rules:2: \"!\" at the end of the rule");
  CHECK(import_err("*filter\n-A INPUT tcp -j ACCEPT\nCOMMIT\n") ==
        "t.rules:2: unexpected word \"tcp\" (an option was expected)");
  CHECK(import_err("") ==
        "t.rules:1: no table: iptables-save output holds *filter, *mangle... tables, each ending in COMMIT");
  CHECK(import_err("# nothing\n\n").find("t.rules:2: no table") == 0);
  // One line, whatever the input holds.
  std::string e = import_err("*filter\n\x01\x02 -A\nCOMMIT\n");
  CHECK(e.find('\x01') == std::string::npos);
  CHECK(e.find("t.rules:2:") == 0);
}
