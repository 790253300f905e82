// Policy generations: the slot planner, and apply (fill the spare
// generation, flip one word, wait for readers of the old one).
#include <atomic>
#include <map>
#include <set>

#include "datapath_impl.h"
#include "sipxdp/generation.h"

namespace sipxdp {

using namespace detail;

Result<SlotPlan> plan_slots(const Manifest& live, const Policy& next) {
  SlotPlan plan;
  std::set<uint32_t> used;
  for (auto& r : live.rules) used.insert(r.counter);
  for (auto& pt : live.patterns) used.insert(pt.counter);
  for (auto& d : live.dscp) used.insert(d.counter);
  for (auto& r : live.rate_limits) used.insert({r.counter, r.ban_counter});
  uint32_t free_slot = SIPXDP_CTR_RULE_BASE;
  // The live slot of each name, or the lowest free one (counting from zero).
  auto assign = [&](const std::vector<std::string>& names, const std::map<std::string, uint32_t>& live_slot,
                    std::vector<uint32_t>& out, size_t* kept, size_t* added) -> Status {
    for (auto& n : names) {
      if (auto it = live_slot.find(n); it != live_slot.end()) {
        out.push_back(it->second);
        if (kept) ++*kept;
        continue;
      }
      while (used.count(free_slot)) ++free_slot;
      if (free_slot >= SIPXDP_CTR_MAX) return make_error("out of counter slots");
      out.push_back(free_slot);
      used.insert(free_slot);
      plan.fresh.push_back(free_slot);
      if (added) ++*added;
    }
    return ok_status();
  };
  std::map<std::string, uint32_t> rule_slot, pattern_slot, dscp_slot, rl_slot, rl_ban_slot;
  for (auto& r : live.rate_limits) rl_slot[r.name] = r.counter, rl_ban_slot[r.name] = r.ban_counter;
  for (auto& r : live.rules) rule_slot[r.name] = r.counter;
  for (auto& pt : live.patterns) pattern_slot[pt.pattern] = pt.counter;
  for (auto& d : live.dscp) dscp_slot[d.name] = d.counter;
  std::vector<std::string> rules, dscp;
  for (auto& r : next.rules) rules.push_back(r.name);
  for (auto& d : next.dscp) dscp.push_back(d.name);
  SIPXDP_TRY(assign(rules, rule_slot, plan.slots.rules, &plan.kept, &plan.added));
  SIPXDP_TRY(assign(next.sip.patterns, pattern_slot, plan.slots.patterns, nullptr, nullptr));
  SIPXDP_TRY(assign(dscp, dscp_slot, plan.slots.dscp, nullptr, nullptr));
  std::vector<std::string> limits;
  for (auto& r : next.sip.rate_limits) limits.push_back(r.name);
  SIPXDP_TRY(assign(limits, rl_slot, plan.slots.rate_limits, nullptr, nullptr));
  SIPXDP_TRY(assign(limits, rl_ban_slot, plan.slots.rate_limit_bans, nullptr, nullptr));
  std::set<std::string> names(rules.begin(), rules.end());
  for (auto& r : live.rules)
    if (!names.count(r.name)) plan.removed.push_back(r);
  return plan;
}

nlohmann::json to_json(const ApplySummary& s) {
  nlohmann::json removed = nlohmann::json::array();
  for (auto& [name, v] : s.removed_counts)
    removed.push_back({{"name", name}, {"packets", v.packets}, {"bytes", v.bytes}});
  return {{"generation", s.generation},
          {"rules", s.rules},
          {"classes", s.classes},
          {"dscp_rules", s.dscp},
          {"kept", s.kept},
          {"added", s.added},
          {"removed", s.removed},
          {"removed_counts", removed},
          {"changes", to_json(s.diff)}};
}

namespace {

// Writes compiled policy `c` into generation `gen` (not live: no packet sees
// it until the flip), and zeroes the counter slots in `fresh`.
Status write_generation(const Datapath::Impl& I, uint32_t gen, const CompiledPolicy& c,
                        const std::vector<uint32_t>& fresh) {
  SIPXDP_TRY(I.clear_gen<sipxdp_lpm4_key>(M_lpm4, static_cast<uint8_t>(gen)));
  SIPXDP_TRY(I.clear_gen<sipxdp_lpm6_key>(M_lpm6, static_cast<uint8_t>(gen)));
  SIPXDP_TRY(I.clear_gen<sipxdp_comb_key>(M_comb, static_cast<uint8_t>(gen)));
  {
    const size_t stride = array_stride(sizeof(uint32_t));
    auto m = Mapping::map(I.fd(M_port_class), stride * SIPXDP_PORT_CLASS_ENTRIES, "port_class");
    if (!m) return m.error();
    for (uint32_t t = 0; t < SIPXDP_PT_NUM; ++t) {
      uint8_t* base = m->data() + stride * sipxdp_port_index(gen, t, 0);
      const uint32_t* src = c.port_class.data() + size_t(t) * SIPXDP_PORTS;
      for (uint32_t port = 0; port < SIPXDP_PORTS; ++port)
        std::memcpy(base + stride * port, &src[port], sizeof(uint32_t));
    }
  }
  for (auto& e : c.lpm4) {
    sipxdp_lpm4_key k{.prefixlen = uint32_t(SIPXDP_LPM_HDR_BITS + e.plen), .gen = uint8_t(gen), .dir = e.dir};
    std::memcpy(k.addr, e.addr.data(), 4);
    if (bpf_map_update_elem(I.fd(M_lpm4), &k, &e.cls, BPF_ANY) != 0) return sys_error("cannot write map lpm4", errno);
  }
  for (auto& e : c.lpm6) {
    sipxdp_lpm6_key k{.prefixlen = uint32_t(SIPXDP_LPM_HDR_BITS + e.plen), .gen = uint8_t(gen), .dir = e.dir};
    std::memcpy(k.addr, e.addr.data(), 16);
    if (bpf_map_update_elem(I.fd(M_lpm6), &k, &e.cls, BPF_ANY) != 0) return sys_error("cannot write map lpm6", errno);
  }
  for (auto& e : c.comb) {
    sipxdp_comb_key k{.gen = static_cast<uint8_t>(gen), .stage = e.stage, .a = e.a, .b = e.b};
    if (bpf_map_update_elem(I.fd(M_comb), &k, &e.cls, BPF_ANY) != 0) return sys_error("cannot write map comb", errno);
  }
  {
    const size_t stride = array_stride(sizeof(sipxdp_rule));
    auto m = Mapping::map(I.fd(M_cls_rule), stride * SIPXDP_GENS * SIPXDP_MAX_CLASSES, "cls_rule");
    if (!m) return m.error();
    uint8_t* base = m->data() + stride * size_t(gen) * SIPXDP_MAX_CLASSES;
    std::memset(base, 0, stride * SIPXDP_MAX_CLASSES);
    for (size_t i = 0; i < c.cls_rule.size(); ++i) std::memcpy(base + stride * i, &c.cls_rule[i], sizeof(sipxdp_rule));
  }
  {
    std::vector<sipxdp_counter> zeros(ncpus());
    for (uint32_t slot : fresh)
      if (bpf_map_update_elem(I.fd(M_counters), &slot, zeros.data(), BPF_ANY) != 0)
        return sys_error("cannot reset map counters", errno);
  }
  if (bpf_map_update_elem(I.fd(M_sip_cfg), &gen, &c.sip_cfg, BPF_ANY) != 0)
    return sys_error("cannot write map sip_cfg", errno);
  for (uint32_t i = 0; i < SIPXDP_MAX_PATTERNS; ++i) {
    uint32_t key = gen * SIPXDP_MAX_PATTERNS + i;
    sipxdp_pattern pat = i < c.patterns.size() ? c.patterns[i] : sipxdp_pattern{};
    if (bpf_map_update_elem(I.fd(M_sip_patterns), &key, &pat, BPF_ANY) != 0)
      return sys_error("cannot write map sip_patterns", errno);
  }
  if (bpf_map_update_elem(I.fd(M_sip_tables), &gen, c.tables.get(), BPF_ANY) != 0)
    return sys_error("cannot write map sip_tables", errno);
  for (uint32_t i = 0; i < SIPXDP_MAX_RATE_LIMITS; ++i) {
    uint32_t key = gen * SIPXDP_MAX_RATE_LIMITS + i;
    sipxdp_rate_limit r = i < c.rate_limits.size() ? c.rate_limits[i] : sipxdp_rate_limit{};
    if (bpf_map_update_elem(I.fd(M_rate_limits), &key, &r, BPF_ANY) != 0)
      return sys_error("cannot write map rate_limits", errno);
  }
  for (uint32_t i = 0; i < SIPXDP_MAX_DSCP_RULES; ++i) {
    uint32_t key = gen * SIPXDP_MAX_DSCP_RULES + i;
    sipxdp_dscp_rule r = i < c.dscp.size() ? c.dscp[i] : sipxdp_dscp_rule{};
    if (bpf_map_update_elem(I.fd(M_dscp_rules), &key, &r, BPF_ANY) != 0)
      return sys_error("cannot write map dscp_rules", errno);
  }
  return ok_status();
}

}  // namespace

Result<ApplySummary> Datapath::apply(const Policy& p, const std::string& source, const std::string& path) {
  Impl& I = *impl_;
  auto lock = I.lock();
  if (!lock) return lock.error();
  // The spare generation may still be read by packets if an earlier apply
  // died between its flip and its wait: then wait here before reusing it.
  auto st = I.read_state();
  if (!st) return st.error();
  if (!st->settled) SIPXDP_TRY(I.wait_for_readers());
  uint32_t live = st->active_gen & 1, spare = live ^ 1;

  // The live policy, if any: counters follow its names.
  sipxdp_policy_hdr hdr{};
  if (bpf_map_lookup_elem(I.fd(M_policy_hdr), &live, &hdr) != 0) return sys_error("cannot read map policy_hdr", errno);
  const bool had_policy = hdr.flags & SIPXDP_HDR_VALID;
  auto old = manifest();
  if (!old) return old.error();
  if (!had_policy) old->rules.clear(), old->patterns.clear(), old->dscp.clear(), old->rate_limits.clear();
  auto plan = plan_slots(old.value(), p);
  if (!plan) return plan.error();
  SIPXDP_TRY(check_load_time_settings(p, &old.value()));
  auto compiled = compile_policy(p, plan->slots);
  if (!compiled) return compiled.error();

  ApplySummary sum;
  sum.kept = plan->kept;
  sum.added = plan->added;
  sum.removed = plan->removed.size();
  for (auto& r : plan->removed) {
    auto v = counter(r.counter);
    sum.removed_counts.push_back({r.name, v ? v.value() : CounterValue{}});
  }

  // Fill the spare generation. Nothing here is visible to packets until the flip.
  SIPXDP_TRY(write_generation(I, spare, compiled.value(), plan->fresh));
  Manifest next = describe_policy(p, plan->slots, source, path, {old->iface, old->netns, old->mode}, old.value());
  auto text = encode_manifest(next, manifest_capacity());
  if (!text) return text.error();
  SIPXDP_TRY(I.write_manifest_text(spare, text.value()));
  if (bpf_map_update_elem(I.fd(M_policy_hdr), &spare, &compiled->hdr, BPF_ANY) != 0)
    return sys_error("cannot write map policy_hdr", errno);

  // Event settings are not per generation: a packet judged by either policy
  // makes its event by the newest settings (written first: a failure here
  // leaves the old policy live).
  const uint32_t zero = 0;
  if (bpf_map_update_elem(I.fd(M_event_cfg), &zero, &compiled->events, BPF_ANY) != 0)
    return sys_error("cannot write map event_cfg", errno);

  // The flip: one write, after which every new packet sees only the new
  // policy (the fence orders the mmap-ed table stores before it). The state
  // is read again inside: ban add/del may have changed it since.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  SIPXDP_TRY(I.update_state([&](sipxdp_state& s) {
    s.active_gen = spare;
    s.settled = 0;
    s.applies++;
  }));
  SIPXDP_TRY(I.wait_for_readers());
  SIPXDP_TRY(I.update_state([](sipxdp_state& s) { s.settled = 1; }));

  sum.generation = spare;
  if (had_policy) sum.diff = diff_policy(old.value(), p);
  sum.rules = p.rules.size();
  sum.dscp = p.dscp.size();
  sum.classes = compiled->classes();
  return sum;
}

}  // namespace sipxdp
