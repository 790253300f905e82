// libFuzzer target: policy text -> parse -> compile, checked against the
// first-match reference model. Whatever the input, parsing must not crash,
// hang or throw; an error must be one line; a policy that parses and compiles
// must give, for every packet tried, the rule the plain first-match
// evaluation gives; and its manifest must survive being stored and read back.
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>

#include "compiled.h"
#include "model.h"
#include "sipxdp/compiler.h"
#include "sipxdp/guard.h"
#include "sipxdp/manifest.h"
#include "sipxdp/policy.h"

using namespace sipxdp;

namespace {

// Packets aimed at what the policy names: its ports, types and prefixes (a
// random packet rarely hits a /32), plus random ones.
PacketKey aimed(const Policy& p, std::mt19937& rng) {
  PacketKey k = test::random_packet(rng);
  if (p.rules.empty() || rng() % 4 == 0) return k;
  const Rule& r = p.rules[rng() % p.rules.size()];
  auto pick_port = [&](const std::vector<PortRange>& rs, uint16_t dflt) -> uint16_t {
    if (rs.empty()) return dflt;
    const PortRange& x = rs[rng() % rs.size()];
    switch (rng() % 3) {
      case 0: return x.lo;
      case 1: return x.hi;
      default: return static_cast<uint16_t>(x.lo + rng() % (uint32_t(x.hi) - x.lo + 1));
    }
  };
  auto pick_addr = [&](const std::vector<Cidr>& cs, int family, std::array<uint8_t, 16>& a) {
    for (auto& c : cs) {
      if (c.family != family || rng() % 2) continue;
      a = c.addr;
      if (rng() % 2 && c.plen < (family == 4 ? 32 : 128)) a[(family == 4 ? 3 : 15)] ^= 1;
      return;
    }
  };
  if (!r.protos.empty()) {
    switch (r.protos[rng() % r.protos.size()]) {
      case ProtoKind::tcp: k.proto = 6; break;
      case ProtoKind::udp: k.proto = 17; break;
      case ProtoKind::icmp: k.proto = 1, k.family = 4; break;
      case ProtoKind::icmpv6: k.proto = 58, k.family = 6; break;
      default: break;
    }
  } else if (!r.other_protos.empty()) {
    k.proto = r.other_protos[rng() % r.other_protos.size()];
  }
  if (k.proto == 6 || k.proto == 17) {
    k.dport = pick_port(r.dport, k.dport);
    k.sport = pick_port(r.sport, k.sport);
  } else if (k.proto == 1 || k.proto == 58) {
    k.dport = pick_port(r.icmp_type, k.dport) & 0xff;
  }
  pick_addr(r.src, k.family, k.src);
  pick_addr(r.dst, k.family, k.dst);
  return k;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto p = parse_policy(text, "fuzz.json");
  if (!p) {
    if (p.error().what.find('\n') != std::string::npos) std::abort();  // errors are one line
    return 0;
  }
  auto c = compile_policy(p.value(), fresh_counters(p.value()));
  if (!c) return 0;
  std::mt19937 rng(static_cast<uint32_t>(std::hash<std::string>{}(text)));
  for (int i = 0; i < 256; ++i) {
    PacketKey k = aimed(p.value(), rng);
    if (reference_match(p.value(), k) != test::compiled_match(c.value(), k)) std::abort();
  }
  if (!check_manifest_fits(p.value(), text)) return 0;
  Manifest m = describe_policy(p.value(), fresh_counters(p.value()), text, "fuzz.json", {}, {});
  auto enc = encode_manifest(m, manifest_capacity());
  if (!enc) std::abort();
  auto dec = decode_manifest(enc.value());
  if (!dec || dec->rules.size() != m.rules.size() || dec->settings != m.settings) std::abort();
  if (!diff_policy(dec.value(), p.value()).empty()) std::abort();  // a policy never differs from itself
  return 0;
}
