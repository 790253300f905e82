// Evasions and edges found by outside testing (issue 10): scanner patterns
// in fragments and split across fragments or TCP segments, out-of-order
// fragments, mapped loopback, extension-header limits.
#include <doctest/doctest.h>

#include <algorithm>
#include <random>

#include "harness.h"
#include "packet.h"

using namespace sipxdp;
using namespace sipxdp::test;

namespace {

using P = PacketBuilder;

std::string policy(const std::string& sip_block = "") {
  return R"({"version": 1, "default_action": "drop", "sip": {"ban_seconds": 0)" + sip_block + R"(},
  "rules": [
    {"name": "sip-udp", "proto": "udp", "dport": 5060, "action": "allow", "inspect_sip": true},
    {"name": "sip-tcp", "proto": "tcp", "dport": 5060, "action": "allow", "inspect_sip": true},
    {"name": "rtp", "proto": "udp", "dport": "16384-32768", "action": "allow"}
  ]})";
}

// SIP-looking bytes of exactly `n`, with `what` at `at` (if given).
std::string sip_bytes(size_t n, const std::string& what = "", size_t at = 0) {
  std::string filler =
      "OPTIONS sip:100@198.18.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 198.18.7.7:5060;branch=z9hG4bK-524287-1\r\n"
      "Record-Route: <sip:proxy.example.net;lr>\r\nMax-Forwards: 70\r\nCall-ID: 1-2-3@198.18.7.7\r\n";
  std::string s;
  while (s.size() < n) s += filler;
  s.resize(n);
  if (!what.empty()) s.replace(at, what.size(), what);
  return s;
}

// A UDP datagram to `dport` cut into fragments at the given payload offsets
// (multiples of 8, counted in the IP payload: the UDP header is its first 8 bytes).
std::vector<std::vector<uint8_t>> fragments(const std::string& payload, std::vector<size_t> cuts, uint32_t id,
                                            uint16_t dport = 5060, bool v6 = false, const char* src = nullptr) {
  std::string ip_payload(8, '\0');  // stands for the UDP header in later fragments' offsets
  ip_payload += payload;
  cuts.push_back(ip_payload.size());
  std::vector<std::vector<uint8_t>> out;
  size_t start = 0;
  for (size_t i = 0; i < cuts.size(); ++i) {
    size_t end = cuts[i];
    bool more = i + 1 < cuts.size();
    P b;
    if (v6)
      b.ipv6(src ? src : kClient6, kServer6);
    else
      b.ipv4(src ? src : kClient, kServer);
    b.fragment(static_cast<uint16_t>(start), more, id);
    if (start == 0)
      b.udp(40000, dport).payload(ip_payload.substr(8, end - 8));
    else
      b.udp(40000, dport).payload(ip_payload.substr(start, end - start));
    out.push_back(b.build());
    start = end;
  }
  return out;
}

bool banned(Datapath& dp, const std::string& prefix) {
  auto bans = dp.bans();
  REQUIRE(bans.ok());
  return std::any_of(bans->begin(), bans->end(), [&](auto& b) { return b.prefix.str() == prefix; });
}

}  // namespace

TEST_CASE("fragments of an inspected datagram: every fragment is searched, and every boundary") {
  Harness h = Harness::make(policy());
  const std::string pat = "friendly-scanner";

  SUBCASE("a tiny first fragment (the UDP header alone) drops, and the rest with it") {
    auto f = fragments(sip_bytes(1200, "User-Agent: " + pat, 400), {8}, 11);
    h.expect("first fragment, 8 bytes", f[0], DROP, "fragment");
    h.expect("the message in the later fragment", f[1], DROP, "fragment");
  }
  SUBCASE("a pattern in a later fragment, in order") {
    auto f = fragments(sip_bytes(2200, pat, 1900), {1480}, 12);
    h.expect("clean first fragment", f[0], PASS, "sip-udp");
    h.expect("the pattern in the later fragment", f[1], DROP, "scanner:" + pat);
  }
  SUBCASE("the same bytes to a port that is not inspected pass") {
    auto f = fragments(sip_bytes(2200, pat, 1900), {1480}, 13, 20000);
    h.expect("first fragment, rtp", f[0], PASS, "rtp");
    h.expect("later fragment, rtp", f[1], PASS, "rtp");
  }
  SUBCASE("a pattern split across the boundary, in order") {
    // The boundary is at IP payload offset 1480: UDP payload offset 1472.
    auto f = fragments(sip_bytes(2200, pat, 1472 - 9), {1480}, 14);
    h.expect("first fragment ends with friendly-", f[0], PASS, "sip-udp");
    h.expect("later fragment starts with scanner", f[1], DROP, "scanner:" + pat);
  }
  SUBCASE("a pattern split across the boundary, later fragment first") {
    auto f = fragments(sip_bytes(2200, pat, 1472 - 5), {1480}, 15);
    h.expect("later fragment first: to reassembly", f[1], PASS, "fragment-early");
    h.expect("first fragment completes the pattern", f[0], DROP, "scanner:" + pat);
  }
  SUBCASE("a pattern inside a later fragment that comes first") {
    auto f = fragments(sip_bytes(2200, pat, 1700), {1480}, 16);
    h.expect("the pattern's fragment first: to reassembly", f[1], PASS, "fragment-early");
    h.expect("the clean first fragment drops for it", f[0], DROP, "scanner:" + pat);
  }
  SUBCASE("three fragments in every order: a clean datagram passes whole") {
    std::vector<int> order = {0, 1, 2};
    uint32_t id = 100;
    do {
      auto f = fragments(sip_bytes(3600), {1480, 2960}, id++);
      bool first_seen = false;
      for (int i : order) {
        std::string what = "fragment " + std::to_string(i);
        if (i == 0) first_seen = true;
        h.expect(what.c_str(), f[i], PASS, i == 0 || first_seen ? "sip-udp" : "fragment-early");
      }
    } while (std::next_permutation(order.begin(), order.end()));
  }
  SUBCASE("three fragments in every order: a pattern across either boundary is found") {
    for (size_t at : {size_t(1472 - 7), size_t(2952 - 11)}) {
      std::vector<int> order = {0, 1, 2};
      uint32_t id = 200 + static_cast<uint32_t>(at);
      do {
        auto f = fragments(sip_bytes(3600, pat, at), {1480, 2960}, id++);
        int dropped = 0;
        for (int i : order) {
          std::vector<uint8_t> out;
          int v = h.run(f[i]);
          dropped += v == DROP;
        }
        std::string what = "boundary at " + std::to_string(at) + ", order " + std::to_string(order[0]) +
                           std::to_string(order[1]) + std::to_string(order[2]);
        CHECK_MESSAGE(dropped >= 1, what);
      } while (std::next_permutation(order.begin(), order.end()));
    }
  }
  SUBCASE("a short fragment that is not the last cannot be searched across: the datagram drops") {
    auto f = fragments(sip_bytes(1600), {1480, 1512}, 17);  // middle fragment of 32 bytes
    h.expect("first", f[0], PASS, "sip-udp");
    h.expect("a 32-byte middle fragment", f[1], DROP, "fragment");
    h.expect("the last", f[2], DROP, "fragment");
  }
  SUBCASE("IPv6: a pattern split across the boundary, in either order") {
    auto f = fragments(sip_bytes(2200, pat, 1232 - 6), {1240}, 18, 5060, true);
    h.expect("v6 first", f[0], PASS, "sip-udp");
    h.expect("v6 later completes it", f[1], DROP, "scanner:" + pat);
    auto g = fragments(sip_bytes(2200, pat, 1232 - 6), {1240}, 19, 5060, true);
    h.expect("v6 later first", g[1], PASS, "fragment-early");
    h.expect("v6 first completes it", g[0], DROP, "scanner:" + pat);
  }
}

TEST_CASE("fragment bans and trust") {
  Harness h = Harness::make(R"({"version": 1, "default_action": "drop",
    "sip": {"ban_seconds": 60, "trusted": ["198.18.9.0/24"]},
    "rules": [{"name": "sip-udp", "proto": "udp", "dport": 5060, "action": "allow", "inspect_sip": true}]})");
  auto f = fragments(sip_bytes(2200, "sipvicious", 1800), {1480}, 21, 5060, false, "198.18.7.9");
  h.expect("first", f[0], PASS, "sip-udp");
  h.expect("pattern in the later fragment", f[1], DROP, "scanner:sipvicious");
  CHECK(banned(h.dp, "198.18.7.9/32"));
  h.expect("the banned source's next packet", P().ipv4("198.18.7.9", kServer).udp(1, 5060).payload("x").build(), DROP,
           "banned");
  auto t = fragments(sip_bytes(2200, "sipvicious", 1800), {1480}, 22, 5060, false, "198.18.9.5");
  h.expect("trusted first", t[0], PASS, "sip-udp");
  h.expect("trusted later: not searched", t[1], PASS, "sip-udp");
  CHECK(!banned(h.dp, "198.18.9.5/32"));
}

TEST_CASE("sip.fragments: drop is the conservative choice") {
  Harness h = Harness::make(policy(R"(, "fragments": "drop", "trusted": ["198.18.9.0/24"])"));
  auto f = fragments(sip_bytes(2200), {1480}, 31);
  h.expect("first fragment of an inspected datagram", f[0], DROP, "fragment");
  h.expect("its later fragment", f[1], DROP, "fragment");
  auto t = fragments(sip_bytes(2200), {1480}, 32, 5060, false, "198.18.9.5");
  h.expect("trusted: first", t[0], PASS, "sip-udp");
  h.expect("trusted: later", t[1], PASS, "sip-udp");
  auto r = fragments(sip_bytes(2200), {1480}, 33, 20000);
  h.expect("not inspected: first", r[0], PASS, "rtp");
  h.expect("not inspected: later", r[1], PASS, "rtp");
  h.expect("an unfragmented message", P().ipv4(kClient, kServer).udp(1, 5060).payload(sip_bytes(300)).build(), PASS,
           "sip-udp");
}

TEST_CASE("a pattern split across TCP segments") {
  Harness h = Harness::make(policy());
  auto seg = [](uint32_t seq, const std::string& data, uint16_t sport = 41000) {
    return P().ipv4(kClient, kServer).tcp(sport, 5060, 0x18, seq).payload(data).build();
  };
  std::string a = "OPTIONS sip:100@198.18.0.1 SIP/2.0\r\nUser-Agent: friendly-";
  std::string b = "scanner\r\nCall-ID: 1@x\r\n\r\n";
  h.expect("first segment ends with friendly-", seg(1000, a), PASS, "sip-tcp");
  h.expect("the next in-order segment starts with scanner", seg(1000 + a.size(), b), DROP, "scanner:friendly-scanner");
  h.expect("its retransmission meets the same tail", seg(1000 + a.size(), b), DROP, "scanner:friendly-scanner");

  SUBCASE("a pattern sent a byte per segment") {
    std::string msg = "OPTIONS sip:1@x SIP/2.0\r\nUser-Agent: sipvicious\r\n\r\n";
    uint32_t seq = 5000;
    int drops = 0;
    for (size_t i = 0; i < msg.size(); ++i) {
      int v = h.run(seg(seq, msg.substr(i, 1), 41001));
      drops += v == DROP;
      ++seq;
    }
    CHECK(drops == 1);
  }
  SUBCASE("other flows do not join") {
    h.expect("friendly- on one flow", seg(1, a, 41002), PASS, "sip-tcp");
    h.expect("scanner on another flow", seg(1 + a.size(), b, 41003), PASS, "sip-tcp");
  }
  SUBCASE("a retransmission (not the next sequence number) is searched on its own") {
    h.expect("friendly- again", seg(7000, a, 41004), PASS, "sip-tcp");
    h.expect("scanner at a stale sequence number", seg(7000, b, 41004), PASS, "sip-tcp");
  }
}

TEST_CASE("loopback in IPv4-mapped and -compatible IPv6 forms is martian") {
  Harness h = Harness::make(policy());
  auto v6 = [](std::vector<uint8_t> src) {
    uint8_t dst[16];
    inet_pton(AF_INET6, kServer6, dst);
    return P().ipv6_raw(src.data(), dst).udp(1, 5060).payload("x").build();
  };
  h.expect("::ffff:127.0.0.1", v6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1}), DROP, "martian");
  h.expect("::ffff:127.9.9.9", v6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 9, 9, 9}), DROP, "martian");
  h.expect("::127.0.0.1", v6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 127, 0, 0, 1}), DROP, "martian");
  h.expect("::1", v6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}), DROP, "martian");
  h.expect("::ffff:198.18.7.7 is not loopback", v6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 18, 7, 7}), PASS,
           "sip-udp");
  h.expect("::128.0.0.1 is not loopback", v6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 128, 0, 0, 1}), PASS, "sip-udp");
}

TEST_CASE("up to eight IPv6 extension headers are parsed; a ninth is malformed") {
  Harness h = Harness::make(policy());
  for (int n = 0; n <= 9; ++n) {
    P b;
    b.ipv6(kClient6, kServer6);
    for (int i = 0; i < n; ++i) b.ext(i % 2 ? 60 : (i == 0 ? 0 : 43));
    std::string what = std::to_string(n) + " extension headers";
    h.expect(what.c_str(), b.udp(1, 5060).payload("x").build(), n <= 8 ? PASS : DROP, n <= 8 ? "sip-udp" : "malformed");
  }
}

TEST_CASE("stats rows show pattern bytes escaped, and the mode's words") {
  Harness h = Harness::make(R"({"version": 1, "default_action": "drop",
    "sip": {"scanner_patterns": ["a\r\nb", "nul\u0000byte", "plain"], "match": "headers"},
    "rules": [{"name": "s", "proto": "udp", "dport": 5060, "action": "allow", "inspect_sip": true}]})");
  auto rows = h.dp.stats();
  REQUIRE(rows.ok());
  std::vector<std::string> names, matches;
  for (auto& r : rows.value())
    if (r.pattern) names.push_back(r.name), matches.push_back(r.match);
  CHECK(names == std::vector<std::string>{"scanner:a\\r\\nb", "scanner:nul\\x00byte", "scanner:plain"});
  CHECK(matches[0] == "header contains \"a\\r\\nb\"");
  for (auto& m : matches) CHECK(m.find('\n') == std::string::npos);
}
