// Datapath fixtures: a real XDP program in the real kernel, run on built
// packets with BPF_PROG_TEST_RUN; verdicts and counter deltas checked.
#include <bpf/bpf.h>
#include <doctest/doctest.h>
#include <linux/bpf.h>
#include <net/if.h>

#include <map>

#include "harness.h"
#include "model.h"
#include "packet.h"
#include "sipxdp/abi.h"
#include "sipxdp/datapath.h"

using namespace sipxdp;
using namespace sipxdp::test;

namespace {

const char* kPolicy = R"({
  "version": 1,
  "default_action": "drop",
  "rules": [
    {"name": "sip-udp", "proto": "udp", "dport": [5060, 5080], "action": "allow"},
    {"name": "rtp",     "proto": "udp", "dport": "16384-32768", "action": "allow"},
    {"name": "esl",     "proto": "tcp", "dport": 8021, "src": ["198.18.0.10/32", "2001:db8:5::10/128"], "action": "allow"},
    {"name": "ping",    "proto": "icmp", "icmp_type": 8, "action": "allow"},
    {"name": "ping6",   "proto": "icmpv6", "icmp_type": 128, "action": "allow"},
    {"name": "ssh",     "proto": "tcp", "dport": 22, "action": "allow"},
    {"name": "no-gre",  "proto": "gre", "action": "drop"},
    {"name": "trunk",   "proto": "udp", "sport": 5060, "dst": ["198.19.0.0/16"], "action": "allow"}
  ]
})";

std::vector<uint8_t> cut(std::vector<uint8_t> b, size_t n) {
  b.resize(n);
  return b;
}

}  // namespace

TEST_CASE("fixture table: verdicts and counters") {
  Harness h = Harness::make(kPolicy);
  using P = PacketBuilder;
  struct Fixture {
    const char* desc;
    std::vector<uint8_t> frame;
    int verdict;
    const char* counter;
  } fixtures[] = {
      {"IPv4 UDP SIP 5060", P().ipv4(kClient, kServer).udp(40000, 5060).payload("OPTIONS sip:x SIP/2.0\r\n").build(),
       PASS, "sip-udp"},
      {"IPv4 UDP SIP 5080", P().ipv4(kClient, kServer).udp(40000, 5080).build(), PASS, "sip-udp"},
      {"IPv4 UDP 5070 denied", P().ipv4(kClient, kServer).udp(40000, 5070).build(), DROP, "default"},
      {"RTP low edge", P().ipv4(kClient, kServer).udp(30000, 16384).payload(160).build(), PASS, "rtp"},
      {"RTP high edge", P().ipv4(kClient, kServer).udp(30000, 32768).payload(160).build(), PASS, "rtp"},
      {"RTP past the range", P().ipv4(kClient, kServer).udp(30000, 32769).payload(160).build(), DROP, "default"},
      {"IPv6 UDP SIP", P().ipv6(kClient6, kServer6).udp(40000, 5060).build(), PASS, "sip-udp"},
      {"ESL from the manager", P().ipv4("198.18.0.10", kServer).tcp(50000, 8021).build(), PASS, "esl"},
      {"ESL from elsewhere", P().ipv4("198.18.0.11", kServer).tcp(50000, 8021).build(), DROP, "default"},
      {"ESL from the IPv6 manager", P().ipv6("2001:db8:5::10", kServer6).tcp(50000, 8021).build(), PASS, "esl"},
      {"ESL from another IPv6 host", P().ipv6("2001:db8:5::11", kServer6).tcp(50000, 8021).build(), DROP, "default"},
      {"TCP SYN to SSH", P().ipv4(kClient, kServer).tcp(50000, 22).build(), PASS, "ssh"},
      {"TCP SYN to 23", P().ipv4(kClient, kServer).tcp(50000, 23).build(), DROP, "default"},
      {"ICMP echo request", P().ipv4(kClient, kServer).icmp(8).payload(56).build(), PASS, "ping"},
      {"ICMP timestamp", P().ipv4(kClient, kServer).icmp(13).build(), DROP, "default"},
      {"ICMPv6 echo request", P().ipv6(kClient6, kServer6).icmp(128).build(), PASS, "ping6"},
      {"ICMPv6 neighbour solicitation", P().ipv6(kClient6, "ff02::1:ff00:1").icmp(135).payload(16).build(), PASS,
       "ipv6-nd"},
      {"ICMPv6 router advertisement", P().ipv6("fe80::1", "ff02::1").icmp(134).payload(8).build(), PASS, "ipv6-nd"},
      {"ICMPv6 MLD report (not ND)", P().ipv6("fe80::1", "ff02::16").icmp(143).payload(8).build(), DROP, "default"},
      {"GRE dropped by rule", P().ipv4(kClient, kServer).proto(47).payload(20).build(), DROP, "no-gre"},
      {"ESP by default", P().ipv4(kClient, kServer).proto(50).payload(20).build(), DROP, "default"},
      {"sport+dst rule", P().ipv4(kClient, "198.19.4.4").udp(5060, 40000).build(), PASS, "trunk"},
      {"sport+dst rule, other dst", P().ipv4(kClient, "198.20.4.4").udp(5060, 40000).build(), DROP, "default"},
      {"sport+dst rule, other sport", P().ipv4(kClient, "198.19.4.4").udp(5061, 40000).build(), DROP, "default"},
      {"802.1Q tagged SIP", P().vlan(100).ipv4(kClient, kServer).udp(40000, 5060).build(), PASS, "sip-udp"},
      {"QinQ tagged SIP", P().vlan(200, 0x88a8).vlan(100).ipv4(kClient, kServer).udp(40000, 5060).build(), PASS,
       "sip-udp"},
      {"QinQ tagged IPv6 denied", P().vlan(200, 0x88a8).vlan(100).ipv6(kClient6, kServer6).udp(1, 9).build(), DROP,
       "default"},
      {"IPv6 hop-by-hop + dest opts", P().ipv6(kClient6, kServer6).ext(0).ext(60).udp(40000, 5060).build(), PASS,
       "sip-udp"},
      {"IPv6 routing header, denied port", P().ipv6(kClient6, kServer6).ext(43).tcp(1, 23).build(), DROP, "default"},
      {"ARP", P().ethertype(0x0806).build(), PASS, "non-ip"},
      {"LLDP", P().ethertype(0x88cc).build(), PASS, "non-ip"},
      {"IPv4 to 127.0.0.1", P().ipv4(kClient, "127.0.0.1").udp(40000, 5060).build(), DROP, "martian"},
      {"IPv4 from 127.0.0.1", P().ipv4("127.0.0.1", kServer).udp(40000, 5060).build(), DROP, "martian"},
      {"IPv6 to ::1", P().ipv6(kClient6, "::1").udp(40000, 5060).build(), DROP, "martian"},
      {"first fragment, allowed port",
       P().ipv4(kClient, kServer).fragment(0, true, 1).udp(40000, 5060).payload(1400).build(), PASS, "sip-udp"},
      {"its later fragment: the first one's verdict and counter",
       P().ipv4(kClient, kServer).fragment(1408, false, 1).udp(40000, 5060).payload(600).build(), PASS, "sip-udp"},
      {"first fragment, denied port",
       P().ipv4(kClient, kServer).fragment(0, true, 2).udp(40000, 5070).payload(1400).build(), DROP, "default"},
      {"its later fragment, denied too",
       P().ipv4(kClient, kServer).fragment(1408, false, 2).udp(40000, 5070).payload(600).build(), DROP, "default"},
      // Without its first fragment the kernel's reassembly cannot complete it.
      {"a forged later fragment alone: to reassembly",
       P().ipv4(kClient, kServer).fragment(1408, false, 3).udp(40000, 5060).payload(600).build(), PASS,
       "fragment-early"},
      {"a later fragment of datagram 1 from another source: another datagram",
       P().ipv4("198.18.7.8", kServer).fragment(1408, false, 1).udp(40000, 5060).payload(600).build(), PASS,
       "fragment-early"},
      {"IPv6 first fragment", P().ipv6(kClient6, kServer6).fragment(0, true, 7).udp(40000, 5060).payload(1000).build(),
       PASS, "sip-udp"},
      {"IPv6 later fragment",
       P().ipv6(kClient6, kServer6).fragment(1008, false, 7).udp(40000, 5060).payload(100).build(), PASS, "sip-udp"},
      {"IPv6 forged later fragment: to reassembly",
       P().ipv6(kClient6, kServer6).fragment(1008, false, 8).udp(40000, 5060).payload(100).build(), PASS,
       "fragment-early"},
  };
  for (auto& f : fixtures) h.expect(f.desc, f.frame, f.verdict, f.counter);
}

TEST_CASE("truncated and malformed headers drop on their own counter") {
  Harness h = Harness::make(kPolicy);
  using P = PacketBuilder;
  auto udp4 = P().ipv4(kClient, kServer).udp(40000, 5060).payload(20).build();
  auto tcp4 = P().ipv4(kClient, kServer).tcp(40000, 22).build();
  auto udp6 = P().ipv6(kClient6, kServer6).udp(40000, 5060).build();
  auto icmp4 = P().ipv4(kClient, kServer).icmp(8).build();
  // (BPF_PROG_TEST_RUN refuses frames shorter than an Ethernet header.)
  h.expect("Ethernet header only", cut(udp4, 14), DROP, "malformed");
  h.expect("cut inside the VLAN tag", cut(P().vlan(5).ipv4(kClient, kServer).udp(1, 5060).build(), 16), DROP,
           "malformed");
  h.expect("cut inside IPv4", cut(udp4, 14 + 12), DROP, "malformed");
  h.expect("cut inside UDP", cut(udp4, 14 + 20 + 4), DROP, "malformed");
  h.expect("cut inside TCP", cut(tcp4, 14 + 20 + 12), DROP, "malformed");
  h.expect("cut inside IPv6", cut(udp6, 14 + 30), DROP, "malformed");
  h.expect("cut inside ICMP", cut(icmp4, 14 + 20 + 4), DROP, "malformed");
  auto bad = udp4;
  bad[14] = 0x44;  // IHL 4
  h.expect("IPv4 IHL below 5", bad, DROP, "malformed");
  bad = udp4;
  bad[14] = 0x65;  // version 6 in an IPv4 ethertype
  h.expect("IPv4 with version 6", bad, DROP, "malformed");
  bad = udp4;
  bad[16] = 0x0f, bad[17] = 0xff;  // total length past the frame
  h.expect("IPv4 total length past the frame", bad, DROP, "malformed");
  bad = tcp4;
  bad[14 + 20 + 12] = 0x30;  // data offset 3
  h.expect("TCP data offset below 5", bad, DROP, "malformed");
  bad = udp4;
  bad[14 + 20 + 4] = 0, bad[14 + 20 + 5] = 4;  // UDP length 4
  h.expect("UDP length below 8", bad, DROP, "malformed");
  auto deep = P().ipv6(kClient6, kServer6);
  for (int i = 0; i < 9; ++i) deep.ext(60);
  h.expect("more IPv6 extension headers than walked", deep.udp(1, 5060).build(), DROP, "malformed");
  h.expect("three VLAN tags", P().vlan(1, 0x88a8).vlan(2).vlan(3).ipv4(kClient, kServer).udp(1, 5060).build(), DROP,
           "malformed");
  // A later IPv6 fragment whose payload looks like more extension headers.
  auto later = P().ipv6(kClient6, kServer6).fragment(1008, false).proto(0).payload(std::string(64, '\0')).build();
  h.expect("IPv6 later fragment of a hop-by-hop-looking payload", later, PASS, "fragment-early");
}

TEST_CASE("default allow and an empty rule list") {
  Harness h = Harness::make(R"({"version":1,"default_action":"allow","rules":[]})");
  h.expect("anything passes", PacketBuilder().ipv4(kClient, kServer).tcp(1, 23).build(), PASS, "default");
}

TEST_CASE("apply changes verdicts without reloading, counters follow names") {
  Harness h = Harness::make(kPolicy);
  auto sip = PacketBuilder().ipv4(kClient, kServer).udp(40000, 5060).build();
  h.expect("before", sip, PASS, "sip-udp");
  uint32_t sip_slot = h.slot["sip-udp"];
  auto before = h.dp.counter(sip_slot).value();
  int fd = h.dp.xdp_prog_fd();
  h.apply(R"({"version":1,"default_action":"drop","rules":[
    {"name":"new-top","proto":"tcp","dport":80,"action":"allow"},
    {"name":"sip-udp","proto":"udp","dport":5060,"action":"drop"}]})");
  CHECK(h.dp.xdp_prog_fd() == fd);
  CHECK(h.slot["sip-udp"] == sip_slot);
  CHECK(h.dp.counter(sip_slot).value().packets == before.packets);
  h.expect("after", sip, DROP, "sip-udp");
  CHECK(h.dp.counter(sip_slot).value().packets == before.packets + 1);
  CHECK(h.slot["new-top"] != sip_slot);
  CHECK(h.dp.counter(h.slot["new-top"]).value().packets == 0);
}

TEST_CASE("a failed apply leaves the live policy intact") {
  Harness h = Harness::make(kPolicy);
  auto gen = h.dp.active_generation().value();
  // 300 port rules x 300 source rules: the compiler refuses it.
  std::string big = R"({"version":1,"default_action":"allow","rules":[)";
  for (int i = 0; i < 300; ++i) {
    big += R"({"name":"p)" + std::to_string(i) + R"(","proto":"udp","dport":)" + std::to_string(2000 + i) +
           R"(,"action":"allow"},)";
    big += R"({"name":"s)" + std::to_string(i) + R"(","src":"198.18.)" + std::to_string(i / 200) + "." +
           std::to_string(i % 200) + R"(","action":"allow"})" + (i == 299 ? "" : ",");
  }
  big += "]}";
  auto p = parse_policy(big, "big.json");
  REQUIRE(p.ok());
  auto s = h.dp.apply(p.value(), big, "big.json");
  REQUIRE(!s.ok());
  CHECK(s.error().what.find("policy too complex") == 0);
  CHECK(h.dp.active_generation().value() == gen);
  CHECK(h.dp.manifest()->rules.size() == 8);
  h.expect("still the old policy", PacketBuilder().ipv4(kClient, kServer).tcp(1, 23).build(), DROP, "default");
}

TEST_CASE("the kernel agrees with first-match on random policies and packets") {
  std::mt19937 rng(7);
  auto dp = Datapath::load();
  REQUIRE(dp.ok());
  for (int round = 0; round < 40; ++round) {
    Policy p = random_policy(rng, 1 + static_cast<int>(rng() % 12));
    auto s = dp->apply(p, "", "random");
    REQUIRE(s.ok());
    auto m = dp->manifest();
    REQUIRE(m.ok());
    for (int i = 0; i < 50; ++i) {
      PacketKey k = random_packet(rng);
      char src[64], dst[64];
      inet_ntop(k.family == 4 ? AF_INET : AF_INET6, k.src.data(), src, sizeof(src));
      inet_ntop(k.family == 4 ? AF_INET : AF_INET6, k.dst.data(), dst, sizeof(dst));
      PacketBuilder b;
      if (k.family == 4)
        b.ipv4(src, dst);
      else
        b.ipv6(src, dst);
      if (k.proto == 6)
        b.tcp(k.sport, k.dport);
      else if (k.proto == 17)
        b.udp(k.sport, k.dport);
      else if ((k.proto == 1 && k.family == 4) || (k.proto == 58 && k.family == 6))
        b.icmp(static_cast<uint8_t>(k.dport));
      else
        b.proto(k.proto).payload(8);
      auto frame = b.build();
      // Skip what the built-in paths take before the rules (ND, martians).
      if (k.family == 6 && k.proto == 58 && k.dport >= 133 && k.dport <= 137) continue;
      int want = reference_match(p, k);
      uint32_t slot = want < 0 ? uint32_t(SIPXDP_CTR_DEFAULT) : m->rules[want].counter;
      auto before = dp->counter(slot).value().packets;
      uint32_t verdict = static_cast<uint32_t>(run_frame(dp->xdp_prog_fd(), frame));
      Action a = want < 0 ? p.default_action : p.rules[want].action;
      CHECK_MESSAGE(verdict == static_cast<uint32_t>(a == Action::allow ? XDP_PASS : XDP_DROP),
                    "round " << round << " packet " << i << " (" << src << " > " << dst << " proto " << int(k.proto)
                             << " " << k.sport << " > " << k.dport << "): want rule " << want);
      CHECK_MESSAGE(dp->counter(slot).value().packets == before + 1, "round " << round << " packet " << i);
    }
  }
}
