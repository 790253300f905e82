// Shared by unit and datapath tests: packet keys and random policies for
// checking the compiled lookup (and the kernel) against first-match evaluation.
#pragma once

#include <algorithm>
#include <random>

#include "compiled.h"
#include "sipxdp/compiler.h"
#include "sipxdp/reference.h"

namespace sipxdp::test {

inline PacketKey v4(uint8_t proto, uint16_t sport, uint16_t dport, const char* src, const char* dst = "198.19.0.1") {
  PacketKey k;
  k.family = 4;
  k.proto = proto;
  k.sport = sport;
  k.dport = dport;
  auto s = parse_cidr(src).value(), d = parse_cidr(dst).value();
  k.src = s.addr;
  k.dst = d.addr;
  return k;
}

inline PacketKey v6(uint8_t proto, uint16_t sport, uint16_t dport, const char* src,
                    const char* dst = "2001:db8:ffff::1") {
  PacketKey k = v4(proto, sport, dport, "0.0.0.0", "0.0.0.0");
  k.family = 6;
  k.src = parse_cidr(src).value().addr;
  k.dst = parse_cidr(dst).value().addr;
  return k;
}

// Random policies and packets: the compiled tables must agree with plain
// first-match evaluation for every packet.
inline Policy random_policy(std::mt19937& rng, int nrules) {
  Policy p;
  p.default_action = rng() % 2 ? Action::allow : Action::drop;
  auto port = [&] { return static_cast<uint16_t>(rng() % 40 + 5050); };
  auto pick = [&](int n) { return static_cast<int>(rng() % n); };
  const char* v4s[] = {"198.18.0.0/16", "198.18.1.0/24", "198.18.1.7/32",
                       "198.18.0.0/15", "0.0.0.0/0",     "198.18.1.128/25"};
  const char* v6s[] = {"2001:db8::/32", "2001:db8:1::/48", "2001:db8:1::7/128", "::/0"};
  for (int i = 0; i < nrules; ++i) {
    Rule r;
    r.name = "r" + std::to_string(i);
    r.action = rng() % 2 ? Action::allow : Action::drop;
    switch (pick(6)) {
      case 0: break;  // any
      case 1: r.protos = {ProtoKind::udp}; break;
      case 2: r.protos = {ProtoKind::tcp}; break;
      case 3: r.protos = {ProtoKind::udp, ProtoKind::tcp}; break;
      case 4:
        r.protos = {pick(2) ? ProtoKind::icmp : ProtoKind::icmpv6};
        if (pick(2)) r.icmp_type = {{8, 8}};
        break;
      case 5: r.other_protos = {47}; break;
    }
    bool l4 = !r.protos.empty() && r.other_protos.empty() && std::all_of(r.protos.begin(), r.protos.end(), [](auto k) {
      return k == ProtoKind::udp || k == ProtoKind::tcp;
    });
    if (l4 && pick(3)) {
      uint16_t a = port(), b = port();
      r.dport = {{std::min(a, b), std::max(a, b)}};
      if (pick(3) == 0) r.dport.push_back({port(), 0}), r.dport.back().hi = r.dport.back().lo;
    }
    if (l4 && pick(4) == 0) {
      uint16_t a = port();
      r.sport = {{a, static_cast<uint16_t>(a + pick(5))}};
    }
    if (pick(3) == 0) {
      int n = 1 + pick(2);
      for (int j = 0; j < n; ++j) r.src.push_back(parse_cidr(pick(2) ? v4s[pick(6)] : v6s[pick(4)]).value());
    }
    if (pick(4) == 0) r.dst.push_back(parse_cidr(pick(2) ? v4s[pick(6)] : v6s[pick(4)]).value());
    p.rules.push_back(r);
  }
  return p;
}

inline PacketKey random_packet(std::mt19937& rng) {
  const char* a4[] = {"198.18.1.7", "198.18.1.200", "198.18.2.1", "198.19.3.3", "203.0.113.9"};
  const char* a6[] = {"2001:db8:1::7", "2001:db8:1::8", "2001:db8:2::1", "2001:db9::1"};
  uint8_t protos[] = {6, 17, 1, 58, 47, 50};
  uint8_t proto = protos[rng() % 6];
  uint16_t sport = static_cast<uint16_t>(rng() % 45 + 5048), dport = static_cast<uint16_t>(rng() % 45 + 5048);
  if (proto == 1 || proto == 58) dport = rng() % 2 ? 8 : 0, sport = 0;
  if (rng() % 2) return v4(proto, sport, dport, a4[rng() % 5], a4[rng() % 5]);
  return v6(proto, sport, dport, a6[rng() % 4], a6[rng() % 4]);
}

}  // namespace sipxdp::test
