// The TC egress program through BPF_PROG_TEST_RUN: DSCP marks (IPv4 checksum,
// IPv6 traffic class, ECN kept, first match, destinations), and the outbound
// flows whose replies the XDP program then lets in.
#include <doctest/doctest.h>
#include <linux/pkt_cls.h>

#include <chrono>
#include <random>
#include <thread>

#include "harness.h"
#include "packet.h"

using namespace sipxdp;
using namespace sipxdp::test;

namespace {

const char* kPolicy = R"({
  "version": 1, "default_action": "drop",
  "rules": [{"name": "sip", "proto": "udp", "dport": 5060, "action": "allow"}],
  "dscp": [
    {"name": "sip-cs3", "proto": "udp", "sport": [5060, 5080], "class": "cs3"},
    {"name": "sip-tcp", "proto": "tcp", "sport": [5060, 5061], "class": "cs3"},
    {"name": "rtp-ef",  "proto": "udp", "sport": "16384-32768", "class": "ef"},
    {"name": "peer",    "proto": "udp", "dst": ["198.18.9.0/24", "2001:db8:9::/48"], "class": "af41"},
    {"name": "rest",    "proto": "udp", "dport": "1-1000", "class": "le"}
  ]
})";

// One's-complement sum of the IPv4 header at `off`: 0xffff when the checksum is right.
uint16_t ipv4_sum(const std::vector<uint8_t>& f, size_t off = 14) {
  uint32_t sum = 0;
  for (size_t i = off; i < off + 20; i += 2) sum += (f[i] << 8) | f[i + 1];
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

uint8_t tos4(const std::vector<uint8_t>& f) {
  return f[15];
}
uint8_t tclass6(const std::vector<uint8_t>& f) {
  return static_cast<uint8_t>((f[14] << 4) | (f[15] >> 4));
}
uint32_t flow_label6(const std::vector<uint8_t>& f) {
  return (uint32_t(f[15] & 0x0f) << 16) | (uint32_t(f[16]) << 8) | f[17];
}

// Runs `frame` out through TC; `counter` (besides "egress") must move by one.
std::vector<uint8_t> egress(Harness& h, const char* desc, const std::vector<uint8_t>& frame, const char* counter) {
  std::vector<uint8_t> out;
  std::vector<std::string> moved = {"egress"};
  if (counter) moved.push_back(counter);
  int verdict = -1;
  h.expect_counters(desc, frame, moved, [&] { verdict = h.run_tc(frame, out); });
  CHECK_MESSAGE(verdict == TC_ACT_UNSPEC,
                desc << ": the egress program must leave the verdict to others (got " << verdict << ")");
  REQUIRE(out.size() == frame.size());
  return out;
}

}  // namespace

TEST_CASE("egress marks IPv4 with the first matching DSCP rule; checksum fixed, ECN kept") {
  Harness h = Harness::make(kPolicy);
  struct Case {
    const char* desc;
    std::vector<uint8_t> frame;
    const char* counter;
    uint8_t dscp;  // expected; 0xff: untouched
  };
  const Case cases[] = {
      {"SIP UDP 5060", PacketBuilder().ipv4(kServer, kClient).udp(5060, 5060).payload("OPTIONS").build(),
       "dscp:sip-cs3", 24},
      {"SIP UDP 5080 with ECN CE", PacketBuilder().ipv4(kServer, kClient).tos(0x03).udp(5080, 40000).build(),
       "dscp:sip-cs3", 24},
      {"SIP TCP 5061", PacketBuilder().ipv4(kServer, kClient).tcp(5061, 40000, 0x18).build(), "dscp:sip-tcp", 24},
      {"RTP low edge", PacketBuilder().ipv4(kServer, kClient).tos(0x01).udp(16384, 30000).payload(172).build(),
       "dscp:rtp-ef", 46},
      {"RTP high edge", PacketBuilder().ipv4(kServer, kClient).udp(32768, 30000).payload(172).build(), "dscp:rtp-ef",
       46},
      {"first match: RTP port to the peer prefix is still EF",
       PacketBuilder().ipv4(kServer, "198.18.9.9").udp(20000, 2000).build(), "dscp:rtp-ef", 46},
      {"peer prefix", PacketBuilder().ipv4(kServer, "198.18.9.9").udp(40000, 2000).build(), "dscp:peer", 34},
      {"dport rule", PacketBuilder().ipv4(kServer, kClient).tos(0xb8).udp(40000, 53).build(), "dscp:rest", 1},
      {"already marked", PacketBuilder().ipv4(kServer, kClient).tos(0x60).udp(5060, 5060).build(), "dscp:sip-cs3", 24},
      {"no rule: RTP port + 1", PacketBuilder().ipv4(kServer, kClient).tos(0x2e).udp(32769, 30000).build(), nullptr,
       0xff},
      {"no rule: TCP 5080", PacketBuilder().ipv4(kServer, kClient).tcp(5080, 40000, 0x18).build(), nullptr, 0xff},
      {"no rule: ICMP", PacketBuilder().ipv4(kServer, kClient).icmp(0).build(), nullptr, 0xff},
      {"later fragment whose first fragment was not seen",
       PacketBuilder().ipv4(kServer, kClient).fragment(1480, false).udp(5060, 5060).payload(100).build(), nullptr,
       0xff},
  };
  for (auto& c : cases) {
    auto out = egress(h, c.desc, c.frame, c.counter);
    CAPTURE(std::string(c.desc));
    CHECK(ipv4_sum(out) == 0xffff);
    if (c.dscp == 0xff) {
      CHECK(out == c.frame);
      continue;
    }
    CHECK((tos4(out) >> 2) == c.dscp);
    CHECK((tos4(out) & 3) == (tos4(c.frame) & 3));  // ECN untouched
    // Only the TOS byte and the checksum may differ.
    for (size_t i = 0; i < out.size(); ++i)
      if (i != 15 && i != 24 && i != 25) CHECK_MESSAGE(out[i] == c.frame[i], "byte " << i << " changed");
  }
}

TEST_CASE("egress marks IPv6 traffic class; flow label and ECN kept") {
  Harness h = Harness::make(kPolicy);
  const uint32_t fl = 0xabcde;
  auto sip = PacketBuilder().ipv6(kServer6, kClient6).tos(0x02).flow_label(fl).udp(5060, 5060).build();
  auto out = egress(h, "IPv6 SIP", sip, "dscp:sip-cs3");
  CHECK(tclass6(out) == ((24 << 2) | 2));
  CHECK(flow_label6(out) == fl);
  CHECK((out[14] >> 4) == 6);
  for (size_t i = 0; i < out.size(); ++i)
    if (i != 14 && i != 15) CHECK_MESSAGE(out[i] == sip[i], "byte " << i << " changed");
  auto rtp = PacketBuilder().ipv6(kServer6, kClient6).tos(0xff).flow_label(1).ext(0).udp(20000, 20000).build();
  out = egress(h, "IPv6 RTP behind a hop-by-hop header", rtp, "dscp:rtp-ef");
  CHECK(tclass6(out) == ((46 << 2) | 3));
  CHECK(flow_label6(out) == 1);
  auto peer = PacketBuilder().ipv6(kServer6, "2001:db8:9:1::5").udp(40000, 4000).build();
  out = egress(h, "IPv6 peer prefix", peer, "dscp:peer");
  CHECK(tclass6(out) == (34 << 2));
  auto other = PacketBuilder().ipv6(kServer6, "2001:db8:a::5").tos(0x10).udp(40000, 4000).build();
  out = egress(h, "IPv6 no rule", other, nullptr);
  CHECK(out == other);
}

TEST_CASE("later fragments leave with their first fragment's mark") {
  Harness h = Harness::make(kPolicy);
  // A 3,000-byte SIP INVITE from the server, as the kernel fragments it before TC.
  auto first = PacketBuilder().ipv4(kServer, kClient).fragment(0, true, 0x51).udp(5060, 5060).payload(1472).build();
  auto second = PacketBuilder().ipv4(kServer, kClient).fragment(1480, true, 0x51).udp(5060, 5060).payload(1480).build();
  auto last = PacketBuilder().ipv4(kServer, kClient).fragment(2960, false, 0x51).udp(5060, 5060).payload(48).build();
  for (auto* f : {&first, &second, &last}) {
    auto out = egress(h, "IPv4 fragment of a SIP datagram", *f, "dscp:sip-cs3");
    CHECK((tos4(out) >> 2) == 24);
    CHECK(ipv4_sum(out) == 0xffff);
  }
  auto v6first =
      PacketBuilder().ipv6(kServer6, kClient6).fragment(0, true, 0x52).udp(20000, 20000).payload(1400).build();
  auto v6last =
      PacketBuilder().ipv6(kServer6, kClient6).fragment(1408, false, 0x52).udp(20000, 20000).payload(600).build();
  CHECK(tclass6(egress(h, "IPv6 first fragment of RTP", v6first, "dscp:rtp-ef")) == (46 << 2));
  CHECK(tclass6(egress(h, "IPv6 later fragment of RTP", v6last, "dscp:rtp-ef")) == (46 << 2));
  // A datagram no rule marks: its later fragments stay unmarked too.
  auto plain = PacketBuilder().ipv4(kServer, kClient).fragment(0, true, 0x53).udp(40000, 2000).payload(1472).build();
  auto plain2 =
      PacketBuilder().ipv4(kServer, kClient).fragment(1480, false, 0x53).udp(40000, 2000).payload(100).build();
  CHECK(egress(h, "unmarked first fragment", plain, nullptr) == plain);
  CHECK(egress(h, "unmarked later fragment", plain2, nullptr) == plain2);
}

TEST_CASE("random TOS values and classes: the IPv4 checksum always verifies") {
  std::string dscp = "[";
  for (int i = 0; i < 32; ++i)
    dscp += std::string(i ? "," : "") + "{\"name\": \"c" + std::to_string(i) +
            "\", \"proto\": \"udp\", \"sport\": " + std::to_string(10000 + i) +
            ", \"class\": " + std::to_string((i * 37) % 64) + "}";
  Harness h = Harness::make(R"({"version": 1, "default_action": "allow", "dscp": )" + dscp + "]}");
  std::mt19937 rng(4242);
  std::vector<uint8_t> out;
  for (int n = 0; n < 500; ++n) {
    int i = static_cast<int>(rng() % 32);
    char src[32], dst[32];
    std::snprintf(src, sizeof(src), "198.18.%u.%u", unsigned(rng() % 256), unsigned(rng() % 256));
    std::snprintf(dst, sizeof(dst), "198.19.%u.%u", unsigned(rng() % 256), unsigned(rng() % 256));
    uint8_t tos = static_cast<uint8_t>(rng());
    auto f =
        PacketBuilder().ipv4(src, dst).tos(tos).udp(static_cast<uint16_t>(10000 + i), 9).payload(rng() % 64).build();
    REQUIRE(h.run_tc(f, out) == TC_ACT_UNSPEC);
    CAPTURE(n);
    CHECK(ipv4_sum(out) == 0xffff);
    CHECK((tos4(out) >> 2) == (i * 37) % 64);
    CHECK((tos4(out) & 3) == (tos & 3));
  }
}

TEST_CASE("DSCP rules change with apply, counters follow names") {
  Harness h = Harness::make(kPolicy);
  auto f = PacketBuilder().ipv4(kServer, kClient).udp(5060, 5060).build();
  egress(h, "before", f, "dscp:sip-cs3");
  h.apply(R"({"version": 1, "default_action": "drop",
    "dscp": [{"name": "new-first", "proto": "udp", "sport": 5060, "class": "cs5"},
             {"name": "sip-cs3", "proto": "udp", "sport": [5060, 5080], "class": "cs3"}]})");
  auto out = egress(h, "after: the new first rule", f, "dscp:new-first");
  CHECK((tos4(out) >> 2) == 40);
  auto v = h.dp.counter(h.slot["dscp:sip-cs3"]);
  REQUIRE(v.ok());
  CHECK(v->packets == 1);  // kept its count across the edit
  h.apply(R"({"version": 1, "default_action": "drop"})");
  out = egress(h, "no DSCP rules left", f, nullptr);
  CHECK(out == f);
}

TEST_CASE("stateful: replies to outbound flows pass on 'established', nothing else does") {
  Harness h = Harness::make(R"({"version": 1, "default_action": "drop",
    "rules": [{"name": "sip", "proto": "udp", "dport": 5060, "action": "allow"},
              {"name": "no-peer", "src": "198.18.99.0/24", "action": "drop"}]})");
  std::vector<uint8_t> out;
  auto reply_udp = PacketBuilder().ipv4(kClient, kServer).udp(53, 40000).payload(40).build();
  h.expect("UDP reply before any outbound packet", reply_udp, DROP, "default");

  egress(h, "DNS query out", PacketBuilder().ipv4(kServer, kClient).udp(40000, 53).payload(30).build(), nullptr);
  h.expect("its reply", reply_udp, PASS, "established");
  h.expect("same client, other source port", PacketBuilder().ipv4(kClient, kServer).udp(54, 40000).build(), DROP,
           "default");
  h.expect("same ports, other client", PacketBuilder().ipv4("198.18.7.8", kServer).udp(53, 40000).build(), DROP,
           "default");
  h.expect("TCP on the same ports", PacketBuilder().ipv4(kClient, kServer).tcp(53, 40000, 0x12).build(), DROP,
           "default");
  h.expect("a rule that allows still counts on the rule",
           PacketBuilder().ipv4(kClient, kServer).udp(40000, 5060).build(), PASS, "sip");

  egress(h, "TCP SYN out", PacketBuilder().ipv4(kServer, "198.18.99.5").tcp(45000, 443).build(), nullptr);
  h.expect("SYN-ACK back, though a rule drops its source",
           PacketBuilder().ipv4("198.18.99.5", kServer).tcp(443, 45000, 0x12).build(), PASS, "established");
  h.expect("a new connection from that host", PacketBuilder().ipv4("198.18.99.5", kServer).tcp(443, 45001).build(),
           DROP, "no-peer");
  h.expect("a bare SYN on the flow's ports is not a reply",
           PacketBuilder().ipv4("198.18.99.5", kServer).tcp(443, 45000, 0x02).build(), DROP, "no-peer");
  egress(h, "GRE out", PacketBuilder().ipv4(kServer, "198.18.99.5").proto(47).payload(40).build(), nullptr);
  h.expect("GRE back: other protocols open no flow (they need a rule)",
           PacketBuilder().ipv4("198.18.99.5", kServer).proto(47).payload(40).build(), DROP, "no-peer");

  egress(h, "ping out", PacketBuilder().ipv4(kServer, kClient).icmp(8).echo_id(777).build(), nullptr);
  h.expect("echo reply", PacketBuilder().ipv4(kClient, kServer).icmp(0).echo_id(777).build(), PASS, "established");
  h.expect("echo reply, other id", PacketBuilder().ipv4(kClient, kServer).icmp(0).echo_id(778).build(), DROP,
           "default");
  h.expect("echo request with that id", PacketBuilder().ipv4(kClient, kServer).icmp(8).echo_id(777).build(), DROP,
           "default");
  egress(h, "echo reply out opens nothing", PacketBuilder().ipv4(kServer, kClient).icmp(0).echo_id(900).build(),
         nullptr);
  h.expect("so a reply to it is not let in", PacketBuilder().ipv4(kClient, kServer).icmp(0).echo_id(900).build(), DROP,
           "default");

  egress(h, "IPv6 UDP out", PacketBuilder().ipv6(kServer6, kClient6).udp(40001, 5353).build(), nullptr);
  h.expect("IPv6 reply", PacketBuilder().ipv6(kClient6, kServer6).udp(5353, 40001).build(), PASS, "established");
  egress(h, "IPv6 ping out", PacketBuilder().ipv6(kServer6, kClient6).icmp(128).echo_id(5).build(), nullptr);
  h.expect("IPv6 echo reply", PacketBuilder().ipv6(kClient6, kServer6).icmp(129).echo_id(5).build(), PASS,
           "established");

  // A fragmented reply: the first fragment's verdict carries the rest.
  h.expect("first fragment of a reply",
           PacketBuilder().ipv4(kClient, kServer).fragment(0, true, 0x77).udp(53, 40000).payload(1000).build(), PASS,
           "established");
  h.expect("its later fragment",
           PacketBuilder().ipv4(kClient, kServer).fragment(1008, false, 0x77).udp(53, 40000).payload(500).build(), PASS,
           "established");

  auto s = h.dp.flow_table();
  REQUIRE(s.ok());
  CHECK(s->capacity == SIPXDP_FLOWS_DEFAULT);
  CHECK(s->entries == 5);  // UDP, TCP, ping, IPv6 UDP, IPv6 ping
  CHECK(s->live == 5);

  h.apply(R"({"version": 1, "default_action": "drop", "stateful": false})");
  h.expect("stateful off: the reply drops", reply_udp, DROP, "default");
  egress(h, "stateful off records nothing", PacketBuilder().ipv4(kServer, kClient).udp(40100, 53).build(), nullptr);
  s = h.dp.flow_table();
  REQUIRE(s.ok());
  CHECK(s->entries == 5);
}

TEST_CASE("stateful: ICMP errors about a recorded flow pass (path MTU discovery, traceroute)") {
  Harness h = Harness::make(R"({"version": 1, "default_action": "drop"})");
  // The quoted packet: the IP header and the first 8 bytes after it.
  auto quote = [](const std::vector<uint8_t>& frame, size_t n) {
    return std::string(frame.begin() + 14, frame.begin() + 14 + n);
  };
  auto syn = PacketBuilder().ipv4(kServer, "198.18.99.5").tcp(45000, 443).build();
  auto frag_needed = PacketBuilder().ipv4("198.18.50.1", kServer).icmp(3, 4).payload(quote(syn, 28)).build();
  h.expect("fragmentation needed before the flow exists", frag_needed, DROP, "default");
  egress(h, "SYN out", syn, nullptr);
  h.expect("fragmentation needed about it, from a router", frag_needed, PASS, "established");
  h.expect("time exceeded about it",
           PacketBuilder().ipv4("198.18.50.1", kServer).icmp(11, 0).payload(quote(syn, 28)).build(), PASS,
           "established");
  auto other = PacketBuilder().ipv4(kServer, "198.18.99.5").tcp(45001, 443).build();
  h.expect("about another port",
           PacketBuilder().ipv4("198.18.50.1", kServer).icmp(3, 4).payload(quote(other, 28)).build(), DROP, "default");
  auto forged = PacketBuilder().ipv4("198.18.99.5", "198.18.99.6").tcp(45000, 443).build();
  h.expect("quoting a packet this host did not send",
           PacketBuilder().ipv4("198.18.50.1", kServer).icmp(3, 4).payload(quote(forged, 28)).build(), DROP, "default");
  h.expect("truncated quote", PacketBuilder().ipv4("198.18.50.1", kServer).icmp(3, 4).payload(quote(syn, 20)).build(),
           DROP, "default");

  auto udp6 = PacketBuilder().ipv6(kServer6, kClient6).udp(40002, 5060).payload(1400).build();
  auto too_big = PacketBuilder().ipv6("2001:db8:50::1", kServer6).icmp(2, 0).payload(quote(udp6, 48)).build();
  h.expect("IPv6 packet too big before the flow", too_big, DROP, "default");
  egress(h, "IPv6 UDP out", udp6, nullptr);
  h.expect("IPv6 packet too big about it", too_big, PASS, "established");
  // A big UDP datagram leaves in fragments; Packet Too Big quotes the first, Fragment header and all.
  auto big6 = PacketBuilder().ipv6(kServer6, kClient6).fragment(0, true, 0x99).udp(40003, 5060).payload(1400).build();
  egress(h, "IPv6 first fragment out", big6, nullptr);
  h.expect("IPv6 packet too big about a fragmented datagram",
           PacketBuilder().ipv6("2001:db8:50::1", kServer6).icmp(2, 0).payload(quote(big6, 56)).build(), PASS,
           "established");
  auto later6 =
      PacketBuilder().ipv6(kServer6, kClient6).fragment(1400, false, 0x99).udp(40003, 5060).payload(100).build();
  h.expect("quoting a later fragment (no ports)",
           PacketBuilder().ipv6("2001:db8:50::1", kServer6).icmp(2, 0).payload(quote(later6, 56)).build(), DROP,
           "default");
  auto ping = PacketBuilder().ipv4(kServer, kClient).icmp(8).echo_id(31).build();
  egress(h, "ping out", ping, nullptr);
  h.expect("unreachable about the ping",
           PacketBuilder().ipv4("198.18.50.1", kServer).icmp(3, 1).payload(quote(ping, 28)).build(), PASS,
           "established");
}

TEST_CASE("stateful: UDP whose replies the rules allow anyway is not recorded (RTP does not fill the table)") {
  Harness h = Harness::make(R"({"version": 1, "default_action": "drop", "rules": [
    {"name": "rtp", "proto": "udp", "dport": "16384-32768", "action": "allow"},
    {"name": "sip", "proto": "udp", "dport": 5060, "src": "198.18.0.0/16", "action": "allow"}]})");
  auto entries = [&] {
    auto t = h.dp.flow_table();
    REQUIRE(t.ok());
    return t->entries;
  };
  egress(h, "RTP out", PacketBuilder().ipv4(kServer, kClient).udp(20000, 30000).build(), nullptr);
  CHECK(entries() == 0);
  egress(h, "SIP out: its replies are allowed only from some sources",
         PacketBuilder().ipv4(kServer, kClient).udp(5060, 5060).build(), nullptr);
  CHECK(entries() == 1);
  egress(h, "DNS out", PacketBuilder().ipv4(kServer, kClient).udp(40000, 53).build(), nullptr);
  CHECK(entries() == 2);
  egress(h, "TCP out from an allowed port is still recorded",
         PacketBuilder().ipv4(kServer, kClient).tcp(20000, 443).build(), nullptr);
  CHECK(entries() == 3);
  h.expect("RTP back: on its rule", PacketBuilder().ipv4(kClient, kServer).udp(30000, 20000).build(), PASS, "rtp");
  h.expect("SIP reply from outside the rule's sources",
           PacketBuilder().ipv4("198.19.0.9", kServer).udp(5060, 5060).build(), DROP, "default");
}

TEST_CASE("stateful: a flow expires after its timeout") {
  Harness h = Harness::make(R"({"version": 1, "default_action": "drop", "flow_timeouts": {"udp": 1}})");
  auto reply = PacketBuilder().ipv4(kClient, kServer).udp(53, 40000).build();
  egress(h, "query out", PacketBuilder().ipv4(kServer, kClient).udp(40000, 53).build(), nullptr);
  h.expect("reply within 1 s", reply, PASS, "established");
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  h.expect("reply after 2.1 s", reply, DROP, "default");
  auto s = h.dp.flow_table();
  REQUIRE(s.ok());
  CHECK(s->entries == 1);
  CHECK(s->live == 0);
}
