#include "sipxdp/compiler.h"

#include "sipxdp/reference.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <unordered_map>

namespace sipxdp {

namespace {

using u128 = unsigned __int128;

// A set of rules as a bitset; classes are interned sets.
class Classes {
 public:
  explicit Classes(size_t nrules) : words_((nrules + 63) / 64) {
    sets_.emplace_back(words_, 0);  // class 0: the empty set
    index_.emplace(key(sets_[0]), 0);
  }

  using Bits = std::vector<uint64_t>;

  Bits empty() const { return Bits(words_, 0); }

  Result<uint32_t> intern(const Bits& b) {
    if (is_empty(b)) return 0u;
    auto k = key(b);
    auto it = index_.find(k);
    if (it != index_.end()) return it->second;
    if (sets_.size() >= SIPXDP_MAX_CLASSES)
      return make_error("policy too complex: it needs more than " + std::to_string(SIPXDP_MAX_CLASSES) +
                        " distinct rule combinations");
    uint32_t id = static_cast<uint32_t>(sets_.size());
    sets_.push_back(b);
    index_.emplace(std::move(k), id);
    return id;
  }

  const Bits& get(uint32_t id) const { return sets_[id]; }
  size_t size() const { return sets_.size(); }

  // First rule of a class, or -1 for the empty set.
  int first(uint32_t id) const {
    const Bits& b = sets_[id];
    for (size_t w = 0; w < b.size(); ++w)
      if (b[w]) return static_cast<int>(w * 64 + __builtin_ctzll(b[w]));
    return -1;
  }

  Result<uint32_t> intersect(uint32_t a, uint32_t b) {
    const Bits &x = sets_[a], &y = sets_[b];
    Bits r(words_);
    bool any = false;
    for (size_t w = 0; w < words_; ++w) {
      r[w] = x[w] & y[w];
      any |= r[w] != 0;
    }
    if (!any) return 0u;
    return intern(r);
  }

  // The intersection of class a with a set of rules.
  Result<uint32_t> intersect_bits(uint32_t a, const Bits& y) {
    const Bits& x = sets_[a];
    Bits r(words_);
    for (size_t w = 0; w < words_; ++w) r[w] = x[w] & y[w];
    return intern(r);
  }

  template <typename Fn>
  static void for_each(const Bits& b, Fn&& fn) {
    for (size_t w = 0; w < b.size(); ++w)
      for (uint64_t x = b[w]; x; x &= x - 1) fn(w * 64 + __builtin_ctzll(x));
  }
  static bool test(const Bits& b, size_t r) { return (b[r / 64] >> (r % 64)) & 1; }
  static void set(Bits& b, size_t r) { b[r / 64] |= 1ull << (r % 64); }
  static void clear(Bits& b, size_t r) { b[r / 64] &= ~(1ull << (r % 64)); }
  static void merge(Bits& b, const Bits& o) {
    for (size_t w = 0; w < b.size(); ++w) b[w] |= o[w];
  }

 private:
  static bool is_empty(const Bits& b) {
    return std::all_of(b.begin(), b.end(), [](uint64_t w) { return w == 0; });
  }
  static std::string key(const Bits& b) {
    return std::string(reinterpret_cast<const char*>(b.data()), b.size() * sizeof(uint64_t));
  }

  size_t words_;
  std::vector<Bits> sets_;
  std::unordered_map<std::string, uint32_t> index_;
};

std::vector<PortRange> normalise(std::vector<PortRange> rs) {
  std::sort(rs.begin(), rs.end(), [](auto& a, auto& b) { return a.lo < b.lo; });
  std::vector<PortRange> out;
  for (auto& r : rs) {
    if (!out.empty() && r.lo <= static_cast<uint32_t>(out.back().hi) + 1)
      out.back().hi = std::max(out.back().hi, r.hi);
    else
      out.push_back(r);
  }
  return out;
}

bool any_proto(const Rule& r) {
  return r.protos.empty() && r.other_protos.empty();
}

bool has_kind(const Rule& r, ProtoKind k) {
  return std::find(r.protos.begin(), r.protos.end(), k) != r.protos.end();
}

// The port ranges rule r matches in port table t (empty: not at all).
std::vector<PortRange> ranges_for(const Rule& r, int t) {
  const std::vector<PortRange> full = {{0, 65535}};
  if (t == SIPXDP_PT_SPORT) return r.sport.empty() ? full : normalise(r.sport);
  if (any_proto(r)) return full;
  switch (t) {
    case SIPXDP_PT_TCP:
      return has_kind(r, ProtoKind::tcp) ? (r.dport.empty() ? full : normalise(r.dport)) : std::vector<PortRange>{};
    case SIPXDP_PT_UDP:
      return has_kind(r, ProtoKind::udp) ? (r.dport.empty() ? full : normalise(r.dport)) : std::vector<PortRange>{};
    case SIPXDP_PT_ICMP:
      return has_kind(r, ProtoKind::icmp) ? (r.icmp_type.empty() ? full : normalise(r.icmp_type))
                                          : std::vector<PortRange>{};
    case SIPXDP_PT_ICMP6:
      return has_kind(r, ProtoKind::icmpv6) ? (r.icmp_type.empty() ? full : normalise(r.icmp_type))
                                            : std::vector<PortRange>{};
    case SIPXDP_PT_OTHER: {
      std::vector<PortRange> out;
      for (auto n : r.other_protos) out.push_back({n, n});
      return normalise(out);
    }
  }
  return {};
}

// Sweeps the port space of one table, interning the rule set of every
// elementary interval. Returns the classes seen.
Result<std::vector<uint32_t>> build_port_table(const Policy& p, int t, Classes& cls, uint32_t* table) {
  std::map<uint32_t, std::vector<std::pair<size_t, bool>>> events;  // point -> (rule, add?)
  events[0];
  for (size_t r = 0; r < p.rules.size(); ++r) {
    for (auto& range : ranges_for(p.rules[r], t)) {
      events[range.lo].push_back({r, true});
      if (range.hi < 65535) events[range.hi + 1u].push_back({r, false});
    }
  }
  std::vector<uint32_t> seen;
  auto cur = cls.empty();
  for (auto it = events.begin(); it != events.end(); ++it) {
    for (auto& [r, add] : it->second) {
      if (add)
        Classes::set(cur, r);
      else
        Classes::clear(cur, r);
    }
    auto id = cls.intern(cur);
    if (!id) return id.error();
    auto next = std::next(it);
    uint32_t end = next == events.end() ? 65536 : next->first;
    std::fill(table + it->first, table + end, id.value());
    if (id.value()) seen.push_back(id.value());
  }
  std::sort(seen.begin(), seen.end());
  seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
  return seen;
}

struct Prefix {
  u128 start = 0;  // the address as a number, IPv4 in the low 32 bits
  int plen = 0;
  int bits = 32;
  std::array<uint8_t, 16> addr{};
  std::vector<size_t> rules;
  u128 end() const {
    int host = bits - plen;
    u128 span = host >= 128 ? ~u128(0) : ((u128(1) << host) - 1);
    return start | span;
  }
};

u128 to_num(const std::array<uint8_t, 16>& a, int bytes) {
  u128 v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | a[i];
  return v;
}

// Classes of one address dimension (family, direction): each distinct prefix
// gets the rules whose prefixes contain it, plus the rules with no prefix.
Result<std::vector<uint32_t>> build_addr(const Policy& p, int family, uint8_t dir, Classes& cls, CompiledPolicy& out) {
  std::map<std::pair<u128, int>, Prefix> uniq;
  int bits = family == 4 ? 32 : 128;
  auto wildcard = cls.empty();
  for (size_t r = 0; r < p.rules.size(); ++r) {
    auto& list = dir == SIPXDP_DIR_SRC ? p.rules[r].src : p.rules[r].dst;
    if (list.empty()) Classes::set(wildcard, r);
    for (auto& c : list) {
      if (c.family != family) continue;
      u128 start = to_num(c.addr, bits / 8);
      auto& pf = uniq[{start, c.plen}];
      pf.start = start;
      pf.plen = c.plen;
      pf.bits = bits;
      pf.addr = c.addr;
      pf.rules.push_back(r);
    }
  }
  uniq[{0, 0}].bits = bits;  // the root /0 catches every address
  std::vector<Prefix*> order;
  for (auto& [k, v] : uniq) order.push_back(&v);  // sorted by start, then shorter first

  std::vector<uint32_t> seen;
  std::vector<std::pair<Prefix*, Classes::Bits>> stack;
  for (Prefix* pf : order) {
    while (!stack.empty() && pf->start > stack.back().first->end()) stack.pop_back();
    auto bits_now = stack.empty() ? wildcard : stack.back().second;
    for (size_t r : pf->rules) Classes::set(bits_now, r);
    auto id = cls.intern(bits_now);
    if (!id) return id.error();
    if (id.value()) {
      seen.push_back(id.value());
      if (family == 4) {
        Lpm4Entry e{dir, {}, static_cast<uint8_t>(pf->plen), id.value()};
        std::copy_n(pf->addr.begin(), 4, e.addr.begin());
        out.lpm4.push_back(e);
      } else {
        out.lpm6.push_back({dir, pf->addr, static_cast<uint8_t>(pf->plen), id.value()});
      }
    }
    stack.emplace_back(pf, std::move(bits_now));
  }
  std::sort(seen.begin(), seen.end());
  seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
  return seen;
}

// One combining stage: the kernel looks up comb(stage, a, b) and, when that
// is absent, takes wild(a) = a & base, where `base` holds the rules every b
// contains (those with no constraint in b's dimension). So an entry is
// needed only where a meets a rule of b outside the base, and those pairs
// are found through an index from rule to the b classes holding it: the
// work follows the entries written, not |as| x |bs| (which made policies of
// thousands of rules, each with its own port and source, take minutes).
// Returns every class the stage can yield: the entries' and the wilds.
Result<std::vector<uint32_t>> combine(uint8_t stage, const std::vector<uint32_t>& as, const std::vector<uint32_t>& bs,
                                      const Classes::Bits& base, std::unordered_map<uint32_t, uint32_t>& wild,
                                      Classes& cls, CompiledPolicy& out) {
  std::unordered_map<size_t, std::vector<uint32_t>> holders;  // rule -> b classes holding it outside base
  for (uint32_t b : bs)
    Classes::for_each(cls.get(b), [&](size_t r) {
      if (!Classes::test(base, r)) holders[r].push_back(b);
    });
  std::vector<uint32_t> seen;
  std::unordered_map<uint32_t, uint32_t> stamp;  // b -> last a that met it
  for (uint32_t a : as) {
    auto w = cls.intersect_bits(a, base);
    if (!w) return w.error();
    wild[a] = w.value();
    if (w.value()) seen.push_back(w.value());
    std::vector<uint32_t> meet;
    Classes::for_each(cls.get(a), [&](size_t r) {
      auto it = holders.find(r);
      if (it == holders.end()) return;
      for (uint32_t b : it->second) {
        auto [st, fresh] = stamp.try_emplace(b, a);
        if (!fresh && st->second == a) continue;
        st->second = a;
        meet.push_back(b);
      }
    });
    for (uint32_t b : meet) {
      auto id = cls.intersect(a, b);
      if (!id) return id.error();
      out.comb.push_back({stage, a, b, id.value()});
      seen.push_back(id.value());
    }
    if (out.comb.size() > SIPXDP_MAX_ENTRIES_PER_GEN)
      return make_error("policy too complex: more than " + std::to_string(SIPXDP_MAX_ENTRIES_PER_GEN) +
                        " class combinations");
  }
  std::sort(seen.begin(), seen.end());
  seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
  return seen;
}

std::vector<uint32_t> merged(std::vector<uint32_t> a, const std::vector<uint32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  std::sort(a.begin(), a.end());
  a.erase(std::unique(a.begin(), a.end()), a.end());
  return a;
}

}  // namespace

Slots fresh_counters(const Policy& p) {
  Slots s;
  uint32_t next = SIPXDP_CTR_RULE_BASE;
  for (size_t i = 0; i < p.rules.size(); ++i) s.rules.push_back(next++);
  for (size_t i = 0; i < p.sip.patterns.size(); ++i) s.patterns.push_back(next++);
  for (size_t i = 0; i < p.dscp.size(); ++i) s.dscp.push_back(next++);
  for (size_t i = 0; i < p.sip.rate_limits.size(); ++i) {
    s.rate_limits.push_back(next++);
    s.rate_limit_bans.push_back(next++);
  }
  return s;
}

namespace {

uint8_t lower(uint8_t b) {
  return (b >= 'A' && b <= 'Z') ? b + 32 : b;
}

// Rate limits, auth-failure bans and learned trust (abi.h). The egress
// program reads responses when they ban or teach trust something ingress uses.
void compile_sip_defences(const Policy& p, const Slots& slots, CompiledPolicy& out) {
  const SipConfig& sip = p.sip;
  sipxdp_sip_cfg& c = out.sip_cfg;
  c.nlimits = static_cast<uint32_t>(sip.rate_limits.size());
  c.v6_prefix = sip.ipv6_prefix;
  for (size_t i = 0; i < sip.rate_limits.size(); ++i) {
    const RateLimit& r = sip.rate_limits[i];
    sipxdp_rate_limit l{};
    l.methods = r.methods;
    l.counter = slots.rate_limits[i];
    l.ban_counter = slots.rate_limit_bans[i];
    l.burst_ns = uint64_t(r.per_seconds) * NSEC_PER_SEC;
    l.cost_ns = l.burst_ns / r.requests;
    l.burst_ns = l.cost_ns * r.requests;  // exactly `requests` at once
    l.ban_ns = uint64_t(r.ban_seconds) * NSEC_PER_SEC;
    out.rate_limits.push_back(l);
  }
  const AuthFailures& a = sip.auth_failures;
  if (a.enabled) {
    c.flags |= SIPXDP_SIP_AUTH_BANS | (a.escalate ? SIPXDP_SIP_AUTH_ESCALATE : 0u);
    c.auth_max = a.max;
    for (size_t i = 0; i < a.responses.size() && i < SIPXDP_MAX_AUTH_CODES; ++i) c.auth_codes[i] = a.responses[i];
    c.auth_window_ns = uint64_t(a.window_seconds) * NSEC_PER_SEC;
    c.auth_ban_ns = uint64_t(a.ban_seconds) * NSEC_PER_SEC;
    c.auth_ban_max_ns = uint64_t(a.max_ban_seconds) * NSEC_PER_SEC;
  }
  // Trust matters where something bans or limits: rate limits, pattern bans, auth bans.
  if (learned_trust_active(p)) {
    c.flags |= SIPXDP_SIP_TRUST;
    c.trust_max_ns = uint64_t(sip.learned_trust.max_seconds) * NSEC_PER_SEC;
  }
  if (c.flags & (SIPXDP_SIP_AUTH_BANS | SIPXDP_SIP_TRUST)) out.hdr.flags |= SIPXDP_HDR_SIP_RESPONSES;
}

// The sampled gram filter; see the matcher's comment in bpf/ingress.bpf.c.
void compile_sip(const Policy& p, const Slots& slots, CompiledPolicy& out) {
  const SipConfig& sip = p.sip;
  const bool icase = sip.ignore_case;
  out.tables = std::make_shared<sipxdp_scan_tables>();
  sipxdp_scan_tables& t = *out.tables;
  std::memset(&t, 0, sizeof(t));
  size_t m = SIPXDP_MAX_PATTERN_LEN;
  for (auto& pat : sip.patterns) m = std::min(m, pat.size());
  if (sip.patterns.empty()) m = SIPXDP_MIN_PATTERN_LEN;
  const size_t window = std::min<size_t>(m, SIPXDP_SCAN_MAX_WINDOW), prefix_len = std::min<size_t>(m, 4);

  auto variants = [&](uint8_t b) {
    std::vector<uint8_t> v = {b};
    if (icase && b >= 'a' && b <= 'z') v.push_back(static_cast<uint8_t>(b - 32));
    return v;
  };
  std::map<uint32_t, uint64_t> by_prefix;
  for (size_t i = 0; i < sip.patterns.size(); ++i) {
    sipxdp_pattern sp{};
    const std::string& text = sip.patterns[i];
    sp.len = static_cast<uint32_t>(text.size());
    sp.counter = slots.patterns[i];
    for (size_t k = 0; k < text.size(); ++k) {
      uint8_t b = static_cast<uint8_t>(text[k]);
      sp.bytes[k] = icase ? lower(b) : b;
    }
    out.patterns.push_back(sp);
    for (size_t j = 0; j + 1 < window; ++j)
      for (uint8_t a : variants(sp.bytes[j]))
        for (uint8_t b : variants(sp.bytes[j + 1])) t.grams[(uint32_t(a) << 8) | b] |= uint8_t(1u << j);
    uint32_t word = 0;
    std::memcpy(&word, sp.bytes, 4);  // little-endian, as the kernel reads it
    by_prefix[sipxdp_prefix_hash(word, static_cast<uint32_t>(prefix_len))] |= 1ull << i;
  }
  std::map<uint64_t, uint8_t> index;
  for (auto& [h, mask] : by_prefix) {
    auto [it, fresh] = index.emplace(mask, static_cast<uint8_t>(index.size() + 1));
    if (fresh) t.masks[it->second] = mask;
    t.prefix[h] = it->second;
  }
  out.sip_cfg.flags = (icase ? SIPXDP_SIP_IGNORE_CASE : 0) | (sip.match == SipMatch::headers ? SIPXDP_SIP_HEADERS : 0) |
                      (sip.ban_seconds ? SIPXDP_SIP_BAN : 0) |
                      (sip.fragments == SipFragments::drop ? SIPXDP_SIP_FRAG_DROP : 0);
  out.sip_cfg.npatterns = static_cast<uint32_t>(sip.patterns.size());
  out.sip_cfg.window = static_cast<uint32_t>(window);
  out.sip_cfg.prefix_len = static_cast<uint32_t>(prefix_len);
  out.sip_cfg.ban_ns = uint64_t(sip.ban_seconds) * NSEC_PER_SEC;
  compile_sip_defences(p, slots, out);
  for (auto& c : sip.trusted) {
    if (c.family == 4) {
      Lpm4Entry e{SIPXDP_DIR_TRUSTED, {}, c.plen, 1};
      std::copy_n(c.addr.begin(), 4, e.addr.begin());
      out.lpm4.push_back(e);
    } else {
      out.lpm6.push_back({SIPXDP_DIR_TRUSTED, c.addr, c.plen, 1});
    }
  }
}

// DSCP rules, and for their destinations one LPM entry per distinct prefix
// whose value is the mask of the rules with a prefix covering it (the
// longest match then names every rule that matches the address).
void compile_dscp(const Policy& p, const Slots& slots, CompiledPolicy& out) {
  bool use_dst = false;
  for (size_t i = 0; i < p.dscp.size(); ++i) {
    const DscpRule& r = p.dscp[i];
    sipxdp_dscp_rule k{};
    k.proto = r.proto;
    k.dscp = r.dscp;
    k.counter = slots.dscp[i];
    k.nsport = static_cast<uint8_t>(r.sport.size());
    k.ndport = static_cast<uint8_t>(r.dport.size());
    for (size_t j = 0; j < r.sport.size(); ++j) k.sport[j][0] = r.sport[j].lo, k.sport[j][1] = r.sport[j].hi;
    for (size_t j = 0; j < r.dport.size(); ++j) k.dport[j][0] = r.dport[j].lo, k.dport[j][1] = r.dport[j].hi;
    k.dst = !r.dst.empty();
    use_dst |= k.dst;
    out.dscp.push_back(k);
  }
  std::map<std::pair<int, std::pair<std::array<uint8_t, 16>, uint8_t>>, uint32_t> masks;
  for (auto& r : p.dscp)
    for (auto& c : r.dst) masks[{c.family, {c.addr, c.plen}}] = 0;
  for (auto& [key, mask] : masks) {
    Cidr c;
    c.family = key.first;
    c.addr = key.second.first;
    c.plen = key.second.second;
    for (size_t i = 0; i < p.dscp.size(); ++i)
      for (auto& d : p.dscp[i].dst)
        if (d.plen <= c.plen && prefix_contains(d, c.family, c.addr)) mask |= 1u << i;
    if (c.family == 4) {
      Lpm4Entry e{SIPXDP_DIR_DSCP, {}, c.plen, mask};
      std::copy_n(c.addr.begin(), 4, e.addr.begin());
      out.lpm4.push_back(e);
    } else {
      out.lpm6.push_back({SIPXDP_DIR_DSCP, c.addr, c.plen, mask});
    }
  }
  out.hdr.ndscp = static_cast<uint32_t>(p.dscp.size());
  if (use_dst) out.hdr.flags |= SIPXDP_HDR_DSCP_DST;
  if (p.flows.stateful) out.hdr.flags |= SIPXDP_HDR_STATEFUL;
  for (int k = 0; k < SIPXDP_FLOW_KINDS; ++k) out.hdr.flow_timeout_s[k] = p.flows.timeout_s[k];
}

}  // namespace

namespace {

uint32_t rule_flags(const Rule& r) {
  bool no_addr = r.src.empty() && r.dst.empty();
  return (r.inspect_sip ? SIPXDP_RULE_INSPECT_SIP : 0u) | (no_addr ? SIPXDP_RULE_NO_ADDR : 0u) |
         (no_addr && r.sport.empty() ? SIPXDP_RULE_NO_SPORT_ADDR : 0u);
}

}  // namespace

Result<CompiledPolicy> compile_policy(const Policy& p, const Slots& slots) {
  if (slots.rules.size() != p.rules.size() || slots.patterns.size() != p.sip.patterns.size() ||
      slots.dscp.size() != p.dscp.size() || slots.rate_limits.size() != p.sip.rate_limits.size() ||
      slots.rate_limit_bans.size() != p.sip.rate_limits.size())
    return make_error("internal: counter slots do not match the policy");
  const std::vector<uint32_t>& rule_counter = slots.rules;
  CompiledPolicy out;
  out.events.flags = p.events.drops ? SIPXDP_EVENTS_DROPS : 0;
  out.events.snaplen = p.events.snaplen;
  out.events.cost_ns = NSEC_PER_SEC / p.events.rate;
  out.events.burst_ns = out.events.cost_ns * p.events.burst;
  Classes cls(std::max<size_t>(p.rules.size(), 1));
  out.port_class.assign(size_t(SIPXDP_PT_NUM) * SIPXDP_PORTS, 0);

  bool use_sport = false, use_src = false, use_dst = false;
  // The rules every class of a dimension holds: those with no constraint in it.
  auto any_sport = cls.empty(), any_dst = cls.empty(), any_addr = cls.empty();
  for (size_t i = 0; i < p.rules.size(); ++i) {
    const Rule& r = p.rules[i];
    use_sport |= !r.sport.empty();
    use_src |= !r.src.empty();
    use_dst |= !r.dst.empty();
    if (r.sport.empty()) Classes::set(any_sport, i);
    if (r.dst.empty()) Classes::set(any_dst, i);
    if (r.src.empty() && r.dst.empty()) Classes::set(any_addr, i);
  }
  std::unordered_map<uint32_t, uint32_t> wild_sport, wild_dst, wild_addr;

  std::vector<uint32_t> pclasses;
  for (int t = SIPXDP_PT_TCP; t <= SIPXDP_PT_OTHER; ++t) {
    auto seen = build_port_table(p, t, cls, out.port_class.data() + size_t(t) * SIPXDP_PORTS);
    if (!seen) return seen.error();
    pclasses = merged(pclasses, seen.value());
  }
  std::vector<uint32_t> ps = pclasses;
  if (use_sport) {
    auto sclasses =
        build_port_table(p, SIPXDP_PT_SPORT, cls, out.port_class.data() + size_t(SIPXDP_PT_SPORT) * SIPXDP_PORTS);
    if (!sclasses) return sclasses.error();
    auto r = combine(SIPXDP_COMB_PS, pclasses, sclasses.value(), any_sport, wild_sport, cls, out);
    if (!r) return r.error();
    ps = r.value();
  }
  if (use_src || use_dst) {
    std::vector<uint32_t> addr;
    for (int family : {4, 6}) {
      std::vector<uint32_t> s, d;
      if (use_src) {
        auto r = build_addr(p, family, SIPXDP_DIR_SRC, cls, out);
        if (!r) return r.error();
        s = r.value();
      }
      if (use_dst) {
        auto r = build_addr(p, family, SIPXDP_DIR_DST, cls, out);
        if (!r) return r.error();
        d = r.value();
      }
      if (use_src && use_dst) {
        auto r = combine(SIPXDP_COMB_AD, s, d, any_dst, wild_dst, cls, out);
        if (!r) return r.error();
        addr = merged(addr, r.value());
      } else {
        addr = merged(addr, use_src ? s : d);
      }
    }
    auto r = combine(SIPXDP_COMB_FINAL, ps, addr, any_addr, wild_addr, cls, out);
    if (!r) return r.error();
  }

  out.cls_rule.assign(cls.size(), sipxdp_rule{});
  out.cls_first.assign(cls.size(), -1);
  auto get = [](const std::unordered_map<uint32_t, uint32_t>& m, uint32_t c) {
    auto it = m.find(c);
    return it == m.end() ? 0u : it->second;
  };
  for (uint32_t c = 1; c < cls.size(); ++c) {
    int r = cls.first(c);
    if (r < 0) continue;
    const Rule& rule = p.rules[r];
    out.cls_first[c] = r;
    out.cls_rule[c] = sipxdp_rule{
        .action = rule.action == Action::allow ? uint32_t(SIPXDP_ACT_ALLOW) : uint32_t(SIPXDP_ACT_DROP),
        .counter = rule_counter[r],
        .flags = rule_flags(rule),
        .wild_sport = get(wild_sport, c),
        .wild_addr = get(wild_addr, c),
        .wild_dst = get(wild_dst, c),
    };
  }
  out.hdr.flags = SIPXDP_HDR_VALID | (use_sport ? SIPXDP_HDR_SPORT : 0) | (use_src ? SIPXDP_HDR_SRC : 0) |
                  (use_dst ? SIPXDP_HDR_DST : 0);
  out.hdr.default_action = p.default_action == Action::allow ? SIPXDP_ACT_ALLOW : SIPXDP_ACT_DROP;
  compile_sip(p, slots, out);
  compile_dscp(p, slots, out);
  if (out.lpm4.size() > SIPXDP_MAX_ENTRIES_PER_GEN || out.lpm6.size() > SIPXDP_MAX_ENTRIES_PER_GEN)
    return make_error("policy too large: more than " + std::to_string(SIPXDP_MAX_ENTRIES_PER_GEN) +
                      " distinct prefixes of one family");
  return out;
}

}  // namespace sipxdp
