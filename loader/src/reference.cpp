#include "sipxdp/reference.h"

#include <algorithm>

#include "sipxdp/abi.h"

namespace sipxdp {

namespace {

bool any_proto(const Rule& r) {
  return r.protos.empty() && r.other_protos.empty();
}

bool has_kind(const Rule& r, ProtoKind k) {
  return std::find(r.protos.begin(), r.protos.end(), k) != r.protos.end();
}

}  // namespace

bool prefix_contains(const Cidr& c, int family, const std::array<uint8_t, 16>& a) {
  if (c.family != family) return false;
  for (int i = 0; i < (family == 4 ? 4 : 16); ++i) {
    int keep = std::clamp(c.plen - i * 8, 0, 8);
    uint8_t mask = static_cast<uint8_t>(0xff00 >> keep);
    if ((a[i] & mask) != c.addr[i]) return false;
  }
  return true;
}

int reference_match(const Policy& p, const PacketKey& k) {
  for (size_t i = 0; i < p.rules.size(); ++i) {
    const Rule& r = p.rules[i];
    bool proto_ok;
    uint16_t value = k.dport;
    const std::vector<PortRange>* ranges = nullptr;
    if (any_proto(r)) {
      proto_ok = true;
    } else if (k.proto == IPPROTO_TCP && has_kind(r, ProtoKind::tcp)) {
      proto_ok = true, ranges = &r.dport;
    } else if (k.proto == IPPROTO_UDP && has_kind(r, ProtoKind::udp)) {
      proto_ok = true, ranges = &r.dport;
    } else if (k.proto == IPPROTO_ICMP && k.family == 4 && has_kind(r, ProtoKind::icmp)) {
      proto_ok = true, ranges = &r.icmp_type;
    } else if (k.proto == IPPROTO_ICMPV6 && k.family == 6 && has_kind(r, ProtoKind::icmpv6)) {
      proto_ok = true, ranges = &r.icmp_type;
    } else {
      // ICMP types are a dimension of their own only for ICMP over IPv4 and ICMPv6 over IPv6.
      bool special = k.proto == IPPROTO_TCP || k.proto == IPPROTO_UDP || (k.proto == IPPROTO_ICMP && k.family == 4) ||
                     (k.proto == IPPROTO_ICMPV6 && k.family == 6);
      proto_ok = !special && std::find(r.other_protos.begin(), r.other_protos.end(), k.proto) != r.other_protos.end();
    }
    if (!proto_ok) continue;
    auto in = [](const std::vector<PortRange>& rs, uint16_t v) {
      return rs.empty() || std::any_of(rs.begin(), rs.end(), [&](auto& x) { return v >= x.lo && v <= x.hi; });
    };
    if (ranges && !in(*ranges, value)) continue;
    bool l4ports = k.proto == IPPROTO_TCP || k.proto == IPPROTO_UDP;
    if (!r.sport.empty() && !(l4ports && in(r.sport, k.sport))) continue;
    auto addr_ok = [&](const std::vector<Cidr>& cs, const std::array<uint8_t, 16>& a) {
      return cs.empty() || std::any_of(cs.begin(), cs.end(), [&](auto& c) { return prefix_contains(c, k.family, a); });
    };
    if (!addr_ok(r.src, k.src) || !addr_ok(r.dst, k.dst)) continue;
    return static_cast<int>(i);
  }
  return -1;
}

}  // namespace sipxdp
