#include <doctest/doctest.h>

#include "policies.h"

#include <algorithm>
#include <cstring>
#include <random>
#include <set>

#include "compiled.h"
#include "sipxdp/compiler.h"

using namespace sipxdp;
using namespace sipxdp::test;

namespace {

std::string with_sip(const std::string& sip) {
  return "{\"version\": 1, \"default_action\": \"drop\",\n \"sip\": " + sip +
         ",\n \"rules\": [{\"name\": \"s\", \"proto\": \"udp\", \"dport\": 5060, \"action\": \"allow\", "
         "\"inspect_sip\": true}]}";
}

}  // namespace

TEST_CASE("sip block: defaults and fields") {
  auto p = parse_policy(R"({"version":1,"default_action":"drop","rules":[
    {"name":"s","proto":["udp","tcp"],"dport":5060,"action":"allow","inspect_sip":true}]})",
                        "p.json");
  REQUIRE(p.ok());
  CHECK(p->sip.patterns == SipConfig::default_patterns());
  CHECK(p->sip.patterns.size() == 8);
  CHECK(p->sip.ban_seconds == 600);
  CHECK(!p->sip.ignore_case);
  CHECK(p->sip.match == SipMatch::payload);
  CHECK(p->rules[0].inspect_sip);
  CHECK(p->rules[0].match_text() == "udp,tcp dport 5060 inspect-sip");

  auto q = parse_policy(with_sip(R"({"scanner_patterns": ["abc", "zz"], "ignore_case": true, "ban_seconds": 0,
    "trusted": ["198.18.0.0/24", "2001:db8::/32"], "match": "headers"})"),
                        "p.json");
  REQUIRE(q.ok());
  CHECK(q->sip.patterns == std::vector<std::string>{"abc", "zz"});
  CHECK(q->sip.ignore_case);
  CHECK(q->sip.ban_seconds == 0);
  CHECK(q->sip.trusted.size() == 2);
  CHECK(q->sip.match == SipMatch::headers);
}

TEST_CASE("sip block errors name the place") {
  CHECK(parse_err(with_sip(R"({"scanner_patterns": ["x"]})")) ==
        "p.json:2:31: sip.scanner_patterns: \"x\" is 1 bytes; patterns are 2-64 bytes");
  CHECK(parse_err(with_sip(R"({"scanner_patterns": ["ab", "ab"]})")) ==
        "p.json:2:37: sip.scanner_patterns: \"ab\" is listed twice");
  CHECK(parse_err(with_sip(R"({"scanner_patterns": ["ab", "AB"], "ignore_case": true})")) ==
        "p.json:2:37: sip.scanner_patterns: \"AB\" repeats another pattern when case is ignored");
  CHECK(parse_err(with_sip(R"({"scanner_patterns": "ab"})")) ==
        "p.json:2:30: sip.scanner_patterns must be a list of strings");
  CHECK(parse_err(with_sip(R"({"ban_seconds": -1})")) ==
        "p.json:2:25: sip.ban_seconds must be a whole number of seconds from 0 to 31536000");
  CHECK(parse_err(with_sip(R"({"match": "body"})")) ==
        "p.json:2:19: sip.match must be \"payload\" or \"headers\", not \"body\"");
  CHECK(parse_err(with_sip(R"({"trusted": ["198.18.0.1/24"]})")) ==
        "p.json:2:22: \"198.18.0.1/24\" has host bits set (did you mean 198.18.0.0/24?)");
  CHECK(parse_err(with_sip(R"({"ignore_case": 1})")) == "p.json:2:25: sip.ignore_case must be true or false");
  CHECK(parse_err(with_sip(R"({"patterns": []})")) == "p.json:2:10: sip: unknown field \"patterns\"");
  std::string many = "[";
  for (int i = 0; i < 65; ++i) many += std::string(i ? "," : "") + "\"p" + std::to_string(i) + "\"";
  CHECK(parse_err(with_sip("{\"scanner_patterns\": " + many + "]}")) ==
        "p.json:2:30: sip.scanner_patterns: 65 patterns, at most 64");
  CHECK(parse_err(R"({"version":1,"default_action":"drop","rules":[
    {"name":"p","proto":"icmp","action":"allow","inspect_sip":true}]})") ==
        "p.json:2:63: rule \"p\": \"inspect_sip\" needs \"proto\" udp or tcp (or a list of them)");
}

TEST_CASE("compiled scan equals a naive search, earliest-listed pattern first") {
  std::mt19937 rng(11);
  const std::string alphabet = "sipcliSIPVaxabcdefgh-: \r\n0123";
  for (int round = 0; round < 400; ++round) {
    Policy p;
    p.sip.ignore_case = round % 3 == 0;
    size_t n = 1 + rng() % 64;
    std::set<std::string> seen;
    while (p.sip.patterns.size() < n) {
      std::string pat;
      size_t len = 2 + rng() % (round % 2 ? 8 : 63);
      for (size_t i = 0; i < len; ++i) pat += alphabet[rng() % alphabet.size()];
      std::string key = pat;
      if (p.sip.ignore_case) std::transform(key.begin(), key.end(), key.begin(), ::tolower);
      if (seen.insert(key).second) p.sip.patterns.push_back(pat);
    }
    auto c = compile_policy(p, fresh_counters(p));
    REQUIRE(c.ok());
    for (int i = 0; i < 30; ++i) {
      size_t size = rng() % 1500;
      std::string payload;
      for (size_t k = 0; k < size; ++k) payload += alphabet[rng() % alphabet.size()];
      if (size > 70 && rng() % 2) {
        const std::string& pat = p.sip.patterns[rng() % n];
        if (pat.size() < size) payload.replace(rng() % (size - pat.size()), pat.size(), pat);
      }
      std::string hay = payload;
      if (p.sip.ignore_case) std::transform(hay.begin(), hay.end(), hay.begin(), ::tolower);
      int want = -1;
      for (size_t k = 0; k < n && want < 0; ++k) {
        std::string needle = p.sip.patterns[k];
        if (p.sip.ignore_case) std::transform(needle.begin(), needle.end(), needle.begin(), ::tolower);
        if (hay.find(needle) != std::string::npos) want = static_cast<int>(k);
      }
      REQUIRE_MESSAGE(compiled_scan(c.value(), payload) == want, "round " << round << " payload " << i);
    }
  }
}

TEST_CASE("scan tables: gram offsets, prefix masks, case variants") {
  Policy p;
  p.sip.patterns = {"abcd", "abcx", "zzzzzz"};
  p.sip.ignore_case = true;
  auto c = compile_policy(p, fresh_counters(p));
  REQUIRE(c.ok());
  const sipxdp_scan_tables& t = *c->tables;
  CHECK(c->sip_cfg.window == 4);
  CHECK(c->sip_cfg.prefix_len == 4);
  auto g = [](char a, char b) { return (uint32_t(uint8_t(a)) << 8) | uint8_t(b); };
  CHECK(t.grams[g('q', 'q')] == 0);
  CHECK(t.grams[g('a', 'b')] == 0b001);
  CHECK(t.grams[g('b', 'c')] == 0b010);
  CHECK(t.grams[g('c', 'd')] == 0b100);
  CHECK(t.grams[g('C', 'D')] == 0b100);
  CHECK(t.grams[g('c', 'X')] == 0b100);
  CHECK(t.grams[g('z', 'z')] == 0b111);
  auto word = [](const char* s) {
    uint32_t w;
    std::memcpy(&w, s, 4);
    return w;
  };
  CHECK((t.masks[t.prefix[sipxdp_prefix_hash(word("abcd"), 4)]] & 0b001) != 0);
  CHECK((t.masks[t.prefix[sipxdp_prefix_hash(word("ABCX"), 4)]] & 0b010) != 0);
  CHECK((t.masks[t.prefix[sipxdp_prefix_hash(word("zzzz"), 4)]] & 0b100) != 0);
  CHECK(c->patterns[1].bytes[3] == 'x');
  CHECK(c->sip_cfg.flags == (SIPXDP_SIP_IGNORE_CASE | SIPXDP_SIP_BAN));
  CHECK(c->sip_cfg.ban_ns == 600 * NSEC_PER_SEC);

  Policy q;
  q.sip.patterns = {"ab", "a-very-long-pattern"};
  auto d = compile_policy(q, fresh_counters(q));
  REQUIRE(d.ok());
  CHECK(d->sip_cfg.window == 2);
  CHECK(d->sip_cfg.prefix_len == 2);
  CHECK(compiled_scan(d.value(), "xxxxab") == 0);
  CHECK(compiled_scan(d.value(), "xxa-very-long-patternxx") == 1);
}

TEST_CASE("sip rate limits, auth failures and learned trust: parsed, compiled, and their errors name the place") {
  auto p = parse_ok(with_sip(R"({"rate_limits": [
      {"name": "register-flood", "methods": ["REGISTER"], "requests": 16, "per_seconds": 2, "ban_seconds": 300},
      {"name": "all", "methods": ["*"], "requests": 100, "per_seconds": 10}],
    "auth_failures": {"max": 5, "responses": [401, 407]}, "ipv6_prefix": 56, "rate_limit_sources": 4096})"));
  REQUIRE(p.sip.rate_limits.size() == 2);
  CHECK(p.sip.rate_limits[0].methods == 1u << SIPXDP_M_REGISTER);
  CHECK(p.sip.rate_limits[0].text() == "REGISTER 16/2s ban 300s");
  CHECK(p.sip.rate_limits[1].methods == (1u << SIPXDP_M_NUM) - 1);
  CHECK(p.sip.auth_failures.enabled);
  CHECK(p.sip.auth_failures.max == 5);
  CHECK(p.sip.auth_failures.window_seconds == 60);  // defaults for the rest
  CHECK(p.sip.auth_failures.escalate);
  CHECK(p.sip.learned_trust.enabled);
  CHECK(p.sip.ipv6_prefix == 56);
  CHECK(*p.sip.rate_limit_sources == 4096);
  auto c = compile_policy(p, fresh_counters(p));
  REQUIRE(c.ok());
  CHECK(c->sip_cfg.nlimits == 2);
  CHECK(c->sip_cfg.v6_prefix == 56);
  CHECK(c->sip_cfg.auth_max == 5);
  CHECK(c->sip_cfg.auth_codes[0] == 401);
  CHECK(c->sip_cfg.auth_codes[1] == 407);
  CHECK(c->sip_cfg.auth_codes[2] == 0);
  CHECK((c->sip_cfg.flags & SIPXDP_SIP_TRUST) != 0);
  CHECK((c->hdr.flags & SIPXDP_HDR_SIP_RESPONSES) != 0);
  CHECK(c->rate_limits[0].cost_ns == 125'000'000);  // 2 s / 16
  CHECK(c->rate_limits[0].burst_ns == 2'000'000'000);
  CHECK(c->rate_limits[0].ban_ns == 300'000'000'000);
  CHECK(c->rate_limits[0].counter != c->rate_limits[0].ban_counter);
  // Without the blocks: no auth bans, and egress reads no responses when nothing bans.
  auto q = parse_ok(with_sip(R"({"ban_seconds": 0})"));
  auto cq = compile_policy(q, fresh_counters(q));
  REQUIRE(cq.ok());
  CHECK(!q.sip.auth_failures.enabled);
  CHECK((cq->hdr.flags & SIPXDP_HDR_SIP_RESPONSES) == 0);

  CHECK(parse_err(
            with_sip(R"({"rate_limits": [{"name": "r", "methods": ["register"], "requests": 1, "per_seconds": 1}]})"))
            .find(": rate limit \"r\": unknown SIP method \"register\" (INVITE, ACK,") != std::string::npos);
  CHECK(parse_err(
            with_sip(R"({"rate_limits": [{"name": "r", "methods": ["INVITE"], "requests": 0, "per_seconds": 1}]})")) ==
        "p.json:2:75: rate limit \"r\": sip.rate_limits[0].requests must be a whole number of requests from 1 to "
        "1000000");
  CHECK(parse_err(with_sip(R"({"rate_limits": [{"name": "r", "methods": ["INVITE"], "requests": 1}]})")) ==
        "p.json:2:26: rate limit \"r\": a rate limit needs \"per_seconds\"");
  CHECK(parse_err(with_sip(
            R"({"rate_limits": [{"name": "r", "methods": ["INVITE", "INVITE"], "requests": 1, "per_seconds": 1}]})")) ==
        "p.json:2:62: rate limit \"r\": method \"INVITE\" is listed twice");
  CHECK(parse_err(with_sip(R"({"rate_limits": [{"name": "r", "methods": ["INVITE"], "requests": 1, "per_seconds": 1},
      {"name": "r", "methods": ["BYE"], "requests": 1, "per_seconds": 1}]})")) ==
        "p.json:3:16: rate limit \"r\": duplicate rate limit name");
  CHECK(
      parse_err(with_sip(
          R"({"rate_limits": [{"name": "r", "methods": ["INVITE"], "requests": 1, "per_seconds": 1, "burst": 3}]})")) ==
      "p.json:2:96: rate limit \"r\": sip.rate_limits[0]: unknown field \"burst\" (ban_seconds, comment, methods, "
      "name, "
      "per_seconds, requests)");
  CHECK(parse_err(with_sip(R"({"auth_failures": {"max": 10, "responses": [200]}})")) ==
        "p.json:2:53: sip.auth_failures.responses: a response code must be a number from 300 to 699 (2xx responses "
        "clear failures), not 200");
  CHECK(parse_err(with_sip(R"({"auth_failures": {"ban_seconds": 900, "max_ban_seconds": 600}})")) ==
        "p.json:2:67: sip.auth_failures.max_ban_seconds (600) is shorter than ban_seconds (900)");
  CHECK(parse_err(with_sip(R"({"ipv6_prefix": 16})")) ==
        "p.json:2:25: sip.ipv6_prefix must be a whole number of bits from 32 to 128");
  CHECK(parse_err(with_sip(R"({"learned_trust": {"enabled": 1}})")) ==
        "p.json:2:39: sip.learned_trust.enabled must be true or false");
}
