/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Stateful replies. The egress program records each outbound flow (seen
 * from this host: local and remote address and port; for ICMP echo the
 * identifier as local port); the ingress program lets a packet the rules
 * would drop in when it is the reply of a flow seen within its kind's
 * timeout (replies.h). Both look flows up behind the flow_hint bitmap: a
 * bit per flow hash and a bit per remote address hash.
 */
#ifndef SIPXDP_FLOWS_H
#define SIPXDP_FLOWS_H

#include "sipxdp/lookup.h"

/* The hint bit of a packet's remote address: its source inbound, its destination outbound. */
static __always_inline __u32 flow_addr_hash(const struct pkt *p, int out)
{
	return ((addr_word(p, out) ^ 0x5bd1e995u) * 0x9e3779b1u) >> (32 - SIPXDP_HINT_SHIFT);
}

/* 0 proves the source has no recorded flow. (Not for ICMP: errors come from routers.) */
static __always_inline int maybe_reply(const struct pkt *p)
{
	struct hint_bits *hint = hints(&flow_hint);

	return hint && hint_test(hint, flow_addr_hash(p, 0));
}

/* 1 when the flow `k` was recorded by the egress program within its timeout. */
static __always_inline int flow_live(struct sipxdp_flow_key *k, const struct sipxdp_policy_hdr *hdr)
{
	struct hint_bits *hint = hints(&flow_hint);
	__u32 kind = sipxdp_flow_kind(k->proto);
	struct sipxdp_flow *f;

	if (kind >= SIPXDP_FLOW_KINDS || !hint || !hint_test(hint, sipxdp_flow_hash(k)))
		return 0;
	f = bpf_map_lookup_elem(&flows, k);
	/* Signed: the egress program on another CPU may have stored a time
	 * later than the one read here.
	 */
	return f && (__s64)(bpf_ktime_get_coarse_ns() - f->seen_ns) <=
			    (__s64)hdr->flow_timeout_s[kind] * (__s64)NSEC_PER_SEC;
}

/*
 * 1 when the rules let this UDP packet's replies in whatever their source
 * (the first rule for the reply's destination port allows and matches any
 * source port and address, or no rule does and the default allows). Such
 * flows are not recorded: RTP and SIP streams would otherwise fill the
 * table and push out the flows that need it. (TCP is always recorded, so
 * that ICMP errors about a connection, such as "packet too big", are
 * recognised.)
 */
static __always_inline int replies_allowed(const struct pkt *p, __u32 gen,
					   const struct sipxdp_policy_hdr *hdr)
{
	__u32 cls = port_lookup(gen, SIPXDP_PT_UDP, bpf_ntohs(p->sport));
	struct sipxdp_rule *r;

	if (!cls)
		return hdr->default_action == SIPXDP_ACT_ALLOW;
	r = class_rule(gen, cls);
	return r && r->action == SIPXDP_ACT_ALLOW && (r->flags & SIPXDP_RULE_NO_SPORT_ADDR);
}

/* Egress: records (or refreshes) the flow of an outbound packet. */
static __always_inline void record_flow(const struct pkt *p, __u32 gen,
					const struct sipxdp_policy_hdr *hdr)
{
	struct sipxdp_flow_key k;
	struct sipxdp_flow *f, v;
	struct hint_bits *hint;
	__u64 now;

	/* TCP, UDP, and ICMP echo requests (their replies come back) open flows.
	 * Other protocols (GRE, ESP, SCTP...) would be keyed by addresses alone,
	 * letting in anything of that protocol from the peer: they need rules.
	 */
	switch (p->proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
		break;
	case IPPROTO_ICMP:
		if (p->family != 4 || p->icmp_type != ICMP_ECHO)
			return;
		break;
	case IPPROTO_ICMPV6:
		if (p->icmp_type != ICMPV6_ECHO_REQUEST)
			return;
		break;
	default:
		return;
	}
	if (p->proto == IPPROTO_UDP && replies_allowed(p, gen, hdr))
		return;
	flow_key(&k, p, 1);
	now = bpf_ktime_get_coarse_ns();
	f = bpf_map_lookup_elem(&flows, &k);
	if (f) {
		/* One store, and only once a second per flow: RTP at 50 packets a
		 * second per stream does not write the shared entry every packet.
		 * Signed: another CPU may have stored a later time since `now`.
		 */
		if ((__s64)(now - f->seen_ns) > (__s64)SIPXDP_FLOW_REFRESH_NS)
			f->seen_ns = now;
		return;
	}
	v.seen_ns = now;
	bpf_map_update_elem(&flows, &k, &v, BPF_ANY);
	hint = hints(&flow_hint);
	if (hint) {
		hint_set(hint, sipxdp_flow_hash(&k));
		hint_set(hint, flow_addr_hash(p, 1));
	}
}

#endif /* SIPXDP_FLOWS_H */
