// SIP scanner drops and bans through BPF_PROG_TEST_RUN.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <set>
#include <thread>

#include "harness.h"
#include "packet.h"

using namespace sipxdp;
using namespace sipxdp::test;

namespace {

// Eight patterns of several lengths; the 4-byte "iWar" keeps the scanner's
// shortest window under test. (The shipped defaults spell it as a whole
// User-Agent line: 4 bytes match legitimate traffic by chance.)
const std::vector<std::string> kDefaults = {
    "friendly-scanner", "VaxSIPUserAgent", "sipcli", "sipvicious", "sip-scan", "iWar", "sundayddr", "sipsak"};

// `sip_block` ("\"sip\": {...},"), with kDefaults as its patterns unless it names some.
std::string policy(std::string sip_block) {
  std::string pats = R"("scanner_patterns": ["friendly-scanner", "VaxSIPUserAgent", "sipcli", "sipvicious",
      "sip-scan", "iWar", "sundayddr", "sipsak"])";
  if (sip_block.empty())
    sip_block = R"("sip": {)" + pats + "},";
  else if (sip_block.find("scanner_patterns") == std::string::npos)
    sip_block.insert(sip_block.find('{') + 1, pats + ", ");
  return R"({"version": 1, "default_action": "drop", )" + sip_block + R"(
  "rules": [
    {"name": "sip-udp", "proto": "udp", "dport": [5060, 5080], "action": "allow", "inspect_sip": true},
    {"name": "sip-tcp", "proto": "tcp", "dport": 5060, "action": "allow", "inspect_sip": true},
    {"name": "rtp", "proto": "udp", "dport": "16384-32768", "action": "allow"}
  ]})";
}

// A payload of exactly `size` bytes of SIP-looking filler with `what` at `at`.
std::string payload_with(const std::string& what, size_t at, size_t size = 1400) {
  std::string filler =
      "INVITE sip:1000@198.18.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 198.18.7.7:5060;branch=z9hG4bK776asdhds\r\n"
      "Max-Forwards: 70\r\nTo: <sip:1000@198.18.0.1>\r\nFrom: <sip:2000@198.18.7.7>;tag=1928301774\r\n"
      "Call-ID: a84b4c76e66710@pc33.example.net\r\nCSeq: 314159 INVITE\r\nContent-Type: application/sdp\r\n";
  std::string s;
  while (s.size() < size) s += filler;
  s.resize(size);
  if (!what.empty()) s.replace(at, what.size(), what);
  return s;
}

std::vector<uint8_t> udp(const std::string& payload, uint16_t dport = 5060, const char* src = kClient) {
  return PacketBuilder().ipv4(src, kServer).udp(40000, dport).payload(payload).build();
}

bool banned(Datapath& dp, const char* addr) {
  auto bans = dp.bans();
  REQUIRE(bans.ok());
  return std::any_of(bans->begin(), bans->end(), [&](auto& b) { return b.prefix.str() == std::string(addr) + "/32"; });
}

}  // namespace

TEST_CASE("each default pattern at the start, middle and end of a 1,400-byte payload") {
  Harness h = Harness::make(policy(R"("sip": {"ban_seconds": 0},)"));
  for (auto& pat : kDefaults) {
    for (size_t at : {size_t(0), size_t(700), 1400 - pat.size()}) {
      std::string desc = pat + " at " + std::to_string(at);
      h.expect(desc.c_str(), udp(payload_with(pat, at)), DROP, "scanner:" + pat);
    }
  }
  h.expect("clean 1,400-byte INVITE", udp(payload_with("", 0)), PASS, "sip-udp");
}

TEST_CASE("no match: split across the end, other ports, other case") {
  Harness h = Harness::make(policy(""));
  std::string cut = payload_with("friendly-scann", 1400 - 14);
  h.expect("pattern cut by the end of the packet", udp(cut), PASS, "sip-udp");
  h.expect("pattern in RTP (no inspect_sip)", udp(payload_with("friendly-scanner", 100, 172), 20000), PASS, "rtp");
  h.expect("FRIENDLY-SCANNER, case kept", udp(payload_with("FRIENDLY-SCANNER", 300)), PASS, "sip-udp");
  h.expect("Friendly-Scanner, case kept", udp(payload_with("Friendly-Scanner", 300)), PASS, "sip-udp");
  h.expect("one byte short", udp(payload_with("friendly-scanne", 300)), PASS, "sip-udp");
  h.expect("an empty UDP payload", udp(""), PASS, "sip-udp");
  h.expect("a one-byte UDP payload", udp("x"), PASS, "sip-udp");
}

TEST_CASE("ignore_case folds ASCII case") {
  Harness h = Harness::make(policy(R"("sip": {"ignore_case": true, "ban_seconds": 0},)"));
  for (std::string v : {"FRIENDLY-SCANNER", "Friendly-Scanner", "fRiEnDlY-sCaNnEr", "friendly-scanner"})
    h.expect(v.c_str(), udp(payload_with(v, 500), 5060, "198.18.9.1"), DROP, "scanner:friendly-scanner");
  h.expect("vaxsipuseragent", udp(payload_with("vaxsipuseragent", 20), 5060, "198.18.9.2"), DROP,
           "scanner:VaxSIPUserAgent");
  h.expect("IWAR at the very end", udp(payload_with("IWAR", 1396), 5060, "198.18.9.3"), DROP, "scanner:iWar");
}

TEST_CASE("IPv6 and TCP") {
  Harness h = Harness::make(policy(R"("sip": {"ban_seconds": 0},)"));
  auto v6 = PacketBuilder().ipv6(kClient6, kServer6).udp(40000, 5080).payload(payload_with("sipcli", 800)).build();
  h.expect("IPv6 UDP", v6, DROP, "scanner:sipcli");
  auto v6ext =
      PacketBuilder().ipv6(kClient6, kServer6).ext(0).udp(40000, 5060).payload(payload_with("sipsak", 3)).build();
  h.expect("IPv6 with hop-by-hop", v6ext, DROP, "scanner:sipsak");
  auto tcp =
      PacketBuilder().ipv4("198.18.8.8", kServer).tcp(40000, 5060, 0x18).payload(payload_with("iWar", 60)).build();
  h.expect("TCP", tcp, DROP, "scanner:iWar");
  auto tcp6 =
      PacketBuilder().ipv6("2001:db8:88::8", kServer6).tcp(40000, 5060, 0x18).payload(payload_with("", 0, 600)).build();
  h.expect("clean TCP over IPv6", tcp6, PASS, "sip-tcp");
  auto vlan =
      PacketBuilder().vlan(7).ipv4("198.18.8.9", kServer).udp(1, 5060).payload(payload_with("sundayddr", 9)).build();
  h.expect("802.1Q", vlan, DROP, "scanner:sundayddr");
}

TEST_CASE("the earliest-listed pattern takes the packet") {
  Harness h = Harness::make(policy(R"("sip": {"ban_seconds": 0},)"));
  // svmap puts "sipvicious" in To/From, before "friendly-scanner" in User-Agent.
  std::string p = payload_with("sipvicious", 100);
  p.replace(900, 16, "friendly-scanner");
  h.expect("sipvicious then friendly-scanner", udp(p), DROP, "scanner:friendly-scanner");
  p = payload_with("sipsak", 10);
  p.replace(1000, 4, "iWar");
  h.expect("sipsak then iWar", udp(p), DROP, "scanner:iWar");
}

TEST_CASE("a hit bans the source; banned sources drop first, on their own counter") {
  Harness h = Harness::make(policy(R"("sip": {"ban_seconds": 600, "trusted": ["198.18.0.0/24"]},)"));
  const char* scanner = "198.18.99.1";
  CHECK(!banned(h.dp, scanner));
  h.expect("scanner OPTIONS", udp(payload_with("friendly-scanner", 200, 400), 5060, scanner), DROP,
           "scanner:friendly-scanner");
  CHECK(banned(h.dp, scanner));
  h.expect("banned: clean SIP", udp(payload_with("", 0, 400), 5060, scanner), DROP, "banned");
  h.expect("banned: RTP", udp(payload_with("", 0, 172), 20000, scanner), DROP, "banned");
  h.expect("banned: TCP to a closed port", PacketBuilder().ipv4(scanner, kServer).tcp(1, 23).build(), DROP, "banned");
  auto bans = h.dp.bans().value();
  REQUIRE(bans.size() == 1);
  CHECK(bans[0].reason == "friendly-scanner");
  CHECK(bans[0].hits == 3);
  CHECK(bans[0].seconds_left > 590);
  CHECK(bans[0].seconds_left <= 600);

  // Trusted sources are neither scanned nor banned; the rules still apply.
  const char* friendly = "198.18.0.77";
  h.expect("trusted with a pattern", udp(payload_with("friendly-scanner", 10, 400), 5060, friendly), PASS, "sip-udp");
  CHECK(!banned(h.dp, friendly));
  h.expect("trusted to a closed port", PacketBuilder().ipv4(friendly, kServer).tcp(1, 23).build(), DROP, "default");
  h.expect("an untrusted neighbour", udp(payload_with("sipcli", 10, 400), 5060, "198.18.1.1"), DROP, "scanner:sipcli");
  CHECK(banned(h.dp, "198.18.1.1"));

  // Lifting a ban by hand.
  REQUIRE(h.dp.ban_del(parse_cidr(scanner).value()).value() == 1);
  CHECK(!banned(h.dp, scanner));
  h.expect("unbanned", udp(payload_with("", 0, 400), 5060, scanner), PASS, "sip-udp");
  CHECK(h.dp.ban_del(parse_cidr(scanner).value()).value() == 0);
}

TEST_CASE("ban_seconds 0 drops without banning") {
  Harness h = Harness::make(policy(R"("sip": {"ban_seconds": 0},)"));
  h.expect("scanner", udp(payload_with("sipcli", 10, 400), 5060, "198.18.50.1"), DROP, "scanner:sipcli");
  CHECK(!banned(h.dp, "198.18.50.1"));
  h.expect("same source, clean", udp(payload_with("", 0, 400), 5060, "198.18.50.1"), PASS, "sip-udp");
}

TEST_CASE("manual prefix bans, and expiry checked by the kernel") {
  Harness h = Harness::make(policy(""));
  REQUIRE(h.dp.ban_add(parse_cidr("198.18.64.0/18").value(), 0).ok());
  REQUIRE(h.dp.ban_add(parse_cidr("2001:db8:bad::/48").value(), 1).ok());
  h.expect("inside the v4 prefix", udp("hello", 5060, "198.18.100.1"), DROP, "banned");
  h.expect("outside the v4 prefix", udp("hello", 5060, "198.18.128.1"), PASS, "sip-udp");
  auto v6 = PacketBuilder().ipv6("2001:db8:bad::9", kServer6).udp(1, 5060).payload("hello").build();
  h.expect("inside the v6 prefix", v6, DROP, "banned");
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  h.expect("after the v6 ban expired", v6, PASS, "sip-udp");
  auto bans = h.dp.bans().value();
  REQUIRE(bans.size() == 1);
  CHECK(bans[0].reason == "manual");
  CHECK(bans[0].seconds_left == -1);
  CHECK(bans[0].hits == 1);
  REQUIRE(h.dp.ban_del(parse_cidr("198.18.64.0/18").value()).value() == 1);
  h.expect("after ban del", udp("hello", 5060, "198.18.100.1"), PASS, "sip-udp");
}

TEST_CASE("an automatic ban expires on its own") {
  Harness h = Harness::make(policy(R"("sip": {"ban_seconds": 1},)"));
  h.expect("scanner", udp(payload_with("sipcli", 10, 400), 5060, "198.18.51.1"), DROP, "scanner:sipcli");
  h.expect("banned", udp("hello", 5060, "198.18.51.1"), DROP, "banned");
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  h.expect("ban expired", udp("hello", 5060, "198.18.51.1"), PASS, "sip-udp");
  CHECK(!banned(h.dp, "198.18.51.1"));
}

TEST_CASE("64 patterns at once") {
  std::string pats;
  std::vector<std::string> list;
  for (int i = 0; i < 64; ++i) {
    list.push_back("scan" + std::to_string(i * 7919 % 100000) + "x");
    pats += (i ? ", \"" : "\"") + list.back() + "\"";
  }
  Harness h = Harness::make(policy(R"("sip": {"ban_seconds": 0, "scanner_patterns": [)" + pats + "]},"));
  for (int i = 0; i < 64; ++i) {
    std::string desc = list[i];
    h.expect(desc.c_str(), udp(payload_with(list[i], (i * 37) % 1300)), DROP, "scanner:" + list[i]);
  }
  h.expect("none of them", udp(payload_with("scan", 5)), PASS, "sip-udp");
}

TEST_CASE("headers mode searches User-Agent, From, To and Contact only") {
  Harness h = Harness::make(policy(R"("sip": {"ban_seconds": 0, "match": "headers", "ignore_case": true},)"));
  auto msg = [](const std::string& headers, const std::string& body = "") {
    return "OPTIONS sip:100@198.18.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 198.18.7.7:5060;branch=z9hG4bK-1\r\n" + headers +
           "Call-ID: 1234@198.18.7.7\r\nCSeq: 1 OPTIONS\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\n\r\n" + body;
  };
  h.expect("User-Agent", udp(msg("User-Agent: friendly-scanner\r\n")), DROP, "scanner:friendly-scanner");
  h.expect("user-agent lowercase", udp(msg("user-agent: sipcli/v1.8\r\n")), DROP, "scanner:sipcli");
  h.expect("From display name", udp(msg("From: \"sipvicious\"<sip:100@1.1.1.1>;tag=1\r\n")), DROP,
           "scanner:sipvicious");
  h.expect("To", udp(msg("To: <sip:sipsak@198.18.0.1>\r\n")), DROP, "scanner:sipsak");
  h.expect("Contact", udp(msg("Contact: <sip:iwar@198.18.7.7>\r\n")), DROP, "scanner:iWar");
  h.expect("compact f:", udp(msg("f: sundayddr <sip:1@1.1.1.1>\r\n")), DROP, "scanner:sundayddr");
  h.expect("compact m:", udp(msg("m: <sip:sip-scan@1.1.1.1>\r\n")), DROP, "scanner:sip-scan");
  h.expect("folded User-Agent", udp(msg("User-Agent: x\r\n VaxSIPUserAgent/3.1\r\n")), DROP, "scanner:VaxSIPUserAgent");
  h.expect("in Subject: not searched", udp(msg("Subject: friendly-scanner\r\n")), PASS, "sip-udp");
  h.expect("in the body: not searched", udp(msg("User-Agent: Asterisk\r\n", "v=0\r\ns=friendly-scanner\r\n")), PASS,
           "sip-udp");
  h.expect("a clean 1,400-byte INVITE", udp(payload_with("", 0)), PASS, "sip-udp");
  h.expect("blank lines before the start line", udp("\r\n\r\n" + msg("User-Agent: friendly-scanner\r\n")), DROP,
           "scanner:friendly-scanner");
  h.expect("bare newlines before the start line", udp("\n\n" + msg("User-Agent: sipcli\r\n")), DROP, "scanner:sipcli");
  std::string two = msg("User-Agent: Linphone\r\n") + msg("User-Agent: sipsak 0.9\r\n");
  h.expect("UDP: only the first message's headers", udp(two), PASS, "sip-udp");
  auto tcp = PacketBuilder().ipv4("198.18.8.1", kServer).tcp(40000, 5060, 0x18).payload(two).build();
  h.expect("TCP: a second message in the segment", tcp, DROP, "scanner:sipsak");
  std::string many;
  for (int i = 0; i < 12; ++i) many += "To: <sip:" + std::to_string(i) + "@198.18.0.1>\r\n";
  h.expect("more searched lines than slots", udp(msg(many + "From: x\r\nContact: <sip:iwar@1.1.1.1>\r\n")), DROP,
           "scanner:iWar");
  h.expect("more searched lines than slots, pattern in the body", udp(msg(many, "v=0\r\ns=friendly-scanner\r\n")), PASS,
           "sip-udp");
}

TEST_CASE("kernel scan agrees with a naive search on random payloads") {
  std::mt19937 rng(3);
  auto dp = Datapath::load();
  REQUIRE(dp.ok());
  const std::string alphabet = "sipcliSIPabcdefghxyz-: \r\n0123456789";
  for (int round = 0; round < 12; ++round) {
    bool icase = round % 2;
    Policy p = parse_policy(policy(R"("sip": {"ban_seconds": 0},)"), "r.json").value();
    p.sip.ignore_case = icase;
    p.sip.patterns.clear();
    int n = 1 + static_cast<int>(rng() % 64);
    std::set<std::string> seen;
    while (static_cast<int>(p.sip.patterns.size()) < n) {
      std::string pat;
      size_t len = 2 + rng() % (round < 6 ? 6 : 63);
      for (size_t i = 0; i < len; ++i) pat += alphabet[rng() % alphabet.size()];
      std::string key = pat;
      if (icase) std::transform(key.begin(), key.end(), key.begin(), ::tolower);
      if (seen.insert(key).second) p.sip.patterns.push_back(pat);
    }
    REQUIRE(dp->apply(p, "", "random").ok());
    auto m = dp->manifest().value();
    for (int i = 0; i < 60; ++i) {
      size_t size = rng() % 1450;
      std::string payload;
      for (size_t k = 0; k < size; ++k) payload += alphabet[rng() % alphabet.size()];
      if (size > 70 && rng() % 2) {
        const std::string& pat = p.sip.patterns[rng() % p.sip.patterns.size()];
        if (pat.size() < size) payload.replace(rng() % (size - pat.size()), pat.size(), pat);
      }
      std::string hay = payload;
      if (icase) std::transform(hay.begin(), hay.end(), hay.begin(), ::tolower);
      int want = -1;
      for (size_t k = 0; k < p.sip.patterns.size() && want < 0; ++k) {
        std::string needle = p.sip.patterns[k];
        if (icase) std::transform(needle.begin(), needle.end(), needle.begin(), ::tolower);
        if (hay.find(needle) != std::string::npos) want = static_cast<int>(k);
      }
      uint32_t slot = want < 0 ? m.rules[0].counter : m.patterns[want].counter;
      auto before = dp->counter(slot).value().packets;
      auto frame = udp(payload);
      uint32_t verdict = static_cast<uint32_t>(run_frame(dp->xdp_prog_fd(), frame));
      CHECK_MESSAGE(verdict == static_cast<uint32_t>(want < 0 ? XDP_PASS : XDP_DROP),
                    "round " << round << " payload " << i << " want pattern " << want);
      CHECK_MESSAGE(dp->counter(slot).value().packets == before + 1, "round " << round << " payload " << i);
    }
  }
}
