// Bans: automatic ones (the kernel writes them), manual ones (ban add/del).
#include <map>
#include <optional>

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
  std::map<uint32_t, std::string> pattern_of;
  for (auto& pt : m.patterns) pattern_of[pt.counter] = pt.pattern;
  auto reason = [&](uint32_t r) -> std::string {
    if (r == SIPXDP_BAN_MANUAL) return "manual";
    auto it = pattern_of.find(r);
    return it != pattern_of.end() ? it->second : "pattern (since removed)";
  };
  std::vector<Ban> out;
  uint64_t now = monotonic_ns();
  // Expired entries are hidden. Automatic ones are left to the LRU (deleting
  // one here could delete a fresh ban the kernel just wrote); expired manual
  // ones are removed, under the instance lock, so the program can skip the
  // prefix lookup again once none are left.
  auto walk = [&](MapId m, auto key, int family, auto plen_of, bool tidy) {
    using Key = decltype(key);
    std::vector<Key> expired;
    for_each_key<Key>(I.fd(m), [&](const Key& k) {
      sipxdp_ban b{};
      if (bpf_map_lookup_elem(I.fd(m), &k, &b) != 0) return;
      if (seconds_left(b, now) == 0) {
        if (tidy) expired.push_back(k);
        return;
      }
      Ban x;
      x.prefix.family = family;
      x.prefix.plen = plen_of(k, x.prefix.addr.data());
      x.reason = reason(b.reason);
      x.hits = b.hits;
      x.seconds_left = seconds_left(b, now);
      out.push_back(x);
    });
    for (auto& e : expired) bpf_map_delete_elem(I.fd(m), &e);
    return expired.size();
  };
  auto exact = [](const auto& k, uint8_t* addr) {
    std::memcpy(addr, &k, sizeof(k));
    return uint8_t(sizeof(k) * 8);
  };
  auto prefix = [](const auto& k, uint8_t* addr) {
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

Status Datapath::ban_del(const Cidr& c) {
  Impl& I = *impl_;
  auto lock = I.lock();
  if (!lock) return lock.error();
  bool found = false;
  if (c.family == 4) {
    sipxdp_ban_lpm4 k{c.plen, {}};
    std::memcpy(k.addr, c.addr.data(), 4);
    found |= bpf_map_delete_elem(I.fd(M_ban_prefixes4), &k) == 0;
  } else {
    sipxdp_ban_lpm6 k{c.plen, {}};
    std::memcpy(k.addr, c.addr.data(), 16);
    found |= bpf_map_delete_elem(I.fd(M_ban_prefixes6), &k) == 0;
  }
  if (c.family == 4 && c.plen == 32) {
    uint32_t k;
    std::memcpy(&k, c.addr.data(), 4);
    found |= bpf_map_delete_elem(I.fd(M_bans4), &k) == 0;
  } else if (c.family == 6 && c.plen == 128) {
    sipxdp_ban6_key k;
    std::memcpy(k.addr, c.addr.data(), 16);
    found |= bpf_map_delete_elem(I.fd(M_bans6), &k) == 0;
  }
  if (!found) return make_error(c.str() + " is not banned");
  return recount_manual_bans(I);
}

}  // namespace sipxdp
