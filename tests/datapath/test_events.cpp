// Drop events through BPF_PROG_TEST_RUN: what an event carries, the per-reason
// token bucket (exact counts), events off, snaplen, and the readers' ring
// buffers (slots, their limit, a dead reader's slot taken over).
#include <bpf/libbpf.h>
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "harness.h"
#include "packet.h"

using namespace sipxdp;
using namespace sipxdp::test;

namespace {

std::string policy(const std::string& events) {
  return R"({"version": 1, "default_action": "drop", )" + events + R"(
  "sip": {"scanner_patterns": ["friendly-scanner"], "ban_seconds": 0},
  "rules": [
    {"name": "sip", "proto": "udp", "dport": 5060, "action": "allow", "inspect_sip": true},
    {"name": "no-telnet", "proto": "tcp", "dport": 23, "action": "drop"}
  ]})";
}

std::string options(const std::string& ua) {
  return "OPTIONS sip:100@198.18.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 198.18.7.7:5062;branch=z9hG4bK-1\r\n"
         "From: <sip:s@198.18.7.7>;tag=1\r\nTo: <sip:100@198.18.0.1>\r\nCall-ID: ev-1\r\nCSeq: 1 OPTIONS\r\n"
         "User-Agent: " +
         ua + "\r\nContent-Length: 0\r\n\r\n";
}

std::vector<uint8_t> scanner(const char* src = kClient) {
  return PacketBuilder().ipv4(src, kServer).udp(5062, 5060).payload(options("friendly-scanner")).build();
}

std::vector<uint8_t> closed_port(uint16_t port = 9999) {
  return PacketBuilder().ipv4(kClient, kServer).udp(40000, port).payload(300).build();
}

// The recent events made since `from` (a count of events seen before).
std::vector<RawEvent> recent(Harness& h) {
  auto r = h.dp.recent_events();
  REQUIRE(r.ok());
  return r.value();
}

}  // namespace

TEST_CASE("a drop makes an event with its reason, addresses, SIP method and User-Agent") {
  Harness h = Harness::make(policy(""));
  auto before = recent(h).size();
  auto frame = scanner();
  h.expect("scanner", frame, DROP, "scanner:friendly-scanner");
  auto evs = recent(h);
  REQUIRE(evs.size() == before + 1);
  const RawEvent& raw = evs.back();
  CHECK(raw.h.slot == h.slot["scanner:friendly-scanner"]);
  CHECK(raw.h.ifindex == g_test_ifindex);
  CHECK(raw.h.pkt_len == frame.size());
  CHECK(raw.h.cap_len == frame.size());  // shorter than the default snaplen
  CHECK(raw.data == std::string(frame.begin(), frame.end()));
  auto m = h.dp.manifest();
  REQUIRE(m.ok());
  Event e = make_event(raw, SlotNames(m.value()), "sxdtest0", "", monotonic_to_unix_ns());
  CHECK(e.reason == "scanner:friendly-scanner");
  CHECK(e.info.family == 4);
  CHECK(e.info.src == kClient);
  CHECK(e.info.dst == kServer);
  CHECK(e.info.proto == 17);
  CHECK(e.info.sport == 5062);
  CHECK(e.info.dport == 5060);
  CHECK(e.info.sip_method == "OPTIONS");
  CHECK(e.info.user_agent == "friendly-scanner");
  CHECK(event_line(e).find("reason=scanner:friendly-scanner sip=OPTIONS ua=\"friendly-scanner\"") != std::string::npos);

  // Other reasons: a rule's drop, the default, a built-in.
  h.expect("rule drop", PacketBuilder().ipv4(kClient, kServer).tcp(40000, 23).build(), DROP, "no-telnet");
  h.expect("default", closed_port(), DROP, "default");
  h.expect("martian", PacketBuilder().ipv4("127.0.0.1", kServer).udp(1, 5060).build(), DROP, "martian");
  evs = recent(h);
  REQUIRE(evs.size() == before + 4);
  CHECK(evs[evs.size() - 3].h.slot == h.slot["no-telnet"]);
  CHECK(evs[evs.size() - 2].h.slot == h.slot["default"]);
  CHECK(evs[evs.size() - 1].h.slot == h.slot["martian"]);
}

TEST_CASE("what passes makes no event") {
  Harness h = Harness::make(policy(""));
  auto before = recent(h).size();
  h.expect("clean SIP", PacketBuilder().ipv4(kClient, kServer).udp(5062, 5060).payload(options("Linphone")).build(),
           PASS, "sip");
  h.expect("ARP", PacketBuilder().ethertype(0x0806).payload(28).build(), PASS, "non-ip");
  CHECK(recent(h).size() == before);
}

TEST_CASE("the token bucket: burst events per reason, then suppressed, counted exactly") {
  Harness h = Harness::make(policy(R"("events": {"rate": 1, "burst": 3},)"));
  auto c0 = h.dp.event_count(h.slot["default"]);
  REQUIRE(c0.ok());
  for (int i = 0; i < 10; ++i) h.run(closed_port());
  auto c = h.dp.event_count(h.slot["default"]);
  REQUIRE(c.ok());
  // One a second: ten drops within a few microseconds earn no new credit.
  CHECK(c->emitted - c0->emitted == 3);
  CHECK(c->suppressed - c0->suppressed == 7);
  // Another reason has its own bucket.
  for (int i = 0; i < 2; ++i) h.run(PacketBuilder().ipv4(kClient, kServer).tcp(40000, 23).build());
  auto t = h.dp.event_count(h.slot["no-telnet"]);
  REQUIRE(t.ok());
  CHECK(t->emitted == 2);
  CHECK(t->suppressed == 0);
}

TEST_CASE("events off: no event, nothing counted as suppressed; apply turns them on") {
  Harness h = Harness::make(policy(R"("events": {"drops": false},)"));
  auto before = recent(h).size();
  for (int i = 0; i < 5; ++i) h.run(closed_port());
  CHECK(recent(h).size() == before);
  auto c = h.dp.event_count(h.slot["default"]);
  REQUIRE(c.ok());
  CHECK(c->emitted == 0);
  CHECK(c->suppressed == 0);
  h.apply(policy(R"("events": {"drops": true},)"));
  h.run(closed_port());
  CHECK(recent(h).size() == before + 1);
}

TEST_CASE("snaplen: an event carries at most snaplen bytes, and the packet's whole length") {
  Harness h = Harness::make(policy(R"("events": {"snaplen": 64},)"));
  auto frame = closed_port(9998);
  REQUIRE(frame.size() > 64);
  h.run(frame);
  auto evs = recent(h);
  REQUIRE(!evs.empty());
  CHECK(evs.back().h.cap_len == 64);
  CHECK(evs.back().h.pkt_len == frame.size());
  CHECK(evs.back().data == std::string(frame.begin(), frame.begin() + 64));
}

TEST_CASE("readers: each gets every event; four at most; a dead reader's slot is taken over") {
  Harness h = Harness::make(policy(""));
  std::vector<EventSubscription> subs;
  for (int i = 0; i < SIPXDP_EVENT_READERS; ++i) {
    auto s = h.dp.subscribe_events();
    REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.error().message()));
    subs.push_back(std::move(s.value()));
  }
  auto fifth = h.dp.subscribe_events();
  REQUIRE_FALSE(fifth.ok());
  CHECK(fifth.error().message().find("readers already follow these events") != std::string::npos);

  h.run(scanner());
  h.run(closed_port());
  for (auto& s : subs) {
    std::vector<uint32_t> slots;
    auto cb = +[](void* ctx, void* data, size_t) {
      static_cast<std::vector<uint32_t>*>(ctx)->push_back(static_cast<sipxdp_event_hdr*>(data)->slot);
      return 0;
    };
    ring_buffer* rb = ring_buffer__new(s.ring_fd(), cb, &slots, nullptr);
    REQUIRE(rb);
    ring_buffer__consume(rb);
    ring_buffer__free(rb);
    CHECK(slots == std::vector<uint32_t>{h.slot["scanner:friendly-scanner"], h.slot["default"]});
  }
  // Giving one back frees its slot.
  subs.pop_back();
  auto again = h.dp.subscribe_events();
  REQUIRE(again.ok());
  subs.push_back(std::move(again.value()));
  subs.clear();

  // A reader that dies without giving its slot back: the next reader takes it.
  pid_t child = fork();
  if (child == 0) {
    auto s = h.dp.subscribe_events();
    _exit(s.ok() ? 0 : 1);  // _exit: no destructor gives the slot back
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  for (int i = 0; i < SIPXDP_EVENT_READERS; ++i) {
    auto s = h.dp.subscribe_events();
    REQUIRE_MESSAGE(s.ok(), "slot " << i << ": " << (s.ok() ? "" : s.error().message()));
    subs.push_back(std::move(s.value()));
  }
}
