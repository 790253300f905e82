// The compiled tables evaluated in userspace the way the kernel reads them:
// for tests of the compiler against the reference model and the kernel.
#pragma once

#include <algorithm>
#include <string>

#include "sipxdp/abi.h"
#include "sipxdp/compiler.h"
#include "sipxdp/reference.h"

namespace sipxdp::test {

inline uint8_t lower_ascii(uint8_t b) {
  return (b >= 'A' && b <= 'Z') ? b + 32 : b;
}

// The first pattern found in `payload` by the compiled tables (mirroring the
// kernel's scan), or -1.
inline int compiled_scan(const CompiledPolicy& c, const std::string& payload) {
  if (!c.tables || c.patterns.empty()) return -1;
  const sipxdp_scan_tables& t = *c.tables;
  const size_t window = c.sip_cfg.window, end = std::min<size_t>(payload.size(), SIPXDP_SCAN_MAX);
  const bool icase = c.sip_cfg.flags & SIPXDP_SIP_IGNORE_CASE;
  auto at = [&](size_t i) { return i < payload.size() ? static_cast<uint8_t>(payload[i]) : uint8_t(0); };
  int best = -1;  // the earliest-listed pattern wins, as in the kernel
  for (size_t pos = 1; pos < end && best != 0; pos += window - 1) {
    uint8_t offs = t.grams[(uint32_t(at(pos - 1)) << 8) | at(pos)];
    for (size_t j = 0; j + 1 < SIPXDP_SCAN_MAX_WINDOW; ++j) {
      if (!(offs & (1u << j)) || j + 1 > pos) continue;
      size_t start = pos - 1 - j;
      uint32_t word = uint32_t(at(start)) | uint32_t(at(start + 1)) << 8 | uint32_t(at(start + 2)) << 16 |
                      uint32_t(at(start + 3)) << 24;
      uint8_t idx = t.prefix[sipxdp_prefix_hash(word, c.sip_cfg.prefix_len)];
      uint64_t mask = idx ? t.masks[idx] : 0;
      for (size_t i = 0; i < c.patterns.size() && (best < 0 || int(i) < best); ++i) {
        if (!(mask & (1ull << i))) continue;
        const sipxdp_pattern& pat = c.patterns[i];
        if (start + pat.len > end) continue;
        size_t k = 0;
        while (k < pat.len && (icase ? lower_ascii(at(start + k)) : at(start + k)) == pat.bytes[k]) ++k;
        if (k == pat.len) best = static_cast<int>(i);
      }
    }
  }
  return best;
}

// Evaluation through the compiled tables, mirroring bpf/include/sipxdp/lookup.h.
inline int compiled_match(const CompiledPolicy& c, const PacketKey& k) {
  auto port = [&](int t, uint32_t v) { return c.port_class[size_t(t) * SIPXDP_PORTS + v]; };
  auto comb = [&](uint8_t stage, uint32_t a, uint32_t b) -> uint32_t {
    if (!a || !b) return 0;
    for (auto& e : c.comb)
      if (e.stage == stage && e.a == a && e.b == b) return e.cls;
    return 0;
  };
  auto addr = [&](uint8_t dir) -> uint32_t {
    int best = -1;
    uint32_t cls = 0;
    const auto& a = dir == SIPXDP_DIR_SRC ? k.src : k.dst;
    auto consider = [&](int family, const uint8_t* pa, int plen, uint32_t v) {
      Cidr cc;
      cc.family = family;
      std::copy_n(pa, family == 4 ? 4 : 16, cc.addr.begin());
      cc.plen = static_cast<uint8_t>(plen);
      if (prefix_contains(cc, k.family, a) && plen > best) best = plen, cls = v;
    };
    if (k.family == 4) {
      for (auto& e : c.lpm4)
        if (e.dir == dir) consider(4, e.addr.data(), e.plen, e.cls);
    } else {
      for (auto& e : c.lpm6)
        if (e.dir == dir) consider(6, e.addr.data(), e.plen, e.cls);
    }
    return cls;
  };
  uint32_t table = sipxdp_dport_table(static_cast<uint8_t>(k.family), k.proto);
  uint32_t v = sipxdp_dport_key(table, k.proto, k.dport, static_cast<uint8_t>(k.dport));
  uint32_t cls = port(table, v);
  uint32_t f = c.hdr.flags;
  // As the kernel: a class whose first rule matches any source port (and
  // address) is the answer already.
  auto flags = [&](uint32_t cl) { return cl < c.cls_rule.size() ? c.cls_rule[cl].flags : 0u; };
  // A missing combination means the intersection is the first class's
  // rules that every class of the other dimension holds (its wild class).
  auto rule_of = [&](uint32_t cl) { return cl < c.cls_rule.size() ? c.cls_rule[cl] : sipxdp_rule{}; };
  if (cls && !(flags(cls) & SIPXDP_RULE_NO_SPORT_ADDR) && (f & SIPXDP_HDR_SPORT)) {
    uint32_t n = comb(SIPXDP_COMB_PS, cls, port(SIPXDP_PT_SPORT, table <= SIPXDP_PT_UDP ? k.sport : 0));
    cls = n ? n : rule_of(cls).wild_sport;
  }
  if (cls && !(flags(cls) & SIPXDP_RULE_NO_ADDR) && (f & (SIPXDP_HDR_SRC | SIPXDP_HDR_DST))) {
    uint32_t a;
    if (!(f & SIPXDP_HDR_DST)) {
      a = addr(SIPXDP_DIR_SRC);
    } else if (!(f & SIPXDP_HDR_SRC)) {
      a = addr(SIPXDP_DIR_DST);
    } else {
      uint32_t s = addr(SIPXDP_DIR_SRC);
      a = comb(SIPXDP_COMB_AD, s, addr(SIPXDP_DIR_DST));
      if (!a) a = rule_of(s).wild_dst;
    }
    uint32_t n = comb(SIPXDP_COMB_FINAL, cls, a);
    cls = n ? n : rule_of(cls).wild_addr;
  }
  if (!cls || cls >= c.cls_first.size()) return -1;
  return c.cls_first[cls];
}

}  // namespace sipxdp::test
