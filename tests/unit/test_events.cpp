// Drop events in userspace: the "events" policy block, decoding what an
// event's bytes say (addresses, ports, SIP method, User-Agent), the filters,
// and the pcapng writer's blocks.
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>

#include "packet.h"
#include "policies.h"
#include "sipxdp/drop_events.h"
#include "sipxdp/manifest.h"
#include "sipxdp/pcapng.h"

using namespace sipxdp;
using namespace sipxdp::test;

namespace {

std::string with_events(const std::string& block) {
  return R"({"version": 1, "default_action": "drop", "events": )" + block + "}";
}

std::string frame_text(const std::vector<uint8_t>& f) {
  return std::string(f.begin(), f.end());
}

std::string sip(const std::string& first, const std::string& ua_line) {
  return first + "\r\nVia: SIP/2.0/UDP 198.18.7.7\r\nCall-ID: x\r\n" + ua_line + "Content-Length: 0\r\n\r\n";
}

}  // namespace

TEST_CASE("the events block: defaults, values, errors with their place") {
  auto p = parse_policy(R"({"version": 1, "default_action": "drop"})", "p.json");
  REQUIRE(p.ok());
  CHECK(p->events.drops);
  CHECK(p->events.rate == 10);
  CHECK(p->events.burst == 50);
  CHECK(p->events.snaplen == SIPXDP_EVENT_SNAP_DEFAULT);
  p = parse_policy(with_events(R"({"drops": false, "rate": 100, "burst": 7, "snaplen": 128})"), "p.json");
  REQUIRE(p.ok());
  CHECK_FALSE(p->events.drops);
  CHECK(p->events.rate == 100);
  CHECK(p->events.burst == 7);
  CHECK(p->events.snaplen == 128);
  CHECK(parse_err(with_events(R"({"rate": 0})")) ==
        "p.json:1:61: events.rate must be a whole number of events per second from 1 to 100000");
  CHECK(parse_err(with_events(R"({"snaplen": 4000})")) ==
        "p.json:1:64: events.snaplen must be a whole number of bytes from 64 to 1536");
  CHECK(parse_err(with_events(R"({"drop": true})")) ==
        "p.json:1:53: events: unknown field \"drop\" (drops, rate, burst, snaplen)");
  CHECK(parse_err(with_events(R"({"drops": "yes"})")) == "p.json:1:62: events.drops must be true or false");
  CHECK(parse_err(with_events("[]")) ==
        "p.json:1:52: \"events\" must be a JSON object like {\"drops\": true, \"rate\": 10}");
  // Every setting shows in dry runs.
  auto s = policy_settings(p.value());
  CHECK(s["events.drops"] == std::vector<std::string>{"off"});
  CHECK(s["events.rate"] == std::vector<std::string>{"100/s"});
}

TEST_CASE("decode_frame: IPv4 UDP SIP request with its User-Agent") {
  auto f = PacketBuilder()
               .ipv4("198.18.7.7", "198.18.0.1")
               .udp(5062, 5060)
               .payload(sip("REGISTER sip:198.18.0.1 SIP/2.0", "User-Agent:  friendly-scanner \r\n"))
               .build();
  FrameInfo i = decode_frame(frame_text(f));
  CHECK(i.family == 4);
  CHECK(i.src == "198.18.7.7");
  CHECK(i.dst == "198.18.0.1");
  CHECK(i.proto == 17);
  CHECK(i.sport == 5062);
  CHECK(i.dport == 5060);
  CHECK(i.sip_method == "REGISTER");
  CHECK(i.user_agent == "friendly-scanner");
  CHECK_FALSE(i.user_agent_cut);
}

TEST_CASE("decode_frame: IPv6 with extension headers and a VLAN, TCP, a response, case-insensitive header") {
  auto f = PacketBuilder()
               .vlan(7)
               .ipv6("2001:db8:77::7", "2001:db8::1")
               .ext(0)
               .ext(60)
               .tcp(40000, 5060, 0x18)
               .payload(sip("SIP/2.0 401 Unauthorized", "user-agent: sipcli/v1.8\r\n"))
               .build();
  FrameInfo i = decode_frame(frame_text(f));
  CHECK(i.family == 6);
  CHECK(i.src == "2001:db8:77::7");
  CHECK(i.proto == 6);
  CHECK(i.dport == 5060);
  CHECK(i.sip_method == "SIP/2.0 401");
  CHECK(i.user_agent == "sipcli/v1.8");
}

TEST_CASE("decode_frame: what is not SIP, cut frames, fragments, ICMP") {
  auto rtp = PacketBuilder().ipv4("198.18.7.7", "198.18.0.1").udp(20000, 20002).payload(172, 0x80).build();
  FrameInfo i = decode_frame(frame_text(rtp));
  CHECK(i.sip_method.empty());
  CHECK(i.dport == 20002);
  auto words = PacketBuilder().ipv4("198.18.7.7", "198.18.0.1").udp(1, 5060).payload("HELLO there SIP/2.0\r\n").build();
  CHECK(decode_frame(frame_text(words)).sip_method.empty());  // no URI: not a request line
  auto f = PacketBuilder()
               .ipv4("198.18.7.7", "198.18.0.1")
               .udp(5062, 5060)
               .payload(sip("OPTIONS sip:100@198.18.0.1 SIP/2.0", "User-Agent: VaxSIPUserAgent/3.1\r\n"))
               .build();
  std::string cut = frame_text(f);
  size_t ua = cut.find("VaxSIP");
  i = decode_frame(cut.substr(0, ua + 6));
  CHECK(i.sip_method == "OPTIONS");
  CHECK(i.user_agent == "VaxSIP");
  CHECK(i.user_agent_cut);
  for (size_t n = 0; n < cut.size(); ++n) decode_frame(cut.substr(0, n));  // never reads past the end
  CHECK(decode_frame(cut.substr(0, 20)).family == 0);
  auto later = PacketBuilder().ipv4("198.18.7.7", "198.18.0.1").fragment(1480, false).udp(1, 2).payload(100).build();
  i = decode_frame(frame_text(later));
  CHECK(i.fragment);
  CHECK(i.sport == -1);
  auto ping = PacketBuilder().ipv4("198.18.7.7", "198.18.0.1").icmp(8).build();
  i = decode_frame(frame_text(ping));
  CHECK(i.icmp_type == 8);
  CHECK(i.icmp_code == 0);
  CHECK(decode_frame(frame_text(PacketBuilder().ethertype(0x0806).payload(28).build())).family == 0);
}

TEST_CASE("filters: reason globs and source prefixes") {
  Event e;
  e.reason = "scanner:friendly-scanner";
  e.info.family = 4;
  e.info.src = "198.18.7.7";
  EventFilter f;
  CHECK(f.matches(e));
  f.reasons = {"scanner:*"};
  CHECK(f.matches(e));
  f.reasons = {"default"};
  CHECK_FALSE(f.matches(e));
  f.reasons = {"default", "scanner:friendly-*"};
  CHECK(f.matches(e));
  f.sources = {parse_cidr("198.18.7.0/24").value()};
  CHECK(f.matches(e));
  f.sources = {parse_cidr("198.18.8.0/24").value(), parse_cidr("2001:db8::/32").value()};
  CHECK_FALSE(f.matches(e));
}

TEST_CASE("pcapng: section, interface and packet blocks with the comment, lengths padded") {
  std::string path = "/tmp/sipxdp-unit-" + std::to_string(getpid()) + ".pcapng";
  {
    auto w = PcapngWriter::create(path, "sipxdp test");
    REQUIRE(w.ok());
    auto id = w->add_interface("eth1", "sipxdp drops on eth1", 256);
    REQUIRE(id.ok());
    CHECK(id.value() == 0);
    REQUIRE(w->write_packet(0, 1796094792000000001ull, std::string(61, 'x'), 400, "sipxdp: drop reason=default").ok());
  }
  std::ifstream in(path, std::ios::binary);
  std::string b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::remove(path.c_str());
  auto u32 = [&](size_t off) {
    uint32_t v;
    std::memcpy(&v, b.data() + off, 4);
    return v;
  };
  REQUIRE(b.size() % 4 == 0);
  CHECK(u32(0) == 0x0A0D0D0A);
  size_t shb = u32(4);
  CHECK(u32(8) == 0x1A2B3C4D);
  CHECK(u32(shb - 4) == shb);  // the trailing length repeats the leading one
  CHECK(u32(shb) == 1);        // interface description
  size_t idb = u32(shb + 4);
  size_t epb = shb + idb;
  CHECK(u32(epb) == 6);
  size_t epb_len = u32(epb + 4);
  CHECK(epb + epb_len == b.size());
  CHECK(u32(epb + 20) == 61);   // captured
  CHECK(u32(epb + 24) == 400);  // original
  uint64_t ts = (uint64_t(u32(epb + 12)) << 32) | u32(epb + 16);
  CHECK(ts == 1796094792000000001ull);
  CHECK(b.find("sipxdp: drop reason=default") != std::string::npos);
  CHECK(b.find("eth1") != std::string::npos);
}
