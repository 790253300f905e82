// The exporter's metrics: one family per thing measured, labelled by
// instance (iface, netns) and by what the thing is (rule, reason, class).
#include "sipxdp/metrics.h"

#include <prometheus/text_serializer.h>

#include <map>
#include <sstream>

#include "sipxdp/datapath.h"
#include "sipxdp/version.h"

namespace sipxdp {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<ClientMetric::Label>;

class Families {
 public:
  // Declares a family; families print in the order declared.
  void declare(const std::string& name, MetricType type, const std::string& help) {
    index_[name] = fams_.size();
    fams_.push_back({name, help, type, {}});
  }
  void add(const std::string& name, Labels labels, double value) {
    MetricFamily& f = fams_.at(index_.at(name));
    ClientMetric m;
    m.label = std::move(labels);
    if (f.type == MetricType::Counter)
      m.counter.value = value;
    else
      m.gauge.value = value;
    f.metric.push_back(std::move(m));
  }
  std::vector<MetricFamily> take() {
    std::vector<MetricFamily> out;
    for (auto& f : fams_)
      if (!f.metric.empty()) out.push_back(std::move(f));
    return out;
  }

 private:
  std::vector<MetricFamily> fams_;
  std::map<std::string, size_t> index_;
};

Labels with(Labels base, std::initializer_list<ClientMetric::Label> more) {
  base.insert(base.end(), more);
  return base;
}

void declare_all(Families& F) {
  using T = MetricType;
  F.declare("sipxdp_build_info", T::Gauge, "sipxdp version and git commit of the exporter");
  F.declare("sipxdp_instance_filtering", T::Gauge,
            "1 when the instance is attached and filtering; 0 when defunct, orphaned or incomplete (state says which)");
  F.declare("sipxdp_instance_readable", T::Gauge, "1 when the exporter could read the instance's maps");
  F.declare("sipxdp_policy_info", T::Gauge, "the live policy: its sha256 and file");
  F.declare("sipxdp_policy_applies_total", T::Counter, "policies applied since the attach (the attach's included)");
  F.declare("sipxdp_policy_applied_timestamp_seconds", T::Gauge, "when the live policy was applied (Unix time)");
  F.declare("sipxdp_rule_packets_total", T::Counter, "packets judged by each rule");
  F.declare("sipxdp_rule_bytes_total", T::Counter, "bytes of the packets judged by each rule");
  F.declare("sipxdp_builtin_packets_total", T::Counter,
            "packets judged by a built-in path (default, banned, martian, malformed, established...)");
  F.declare("sipxdp_builtin_bytes_total", T::Counter, "bytes of the packets judged by a built-in path");
  F.declare("sipxdp_drops_total", T::Counter,
            "packets dropped, by built-in reason (default, banned, martian, malformed, fragment) or scanner pattern "
            "(scanner:PATTERN); drops by rules are in sipxdp_rule_packets_total{action=\"drop\"}");
  F.declare("sipxdp_scanner_hits_total", T::Counter, "packets dropped because they hold a scanner pattern");
  F.declare("sipxdp_dscp_marked_packets_total", T::Counter, "outbound packets marked by each DSCP rule");
  F.declare("sipxdp_dscp_marked_bytes_total", T::Counter, "bytes of the outbound packets marked by each DSCP rule");
  F.declare("sipxdp_ratelimit_dropped_total", T::Counter, "SIP requests dropped by each rate limit");
  F.declare("sipxdp_ratelimit_bans_total", T::Counter, "sources banned by each rate limit");
  F.declare("sipxdp_trusted_phones", T::Gauge, "phone flows with live learned trust (a 2xx to their REGISTER)");
  F.declare("sipxdp_bans", T::Gauge,
            "sources banned now, by reason (scanner pattern, rate limit, auth failures, or manual)");
  F.declare("sipxdp_flow_table_entries", T::Gauge, "outbound flows recorded (stateful replies), expired ones included");
  F.declare("sipxdp_flow_table_live_entries", T::Gauge, "outbound flows within their timeout");
  F.declare("sipxdp_flow_table_capacity", T::Gauge, "flows the table holds");
  F.declare("sipxdp_events_total", T::Counter, "drop events made, by reason");
  F.declare("sipxdp_events_suppressed_total", T::Counter,
            "drops that made no event because their reason was over events.rate/burst");
  F.declare("sipxdp_events_lost_total", T::Counter, "event copies that a reader's full ring buffer refused");
}

void instance_metrics(Families& F, const Instance& in) {
  Labels base = {{"iface", in.ifname}, {"netns", in.netns}};
  F.add("sipxdp_instance_filtering", with(base, {{"state", instance_state_name(in.state)}}),
        in.state == Instance::State::ok ? 1 : 0);
  auto dp = Datapath::open_pinned(in.dir);
  auto m = dp ? dp->manifest() : Result<Manifest>(dp.error());
  auto rows = dp && m ? dp->stats(m.value()) : Result<std::vector<StatRow>>(make_error("unread"));
  if (!dp || !m || !rows) {
    F.add("sipxdp_instance_readable", base, 0);
    return;
  }
  F.add("sipxdp_instance_readable", base, 1);
  F.add("sipxdp_policy_info", with(base, {{"sha256", m->policy_sha256}, {"policy", m->policy_path}}), 1);
  if (auto n = dp->applies()) F.add("sipxdp_policy_applies_total", base, double(n.value()));
  F.add("sipxdp_policy_applied_timestamp_seconds", base, double(m->applied_at));
  for (auto& r : rows.value()) {
    if (r.dscp) {
      std::string name = r.name.substr(5);  // "dscp:"
      Labels l = with(base, {{"rule", name}, {"class", r.action}});
      F.add("sipxdp_dscp_marked_packets_total", l, double(r.value.packets));
      F.add("sipxdp_dscp_marked_bytes_total", l, double(r.value.bytes));
    } else if (r.rate_limit) {
      const bool ban = r.action == "ban";
      std::string name = r.name.substr(ban ? 15 : 10);  // "ratelimit-bans:" or "ratelimit:"
      F.add(ban ? "sipxdp_ratelimit_bans_total" : "sipxdp_ratelimit_dropped_total", with(base, {{"limit", name}}),
            double(r.value.packets));
      if (!ban) F.add("sipxdp_drops_total", with(base, {{"reason", r.name}}), double(r.value.packets));
    } else if (r.pattern) {
      F.add("sipxdp_scanner_hits_total", with(base, {{"pattern", r.name.substr(8)}}), double(r.value.packets));
      F.add("sipxdp_drops_total", with(base, {{"reason", r.name}}), double(r.value.packets));
    } else if (r.builtin) {
      Labels l = with(base, {{"path", r.name}, {"action", r.action}});
      F.add("sipxdp_builtin_packets_total", l, double(r.value.packets));
      F.add("sipxdp_builtin_bytes_total", l, double(r.value.bytes));
      if (r.action == "drop") F.add("sipxdp_drops_total", with(base, {{"reason", r.name}}), double(r.value.packets));
    } else {
      Labels l = with(base, {{"rule", r.name}, {"action", r.action}});
      F.add("sipxdp_rule_packets_total", l, double(r.value.packets));
      F.add("sipxdp_rule_bytes_total", l, double(r.value.bytes));
    }
  }
  // Events, by the reasons a drop can have.
  SlotNames names(m.value());
  std::vector<std::pair<uint32_t, std::string>> reasons;
  for (auto& r : m->rules)
    if (r.action == "drop") reasons.push_back({r.counter, r.name});
  for (auto& p : m->patterns) reasons.push_back({p.counter, names.name(p.counter)});
  for (auto& r : m->rate_limits) reasons.push_back({r.counter, names.name(r.counter)});
  for (auto& b : builtin_counters())
    if (std::string(b.action) == "drop" || (b.slot == SIPXDP_CTR_DEFAULT && m->default_action == "drop"))
      reasons.push_back({b.slot, b.name});
  for (auto& [slot, name] : reasons) {
    auto c = dp->event_count(slot);
    if (!c) continue;
    F.add("sipxdp_events_total", with(base, {{"reason", name}}), double(c->emitted));
    F.add("sipxdp_events_suppressed_total", with(base, {{"reason", name}}), double(c->suppressed));
  }
  if (auto lost = dp->events_lost()) F.add("sipxdp_events_lost_total", base, double(lost.value()));
  if (auto bans = dp->bans(m.value())) {
    std::map<std::string, int> by_reason;
    // The reason as stats and events name it: scanner:PATTERN, ratelimit:NAME, auth-failures, manual.
    for (auto& b : bans.value())
      by_reason[b.kind == "pattern"     ? "scanner:" + escape_bytes(b.reason)
                : b.kind == "ratelimit" ? "ratelimit:" + b.reason
                                        : b.reason]++;
    for (auto& [reason, n] : by_reason) F.add("sipxdp_bans", with(base, {{"reason", reason}}), n);
    if (by_reason.empty()) F.add("sipxdp_bans", with(base, {{"reason", "manual"}}), 0);
  }
  if (auto t = dp->learned_trust()) F.add("sipxdp_trusted_phones", base, double(t->size()));
  if (auto ft = dp->flow_table()) {
    F.add("sipxdp_flow_table_entries", base, double(ft->entries));
    F.add("sipxdp_flow_table_live_entries", base, double(ft->live));
    F.add("sipxdp_flow_table_capacity", base, double(ft->capacity));
  }
}

}  // namespace

std::vector<prometheus::MetricFamily> collect_metrics(const std::vector<Instance>& instances) {
  Families F;
  declare_all(F);
  F.add("sipxdp_build_info", {{"version", version()}, {"commit", git_commit()}}, 1);
  for (auto& in : instances) instance_metrics(F, in);
  return F.take();
}

std::string metrics_text(const std::vector<prometheus::MetricFamily>& families) {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

}  // namespace sipxdp
