// Bans: automatic ones (the kernel writes them), manual ones (ban add/del).
#include <algorithm>
#include <ctime>
#include <functional>
#include <map>
#include <optional>

#include "sipxdp/reference.h"

#include "datapath_impl.h"

namespace sipxdp {

using namespace detail;

namespace {

int64_t seconds_left(const sipxdp_ban& b, uint64_t now) {
  if (!b.expires_ns) return -1;
  return b.expires_ns > now ? int64_t((b.expires_ns - now + NSEC_PER_SEC - 1) / NSEC_PER_SEC) : 0;
}

}  // namespace

namespace {

// Counts manual bans so the program can skip their lookup when there are none.
Status recount_manual_bans(const Datapath::Impl& I) {
  uint32_t n = 0;
  for_each_key<sipxdp_ban_lpm4>(I.fd(M_ban_prefixes4), [&](const sipxdp_ban_lpm4&) { ++n; });
  for_each_key<sipxdp_ban_lpm6>(I.fd(M_ban_prefixes6), [&](const sipxdp_ban_lpm6&) { ++n; });
  return I.update_state([&](sipxdp_state& s) { s.manual_bans = n; });
}

}  // namespace

Result<std::vector<Datapath::Ban>> Datapath::bans() const {
  auto m = manifest();
  return bans(m ? m.value() : Manifest{});
}

Result<std::vector<Datapath::Ban>> Datapath::bans(const Manifest& m) const {
  const Impl& I = *impl_;
  std::map<uint32_t, std::pair<std::string, std::string>> reason_of;  // slot -> kind, name
  for (auto& pt : m.patterns) reason_of[pt.counter] = {"pattern", pt.pattern};
  for (auto& r : m.rate_limits) reason_of[r.counter] = {"ratelimit", r.name};
  auto reason = [&](uint32_t r, Ban& x) {
    if (r == SIPXDP_BAN_MANUAL) {
      x.kind = "manual", x.reason = "manual";
    } else if (r == SIPXDP_CTR_AUTH_BAN) {
      x.kind = "auth", x.reason = "auth-failures";
    } else if (auto it = reason_of.find(r); it != reason_of.end()) {
      x.kind = it->second.first, x.reason = it->second.second;
    } else {
      x.kind = "pattern", x.reason = "pattern or limit (since removed)";
    }
  };
  std::vector<Ban> out;
  const uint64_t now = monotonic_ns();
  const auto wall = static_cast<uint64_t>(time(nullptr));
  // Expired entries are hidden. Automatic ones are left to the LRU (deleting
  // one here could delete a fresh ban the kernel just wrote); expired manual
  // ones are removed, under the instance lock, so the program can skip the
  // prefix lookup again once none are left.
  auto walk = [&](MapId id, auto key, int family, auto plen_of, bool tidy) {
    using Key = decltype(key);
    std::vector<Key> expired;
    for_each_key<Key>(I.fd(id), [&](const Key& k) {
      sipxdp_ban b{};
      if (bpf_map_lookup_elem(I.fd(id), &k, &b) != 0) return;
      if (seconds_left(b, now) == 0) {
        if (tidy) expired.push_back(k);
        return;
      }
      Ban x;
      x.prefix.family = family;
      x.prefix.plen = plen_of(k, b, x.prefix.addr.data());
      x.slot = b.reason;
      reason(b.reason, x);
      x.hits = b.hits;
      x.seconds_left = seconds_left(b, now);
      x.since_unix = b.since_ns && b.since_ns <= now ? wall - (now - b.since_ns) / NSEC_PER_SEC : 0;
      out.push_back(x);
    });
    for (auto& e : expired) bpf_map_delete_elem(I.fd(id), &e);
    return expired.size();
  };
  // Automatic bans: an IPv4 address, or an IPv6 address cut to the ban's prefix.
  auto exact = [](const auto& k, const sipxdp_ban& b, uint8_t* addr) {
    std::memcpy(addr, &k, sizeof(k));
    return uint8_t(sizeof(k) == 4 ? 32 : (b.plen >= 1 && b.plen <= 128 ? b.plen : 128));
  };
  auto prefix = [](const auto& k, const sipxdp_ban&, uint8_t* addr) {
    std::memcpy(addr, k.addr, sizeof(k.addr));
    return uint8_t(k.prefixlen);
  };
  auto lock = I.lock();  // listing goes on without it: only the tidying of expired bans needs it
  walk(M_bans4, uint32_t{}, 4, exact, false);
  walk(M_bans6, sipxdp_ban6_key{}, 6, exact, false);
  size_t removed = walk(M_ban_prefixes4, sipxdp_ban_lpm4{}, 4, prefix, lock.ok());
  removed += walk(M_ban_prefixes6, sipxdp_ban_lpm6{}, 6, prefix, lock.ok());
  if (removed) SIPXDP_TRY(recount_manual_bans(I));
  return out;
}

Status Datapath::ban_add(const Cidr& c, uint32_t seconds) {
  Impl& I = *impl_;
  auto lock = I.lock();
  if (!lock) return lock.error();
  uint64_t now = monotonic_ns();
  sipxdp_ban b{};
  b.expires_ns = seconds ? now + uint64_t(seconds) * NSEC_PER_SEC : 0;
  b.since_ns = now;
  b.reason = SIPXDP_BAN_MANUAL;
  int err;
  if (c.family == 4) {
    sipxdp_ban_lpm4 k{c.plen, {}};
    std::memcpy(k.addr, c.addr.data(), 4);
    err = bpf_map_update_elem(I.fd(M_ban_prefixes4), &k, &b, BPF_ANY);
  } else {
    sipxdp_ban_lpm6 k{c.plen, {}};
    std::memcpy(k.addr, c.addr.data(), 16);
    err = bpf_map_update_elem(I.fd(M_ban_prefixes6), &k, &b, BPF_ANY);
  }
  if (err) return sys_error("cannot ban " + c.str(), errno);
  return recount_manual_bans(I);
}

namespace {

// Whether one prefix holds the other (either way) or they are the same.
bool overlaps(const Cidr& a, const Cidr& b) {
  if (a.family != b.family) return false;
  return a.plen <= b.plen ? prefix_contains(a, b.family, b.addr) : prefix_contains(b, a.family, a.addr);
}

}  // namespace

Result<size_t> Datapath::ban_del(const Cidr& c) {
  return ban_del_where(
      [&](const Ban& b) { return overlaps(c, b.prefix) && (b.kind != "manual" || b.prefix.plen >= c.plen); });
}

Result<size_t> Datapath::ban_del_all(const std::string& kind) {
  return ban_del_where([&](const Ban& b) { return kind.empty() || b.kind == kind; });
}

Result<size_t> Datapath::ban_del_where(const std::function<bool(const Ban&)>& pick) {
  auto listed = bans();
  if (!listed) return listed.error();
  Impl& I = *impl_;
  auto lock = I.lock();
  if (!lock) return lock.error();
  size_t n = 0;
  for (auto& b : listed.value()) {
    if (!pick(b)) continue;
    const Cidr& c = b.prefix;
    int err;
    if (b.kind == "manual" && c.family == 4) {
      sipxdp_ban_lpm4 k{c.plen, {}};
      std::memcpy(k.addr, c.addr.data(), 4);
      err = bpf_map_delete_elem(I.fd(M_ban_prefixes4), &k);
    } else if (b.kind == "manual") {
      sipxdp_ban_lpm6 k{c.plen, {}};
      std::memcpy(k.addr, c.addr.data(), 16);
      err = bpf_map_delete_elem(I.fd(M_ban_prefixes6), &k);
    } else if (c.family == 4) {
      uint32_t k;
      std::memcpy(&k, c.addr.data(), 4);
      err = bpf_map_delete_elem(I.fd(M_bans4), &k);
    } else {
      sipxdp_ban6_key k;
      std::memcpy(k.addr, c.addr.data(), 16);
      err = bpf_map_delete_elem(I.fd(M_bans6), &k);
    }
    if (err == 0) ++n;
  }
  SIPXDP_TRY(recount_manual_bans(I));
  return n;
}

Result<std::vector<Datapath::TrustedPhone>> Datapath::learned_trust() const {
  const Impl& I = *impl_;
  std::vector<TrustedPhone> out;
  const uint64_t now = monotonic_ns();
  const auto wall = static_cast<uint64_t>(time(nullptr));
  // The live policy's cap applies at once (as in the kernel, trust.h).
  auto st = I.read_state();
  if (!st) return st.error();
  uint32_t gen = st->active_gen & 1;
  sipxdp_sip_cfg cfg{};
  if (bpf_map_lookup_elem(I.fd(M_sip_cfg), &gen, &cfg) != 0) return sys_error("cannot read map sip_cfg", errno);
  if (!(cfg.flags & SIPXDP_SIP_TRUST)) return out;  // off: what was learned no longer counts
  for_each_key<sipxdp_trust_key>(I.fd(M_trust_learned), [&](const sipxdp_trust_key& k) {
    sipxdp_trust t{};
    if (bpf_map_lookup_elem(I.fd(M_trust_learned), &k, &t) != 0) return;
    t.expires_ns = std::min(t.expires_ns, t.refreshed_ns + cfg.trust_max_ns);
    if (t.expires_ns <= now) return;
    TrustedPhone x;
    x.addr.family = k.family;
    x.addr.plen = k.family == 4 ? 32 : 128;
    std::memcpy(x.addr.addr.data(), k.addr, k.family == 4 ? 4 : 16);
    x.proto = k.proto == IPPROTO_TCP ? "tcp" : k.proto == IPPROTO_UDP ? "udp" : std::to_string(k.proto);
    x.port = ntohs(k.port);
    x.seconds_left = int64_t((t.expires_ns - now + NSEC_PER_SEC - 1) / NSEC_PER_SEC);
    x.since_unix = t.since_ns <= now ? wall - (now - t.since_ns) / NSEC_PER_SEC : wall;
    x.hits = t.hits;
    out.push_back(x);
  });
  return out;
}

}  // namespace sipxdp
