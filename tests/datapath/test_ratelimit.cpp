// SIP rate limits (XDP), auth-failure bans and learned trust (TC egress), through BPF_PROG_TEST_RUN.
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

// A policy with SIP on 5060 (UDP and TCP, inspected) and `sip` as its "sip" block's fields.
std::string policy(const std::string& sip) {
  return R"({"version": 1, "default_action": "drop", "sip": {)" + sip + R"(},
  "rules": [
    {"name": "sip-udp", "proto": "udp", "dport": 5060, "action": "allow", "inspect_sip": true},
    {"name": "sip-tcp", "proto": "tcp", "dport": 5060, "action": "allow", "inspect_sip": true},
    {"name": "rtp", "proto": "udp", "dport": "16384-32768", "action": "allow"}
  ]})";
}

std::string request(const std::string& method, const std::string& from = "198.18.7.7") {
  return method + " sip:1001@198.18.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP " + from +
         ":5070;branch=z9hG4bK-1\r\nFrom: <sip:1001@sipxdp.test>;tag=1\r\nTo: <sip:1001@sipxdp.test>\r\n"
         "Call-ID: 1@x\r\nCSeq: 1 " +
         method + "\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
}

std::string response(int code, const std::string& cseq_method, const std::string& extra = "") {
  return "SIP/2.0 " + std::to_string(code) +
         " Whatever\r\nVia: SIP/2.0/UDP 198.18.7.7:5070;branch=z9hG4bK-1\r\nFrom: <sip:1001@sipxdp.test>;tag=1\r\n"
         "To: <sip:1001@sipxdp.test>;tag=2\r\nCall-ID: 1@x\r\nCSeq: 2 " +
         cseq_method + "\r\n" + extra + "Content-Length: 0\r\n\r\n";
}

std::vector<uint8_t> in_udp(const std::string& payload, const char* src, uint16_t sport = 40000) {
  PacketBuilder b;
  if (std::string(src).find(':') != std::string::npos)
    b.ipv6(src, "2001:db8::1");
  else
    b.ipv4(src, kServer);
  return b.udp(sport, 5060).payload(payload).build();
}

std::vector<uint8_t> out_udp(const std::string& payload, const char* dst, uint16_t dport = 40000) {
  PacketBuilder b;
  if (std::string(dst).find(':') != std::string::npos)
    b.ipv6("2001:db8::1", dst);
  else
    b.ipv4(kServer, dst);
  return b.udp(5060, dport).payload(payload).build();
}

const Datapath::Ban* find_ban(const std::vector<Datapath::Ban>& bans, const std::string& prefix) {
  auto it = std::find_if(bans.begin(), bans.end(), [&](auto& b) { return b.prefix.str() == prefix; });
  return it == bans.end() ? nullptr : &*it;
}

// Sends `n` copies of a server response to `dst` through TC egress.
void respond(Harness& h, int n, const std::string& payload, const char* dst, uint16_t dport = 40000) {
  std::vector<uint8_t> out;
  for (int i = 0; i < n; ++i) REQUIRE(h.run_tc(out_udp(payload, dst, dport), out) == -1);  // TC_ACT_UNSPEC
}

}  // namespace

TEST_CASE("rate limit: `requests` pass, the next drops on the limit's counter and bans") {
  Harness h = Harness::make(policy(
      R"("rate_limits": [{"name": "reg", "methods": ["REGISTER"], "requests": 3, "per_seconds": 3600, "ban_seconds": 600}])"));
  const char* src = "198.18.40.1";
  for (int i = 0; i < 3; ++i) h.expect("within the limit", in_udp(request("REGISTER"), src), PASS, "sip-udp");
  auto over = in_udp(request("REGISTER"), src);
  int got = -1;
  h.expect_counters("over the limit", over, {"ratelimit:reg", "ratelimit-bans:reg"}, [&] { got = h.run(over); });
  CHECK(got == DROP);
  h.expect("banned now", in_udp(request("INVITE"), src), DROP, "banned");
  h.expect("banned: RTP too", PacketBuilder().ipv4(src, kServer).udp(4000, 20000).payload(100).build(), DROP, "banned");
  auto bans = h.dp.bans().value();
  auto* b = find_ban(bans, std::string(src) + "/32");
  REQUIRE(b);
  CHECK(b->kind == "ratelimit");
  CHECK(b->reason == "reg");
  CHECK(b->hits == 2);
  CHECK(b->seconds_left > 590);
  CHECK(b->since_unix > 0);
  // Another source has its own bucket.
  h.expect("another source", in_udp(request("REGISTER"), "198.18.40.2"), PASS, "sip-udp");
}

TEST_CASE("rate limit: only the listed methods count; responses never do; * is every method") {
  Harness h = Harness::make(policy(R"("rate_limits": [
      {"name": "reg", "methods": ["REGISTER"], "requests": 2, "per_seconds": 3600},
      {"name": "all", "methods": ["*"], "requests": 6, "per_seconds": 3600}])"));
  const char* src = "198.18.41.1";
  h.expect("INVITE 1", in_udp(request("INVITE"), src), PASS, "sip-udp");
  h.expect("REGISTER 1", in_udp(request("REGISTER"), src), PASS, "sip-udp");
  h.expect("REGISTER 2", in_udp(request("REGISTER"), src), PASS, "sip-udp");
  h.expect("REGISTER 3: over reg, no ban", in_udp(request("REGISTER"), src), DROP, "ratelimit:reg");
  h.expect("REGISTER 4: still over", in_udp(request("REGISTER"), src), DROP, "ratelimit:reg");
  for (int i = 0; i < 5; ++i)
    h.expect("responses are not requests", in_udp(response(200, "OPTIONS"), src), PASS, "sip-udp");
  h.expect("not SIP", in_udp(std::string(100, 'x'), src), PASS, "sip-udp");
  h.expect("an unknown method still counts for *", in_udp(request("FOO"), src), PASS, "sip-udp");
  // "all" has seen INVITE, 4 REGISTERs and FOO: 6.
  h.expect("OPTIONS: over all", in_udp(request("OPTIONS"), src), DROP, "ratelimit:all");
  CHECK(h.dp.bans().value().empty());
  // RTP (a rule without inspect_sip) is never counted.
  for (int i = 0; i < 3; ++i)
    h.expect("RTP", PacketBuilder().ipv4(src, kServer).udp(4000, 20000).payload(request("REGISTER")).build(), PASS,
             "rtp");
}

TEST_CASE("rate limit: TCP requests, IPv6 per /64 by default, sip.trusted exempt") {
  Harness h = Harness::make(policy(R"("trusted": ["198.18.0.0/24"], "rate_limits": [
      {"name": "reg", "methods": ["REGISTER"], "requests": 2, "per_seconds": 3600, "ban_seconds": 60}])"));
  const char* src = "198.18.42.1";
  auto tcp = [&](uint32_t seq) {
    return PacketBuilder().ipv4(src, kServer).tcp(40000, 5060, 0x18, seq).payload(request("REGISTER")).build();
  };
  h.expect("TCP 1", tcp(1), PASS, "sip-tcp");
  h.expect("TCP 2", tcp(500), PASS, "sip-tcp");
  auto over = tcp(1000);
  h.expect_counters("TCP 3", over, {"ratelimit:reg", "ratelimit-bans:reg"}, [&] { CHECK(h.run(over) == DROP); });
  // Two addresses of one /64 share a bucket; another /64 does not.
  h.expect("v6 a", in_udp(request("REGISTER"), "2001:db8:1:1::a"), PASS, "sip-udp");
  h.expect("v6 b, same /64", in_udp(request("REGISTER"), "2001:db8:1:1::b"), PASS, "sip-udp");
  h.expect("v6 other /64", in_udp(request("REGISTER"), "2001:db8:1:2::a"), PASS, "sip-udp");
  auto v6over = in_udp(request("REGISTER"), "2001:db8:1:1::c");
  h.expect_counters("v6 c, same /64: over", v6over, {"ratelimit:reg", "ratelimit-bans:reg"},
                    [&] { CHECK(h.run(v6over) == DROP); });
  auto bans = h.dp.bans().value();
  REQUIRE(find_ban(bans, "2001:db8:1:1::/64"));
  h.expect("the whole /64 is banned", in_udp(request("INVITE"), "2001:db8:1:1::99"), DROP, "banned");
  h.expect("not the next /64", in_udp(request("INVITE"), "2001:db8:1:2::99"), PASS, "sip-udp");
  // ban del of one address lifts the /64 ban that holds it.
  CHECK(h.dp.ban_del(parse_cidr("2001:db8:1:1::99").value()).value() == 1);
  h.expect("lifted", in_udp(request("INVITE"), "2001:db8:1:1::99"), PASS, "sip-udp");
  for (int i = 0; i < 5; ++i)
    h.expect("sip.trusted is never limited", in_udp(request("REGISTER"), "198.18.0.9"), PASS, "sip-udp");

  // ipv6_prefix keys bans and buckets: apply refuses to change it.
  {
    std::string text = policy(R"("ipv6_prefix": 128)");
    auto p = parse_policy(text, "p.json");
    REQUIRE(p.ok());
    auto r = h.dp.apply(p.value(), text, "p.json");
    REQUIRE(!r.ok());
    CHECK(r.error().what.find("sip.ipv6_prefix 128 differs from the live policy's (64)") == 0);
  }
  // ipv6_prefix 128 (at attach): each address its own source.
  h = Harness::make(policy(R"("ipv6_prefix": 128, "rate_limits": [
      {"name": "reg", "methods": ["REGISTER"], "requests": 2, "per_seconds": 3600}])"));
  h.expect("v6 /128 d", in_udp(request("REGISTER"), "2001:db8:5::d"), PASS, "sip-udp");
  h.expect("v6 /128 e", in_udp(request("REGISTER"), "2001:db8:5::e"), PASS, "sip-udp");
  h.expect("v6 /128 e", in_udp(request("REGISTER"), "2001:db8:5::e"), PASS, "sip-udp");
  h.expect("v6 /128 e over", in_udp(request("REGISTER"), "2001:db8:5::e"), DROP, "ratelimit:reg");
}

TEST_CASE("rate limit: the bucket refills with time") {
  // 2 requests a second: 500 ms a request.
  Harness h = Harness::make(
      policy(R"("rate_limits": [{"name": "r", "methods": ["OPTIONS"], "requests": 2, "per_seconds": 1}])"));
  const char* src = "198.18.43.1";
  h.expect("1", in_udp(request("OPTIONS"), src), PASS, "sip-udp");
  h.expect("2", in_udp(request("OPTIONS"), src), PASS, "sip-udp");
  h.expect("3 over", in_udp(request("OPTIONS"), src), DROP, "ratelimit:r");
  std::this_thread::sleep_for(std::chrono::milliseconds(620));
  h.expect("refilled one", in_udp(request("OPTIONS"), src), PASS, "sip-udp");
  h.expect("and only one", in_udp(request("OPTIONS"), src), DROP, "ratelimit:r");
}

TEST_CASE("auth failures: 401/403/407 sent to an address ban it at `max`, escalating") {
  Harness h = Harness::make(
      policy(R"("auth_failures": {"max": 3, "window_seconds": 60, "ban_seconds": 100, "max_ban_seconds": 250})"));
  const char* guesser = "198.18.44.1";
  // Failures go on while the first ones are answered: none counts, none escalates.
  {
    const char* burst = "198.18.44.9";
    respond(h, 20, response(401, "REGISTER"), burst);
    auto bans = h.dp.bans().value();
    auto* b = find_ban(bans, std::string(burst) + "/32");
    REQUIRE(b);
    CHECK(b->seconds_left <= 100);
    CHECK(h.snapshot()["auth-bans"].packets == 1);
    REQUIRE(h.dp.ban_del_all().value() == 1);
  }
  respond(h, 1, response(401, "REGISTER"), guesser);
  respond(h, 1, response(407, "INVITE"), guesser);
  CHECK(h.dp.bans().value().empty());
  auto before = h.snapshot();
  respond(h, 1, response(403, "REGISTER"), guesser);
  auto after = h.snapshot();
  CHECK(after["auth-failures"].packets - before["auth-failures"].packets == 1);
  CHECK(after["auth-bans"].packets - before["auth-bans"].packets == 1);
  auto bans = h.dp.bans().value();
  auto* b = find_ban(bans, std::string(guesser) + "/32");
  REQUIRE(b);
  CHECK(b->kind == "auth");
  CHECK(b->reason == "auth-failures");
  CHECK(b->seconds_left > 95);
  CHECK(b->seconds_left <= 100);
  h.expect("banned", in_udp(request("REGISTER"), guesser), DROP, "banned");
  // Other codes are not failures.
  respond(h, 5, response(404, "REGISTER"), "198.18.44.2");
  respond(h, 5, response(486, "INVITE"), "198.18.44.2");
  CHECK(h.snapshot()["auth-failures"].packets == after["auth-failures"].packets);

  // A repeat offender: the second ban doubles, the third is capped.
  REQUIRE(h.dp.ban_del_all("auth").value() == 1);
  respond(h, 3, response(401, "REGISTER"), guesser);
  bans = h.dp.bans().value();
  b = find_ban(bans, std::string(guesser) + "/32");
  REQUIRE(b);
  CHECK(b->seconds_left > 195);
  CHECK(b->seconds_left <= 200);
  REQUIRE(h.dp.ban_del(parse_cidr(guesser).value()).value() == 1);
  respond(h, 3, response(401, "REGISTER"), guesser);
  bans = h.dp.bans().value();
  b = find_ban(bans, std::string(guesser) + "/32");
  REQUIRE(b);
  CHECK(b->seconds_left > 245);
  CHECK(b->seconds_left <= 250);

  // IPv6 per /64, and sip.trusted never banned.
  respond(h, 2, response(401, "REGISTER"), "2001:db8:9:9::1");
  respond(h, 1, response(401, "REGISTER"), "2001:db8:9:9::2");
  CHECK(find_ban(h.dp.bans().value(), "2001:db8:9:9::/64"));
}

TEST_CASE("auth failures: a 2xx to a REGISTER forgives its challenge; a 200 to OPTIONS does not") {
  Harness h = Harness::make(policy(R"("trusted": ["198.18.0.0/24"], "learned_trust": {"enabled": false},
      "auth_failures": {"max": 3, "window_seconds": 60, "ban_seconds": 100})"));
  const char* phone = "198.18.45.1";
  // A phone's registrations: a challenge, then a 2xx, again and again.
  for (int i = 0; i < 10; ++i) {
    respond(h, 1, response(401, "REGISTER"), phone);
    respond(h, 1, response(200, "REGISTER", "Contact: <sip:1001@198.18.45.1:40000>;expires=60\r\n"), phone);
  }
  CHECK(h.dp.bans().value().empty());
  // A neighbour guessing behind the phone's address: the phone's successes
  // forgive only their own challenges, not the guesses.
  respond(h, 1, response(401, "REGISTER"), phone, 40001);
  respond(h, 1, response(401, "REGISTER"), phone);
  respond(h, 1, response(200, "REGISTER", "Contact: <sip:1001@198.18.45.1:40000>;expires=60\r\n"), phone);
  respond(h, 1, response(401, "REGISTER"), phone, 40001);
  CHECK(h.dp.bans().value().empty());
  respond(h, 1, response(401, "REGISTER"), phone, 40001);
  CHECK(find_ban(h.dp.bans().value(), std::string(phone) + "/32"));
  CHECK(h.dp.learned_trust().value().empty());  // learned trust off
  const char* scanner = "198.18.45.2";
  respond(h, 2, response(401, "REGISTER"), scanner);
  respond(h, 1, response(200, "OPTIONS"), scanner);
  respond(h, 1, response(200, "INVITE"), scanner);
  respond(h, 1, response(401, "REGISTER"), scanner);
  CHECK(find_ban(h.dp.bans().value(), std::string(scanner) + "/32"));
  respond(h, 5, response(401, "REGISTER"), "198.18.0.50");
  CHECK(!find_ban(h.dp.bans().value(), "198.18.0.50/32"));
}

TEST_CASE("learned trust: a 2xx to REGISTER trusts the phone's flow past bans of its address and rate limits") {
  Harness h = Harness::make(policy(R"("learned_trust": {"max_seconds": 600},
      "auth_failures": {"max": 3, "window_seconds": 60, "ban_seconds": 100},
      "rate_limits": [{"name": "reg", "methods": ["REGISTER"], "requests": 2, "per_seconds": 3600, "ban_seconds": 300}])"));
  const char* nat = "198.18.46.1";
  auto before = h.snapshot();
  respond(h, 1,
          response(200, "REGISTER",
                   "Contact: <sip:1001@198.18.46.1:5070>;expires=120, <sip:1001@198.18.46.1:5071>;expires=3000\r\n"),
          nat, 5070);
  CHECK(h.snapshot()["trust-learned"].packets - before["trust-learned"].packets == 1);
  auto t = h.dp.learned_trust().value();  // a copy: the Result is a temporary
  REQUIRE(t.size() == 1);
  CHECK(t[0].addr.str() == "198.18.46.1/32");
  CHECK(t[0].port == 5070);
  CHECK(t[0].proto == "udp");
  CHECK(t[0].seconds_left > 115);
  CHECK(t[0].seconds_left <= 120);
  // The phone is not rate-limited.
  for (int i = 0; i < 4; ++i) h.expect("phone REGISTER", in_udp(request("REGISTER"), nat, 5070), PASS, "sip-udp");
  // A neighbour behind the same address floods and is banned ...
  h.expect("neighbour 1", in_udp(request("REGISTER"), nat, 40000), PASS, "sip-udp");
  h.expect("neighbour 2", in_udp(request("REGISTER"), nat, 40000), PASS, "sip-udp");
  auto over = in_udp(request("REGISTER"), nat, 40000);
  h.expect_counters("neighbour over", over, {"ratelimit:reg", "ratelimit-bans:reg"},
                    [&] { CHECK(h.run(over) == DROP); });
  h.expect("neighbour banned", in_udp(request("INVITE"), nat, 40000), DROP, "banned");
  // ... while the phone's flow goes on, counted on `trusted` and by its rule.
  auto phone_pkt = in_udp(request("INVITE"), nat, 5070);
  h.expect_counters("phone past the ban", phone_pkt, {"trusted", "sip-udp"}, [&] { CHECK(h.run(phone_pkt) == PASS); });
  CHECK(h.dp.learned_trust().value()[0].hits == 1);
  // Its other ports (RTP from another port) are the banned address's.
  h.expect("another port of the address", PacketBuilder().ipv4(nat, kServer).udp(4000, 20000).payload(100).build(),
           DROP, "banned");
  // A manual ban outranks learned trust.
  REQUIRE(h.dp.ban_add(parse_cidr(nat).value(), 0).ok());
  h.expect("manual ban", phone_pkt, DROP, "banned");
  REQUIRE(h.dp.ban_del_all("manual").value() == 1);
  h.expect_counters("phone again", phone_pkt, {"trusted", "sip-udp"}, [&] { CHECK(h.run(phone_pkt) == PASS); });

  // The phone's flow guessing: its failures count on its trust, which ends at max (3).
  respond(h, 2, response(401, "REGISTER"), nat, 5070);
  h.expect_counters("still trusted", phone_pkt, {"trusted", "sip-udp"}, [&] { CHECK(h.run(phone_pkt) == PASS); });
  respond(h, 1, response(401, "REGISTER"), nat, 5070);
  h.expect("trust ended by failures", phone_pkt, DROP, "banned");
  respond(h, 1, response(200, "REGISTER", "Contact: <sip:1001@198.18.46.1:5070>;expires=120\r\n"), nat, 5070);
  h.expect_counters("registered again", phone_pkt, {"trusted", "sip-udp"}, [&] { CHECK(h.run(phone_pkt) == PASS); });

  // The Expires header when the Contact has no expires; capped by max_seconds; 0 removes.
  respond(h, 1, response(200, "REGISTER", "Expires: 7200\r\nContact: <sip:1001@198.18.46.2:5070>\r\n"), "198.18.46.2",
          5070);
  respond(h, 1, response(200, "REGISTER", "m: <sip:1001@198.18.46.3:5070;expires=9999>;Expires=30\r\n"), "198.18.46.3",
          5070);
  respond(h, 1, response(200, "REGISTER"), "198.18.46.4", 5070);
  // Several bindings listed: the least expires (on any Contact line), never a URI parameter.
  respond(
      h, 1,
      response(200, "REGISTER",
               "Contact: <sip:1001@198.18.46.5:5070;expires=5>;expires=300, <sip:1001@198.18.9.9:5070>;expires=90\r\n"
               "Contact: <sip:1001@198.18.9.8:5070>;expires=200\r\n"),
      "198.18.46.5", 5070);
  std::map<std::string, int64_t> left;
  auto learned = h.dp.learned_trust().value();
  for (auto& x : learned) left[x.addr.str()] = x.seconds_left;
  CHECK(left["198.18.46.2/32"] == 600);
  CHECK(left["198.18.46.3/32"] == 30);
  CHECK(left["198.18.46.4/32"] == 600);  // no expiry given: 3600, capped
  CHECK(left["198.18.46.5/32"] == 90);
  respond(h, 1, response(200, "REGISTER", "Contact: <sip:1001@198.18.46.1:5070>;expires=0\r\n"), nat, 5070);
  left.clear();
  learned = h.dp.learned_trust().value();
  for (auto& x : learned) left[x.addr.str()] = x.seconds_left;
  CHECK(!left.count("198.18.46.1/32"));
  h.expect("unregistered: banned like its neighbour", phone_pkt, DROP, "banned");
  // Not a REGISTER's 2xx: no trust.
  respond(h, 1, response(200, "INVITE", "Contact: <sip:1001@198.18.46.9:5070>;expires=60\r\n"), "198.18.46.9", 5070);
  respond(h, 1, response(200, "REGISTERX", "Contact: <sip:1001@198.18.46.9:5070>;expires=60\r\n"), "198.18.46.9", 5070);
  learned = h.dp.learned_trust().value();
  for (auto& x : learned) CHECK(x.addr.str() != "198.18.46.9/32");
}

TEST_CASE("learned trust off: the phone's flow is banned with its address") {
  Harness h = Harness::make(policy(R"("learned_trust": {"enabled": false},
      "rate_limits": [{"name": "reg", "methods": ["REGISTER"], "requests": 1, "per_seconds": 3600, "ban_seconds": 300}])"));
  const char* nat = "198.18.47.1";
  respond(h, 1, response(200, "REGISTER", "Contact: <sip:1001@198.18.47.1:5070>;expires=120\r\n"), nat, 5070);
  CHECK(h.dp.learned_trust().value().empty());
  h.expect("neighbour 1", in_udp(request("REGISTER"), nat, 40000), PASS, "sip-udp");
  auto over = in_udp(request("REGISTER"), nat, 40000);
  h.expect_counters("neighbour over", over, {"ratelimit:reg", "ratelimit-bans:reg"},
                    [&] { CHECK(h.run(over) == DROP); });
  h.expect("phone banned too", in_udp(request("REGISTER"), nat, 5070), DROP, "banned");
}

// Random requests from a few sources against a model of the limits (no
// refill: per_seconds 3600), checked packet by packet.
TEST_CASE("rate limits: random differential against a model") {
  std::mt19937 rng(14);
  const std::vector<std::string> methods = {"INVITE", "REGISTER", "OPTIONS", "SUBSCRIBE", "MESSAGE", "FOO"};
  for (int round = 0; round < 6; ++round) {
    struct Limit {
      std::string name;
      std::set<std::string> methods;
      int requests;
      bool ban;
    };
    std::vector<Limit> limits;
    std::string spec;
    int n = 1 + int(rng() % 4);
    for (int i = 0; i < n; ++i) {
      Limit l{"l" + std::to_string(i), {}, 1 + int(rng() % 6), rng() % 2 == 0};
      std::string ms;
      if (rng() % 5 == 0) {
        l.methods = {methods.begin(), methods.end()};
        ms = "\"*\"";
      } else {
        for (auto& m : methods)
          if (m != "FOO" && rng() % 3 == 0) {
            l.methods.insert(m);
            ms += (ms.empty() ? "\"" : ", \"") + m + "\"";
          }
        if (ms.empty()) l.methods.insert("INVITE"), ms = "\"INVITE\"";
      }
      spec += (spec.empty() ? "" : ", ") + std::string("{\"name\": \"") + l.name + "\", \"methods\": [" + ms +
              "], \"requests\": " + std::to_string(l.requests) + ", \"per_seconds\": 3600" +
              (l.ban ? ", \"ban_seconds\": 600" : "") + "}";
      limits.push_back(l);
    }
    Harness h = Harness::make(policy("\"rate_limits\": [" + spec + "]"));
    std::map<std::pair<int, int>, int> used;  // (source, limit) -> requests counted
    std::set<int> banned;
    for (int k = 0; k < 300; ++k) {
      int s = int(rng() % 4);
      std::string src = "198.18." + std::to_string(60 + round) + "." + std::to_string(1 + s);
      std::string m = methods[rng() % methods.size()];
      bool response = rng() % 8 == 0;
      auto frame = in_udp(response ? ::response(200, m) : request(m), src.c_str());
      std::vector<std::string> want;
      int verdict = PASS;
      if (banned.count(s)) {
        want = {"banned"};
        verdict = DROP;
      } else if (response) {
        want = {"sip-udp"};
      } else {
        int over = -1;
        for (int i = 0; i < n; ++i) {
          if (!limits[i].methods.count(m)) continue;
          if (++used[{s, i}] > limits[i].requests && over < 0) over = i;
        }
        if (over < 0) {
          want = {"sip-udp"};
        } else {
          verdict = DROP;
          want = {"ratelimit:" + limits[over].name};
          if (limits[over].ban) {
            want.push_back("ratelimit-bans:" + limits[over].name);
            banned.insert(s);
          }
        }
      }
      std::string desc = "round " + std::to_string(round) + " packet " + std::to_string(k) + " " + src + " " +
                         (response ? "response to " : "") + m;
      h.expect_counters(desc.c_str(), frame, want, [&] { CHECK_MESSAGE(h.run(frame) == verdict, desc); });
    }
  }
}

TEST_CASE("rate limit: requests as servers read them (keep-alives before, any case, pipelined over TCP)") {
  Harness h = Harness::make(
      policy(R"("rate_limits": [{"name": "reg", "methods": ["REGISTER"], "requests": 3, "per_seconds": 3600}])"));
  const char* src = "198.18.48.1";
  h.expect("CRLF keep-alive first", in_udp("\r\n\r\n" + request("REGISTER"), src), PASS, "sip-udp");
  h.expect("lower case", in_udp(request("register"), src), PASS, "sip-udp");
  h.expect("mixed case, a space first", in_udp(" " + request("Register"), src), PASS, "sip-udp");
  h.expect("the fourth", in_udp(request("REGISTER"), src), DROP, "ratelimit:reg");
  h.expect("a bare keep-alive is no request", in_udp("\r\n\r\n", src), PASS, "sip-udp");

  // TCP: every request line of a segment counts; over the limit the segment drops whole.
  const char* tsrc = "198.18.48.2";
  auto seg = [&](const std::string& payload, uint32_t seq) {
    return PacketBuilder().ipv4(tsrc, kServer).tcp(40000, 5060, 0x18, seq).payload(payload).build();
  };
  h.expect("two pipelined", seg(request("REGISTER") + request("REGISTER"), 1), PASS, "sip-tcp");
  h.expect("two more: over", seg(request("REGISTER") + request("REGISTER"), 2000), DROP, "ratelimit:reg");
  h.expect("one fits", seg(request("REGISTER"), 4000), PASS, "sip-tcp");
  h.expect("none left", seg(request("REGISTER"), 6000), DROP, "ratelimit:reg");
  h.expect("other methods pipelined", seg(request("INVITE") + request("OPTIONS"), 8000), PASS, "sip-tcp");

  // A request split across segments: counted by its head when the method
  // and its space are in the first segment, and by the end of its request
  // line (" SIP/2.0") when that is in the second. Split inside the URI, it
  // counts twice (never less than once).
  const char* ssrc = "198.18.48.3";
  std::string r = request("REGISTER");
  auto sseg = [&](const std::string& payload, uint32_t seq) {
    return PacketBuilder().ipv4(ssrc, kServer).tcp(40000, 5060, 0x18, seq).payload(payload).build();
  };
  h.expect("REG (not yet a method)", sseg(r.substr(0, 3), 1), PASS, "sip-tcp");
  h.expect("ISTER ... SIP/2.0: 1", sseg(r.substr(3), 4), PASS, "sip-tcp");
  h.expect("REGISTER sip:1001@19: 2", sseg(r.substr(0, 20), 1000), PASS, "sip-tcp");
  h.expect("8.18.0.1 SIP/2.0: 3", sseg(r.substr(20), 1020), PASS, "sip-tcp");
  h.expect("REGIS", sseg(r.substr(0, 5), 3000), PASS, "sip-tcp");
  h.expect("TER ... SIP/2.0: 4, over", sseg(r.substr(5), 3005), DROP, "ratelimit:reg");
  h.expect("between CR and LF: the head counts", sseg(r.substr(0, r.find('\n')), 5000), DROP, "ratelimit:reg");
}

TEST_CASE("bans: a shorter ban never replaces a longer one; ban del takes IPv4-mapped addresses") {
  Harness h = Harness::make(policy(R"("auth_failures": {"max": 2, "window_seconds": 60, "ban_seconds": 60},
      "rate_limits": [{"name": "reg", "methods": ["REGISTER"], "requests": 1, "per_seconds": 3600, "ban_seconds": 86400}])"));
  const char* src = "198.18.49.1";
  h.expect("first", in_udp(request("REGISTER"), src), PASS, "sip-udp");
  auto over = in_udp(request("REGISTER"), src);
  h.expect_counters("over: banned a day", over, {"ratelimit:reg", "ratelimit-bans:reg"}, [&] { h.run(over); });
  respond(h, 4, response(401, "REGISTER"), src);  // replies to what passed before
  auto bans = h.dp.bans().value();
  auto* b = find_ban(bans, std::string(src) + "/32");
  REQUIRE(b);
  CHECK(b->kind == "ratelimit");
  CHECK(b->seconds_left > 86000);
  CHECK(h.snapshot()["auth-bans"].packets == 0);
}
