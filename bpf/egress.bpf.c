// SPDX-License-Identifier: GPL-2.0
/*
 * sipxdp TC egress: records outbound flows (so the ingress program lets their
 * replies in) and marks DSCP by the first matching DSCP rule. It never
 * decides a packet's fate: every exit is TC_ACT_UNSPEC.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "sipxdp/abi.h"
#include "sipxdp/maps.h"
#include "sipxdp/parse.h"

/* Ethernet, two VLAN tags, IPv6 with a few extension headers, TCP. */
#define HEADERS_MAX 192

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
	__u32 idx = sipxdp_port_index(gen, SIPXDP_PT_UDP, bpf_ntohs(p->sport));
	__u32 *cls = bpf_map_lookup_elem(&port_class, &idx);
	struct sipxdp_rule *r;

	if (!cls)
		return 0;
	if (!*cls)
		return hdr->default_action == SIPXDP_ACT_ALLOW;
	idx = gen * SIPXDP_MAX_CLASSES + (*cls & (SIPXDP_MAX_CLASSES - 1));
	r = bpf_map_lookup_elem(&cls_rule, &idx);
	return r && r->action == SIPXDP_ACT_ALLOW && (r->flags & SIPXDP_RULE_NO_SPORT_ADDR);
}

static __always_inline void record_flow(const struct pkt *p, __u32 gen,
					const struct sipxdp_policy_hdr *hdr)
{
	struct sipxdp_flow_key k;
	struct sipxdp_flow *f, v;
	struct flow_hint *hint;
	__u64 now;
	__u32 h;

	/* TCP, UDP, and ICMP echo requests (their replies come back) open flows.
	 * Other protocols (GRE, ESP, SCTP...) would be keyed by addresses alone,
	 * letting in anything of that protocol from the peer: they need rules.
	 */
	switch (p->proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
		break;
	case IPPROTO_ICMP:
		if (p->family != 4 || p->icmp_type != 8)
			return;
		break;
	case IPPROTO_ICMPV6:
		if (p->icmp_type != 128)
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
		 */
		/* signed: another CPU may have stored a later time since `now` was read */
		if ((__s64)(now - f->seen_ns) > (__s64)SIPXDP_FLOW_REFRESH_NS)
			f->seen_ns = now;
		return;
	}
	v.seen_ns = now;
	bpf_map_update_elem(&flows, &k, &v, BPF_ANY);
	h = sipxdp_flow_hash(&k);
	hint = flow_hint_map();
	if (hint) {
		flow_hint_set(hint, h);
		flow_hint_set(hint, flow_addr_hash(p, 1));
	}
}

static __always_inline int in_ranges(__u16 port, __u16 (*r)[2], __u32 n)
{
	for (__u32 i = 0; i < SIPXDP_DSCP_RANGES; i++) {
		if (i >= n)
			break;
		if (port >= r[i][0] && port <= r[i][1])
			return 1;
	}
	return 0;
}

/* Mask of the DSCP rules whose destination prefixes hold the packet's. */
static __always_inline __u32 dst_mask(const struct pkt *p, __u32 gen)
{
	__u32 *m;

	if (p->family == 4) {
		struct sipxdp_lpm4_key k = {
			.prefixlen = SIPXDP_LPM_HDR_BITS + 32, .gen = gen, .dir = SIPXDP_DIR_DSCP};

		__builtin_memcpy(k.addr, &p->dst.v4, 4);
		m = bpf_map_lookup_elem(&lpm4, &k);
	} else {
		struct sipxdp_lpm6_key k = {
			.prefixlen = SIPXDP_LPM_HDR_BITS + 128, .gen = gen, .dir = SIPXDP_DIR_DSCP};

		__builtin_memcpy(k.addr, p->dst.v6, 16);
		m = bpf_map_lookup_elem(&lpm6, &k);
	}
	return m ? *m : 0;
}

/* Index of the first DSCP rule matching the packet, or -1. A global
 * function, verified once: 32 rules of 8 + 8 port ranges are many paths.
 */
__noinline int sipxdp_match_dscp(const struct pkt *p, __u32 gen, __u32 n, __u32 hdr_flags)
{
	__u16 sport = 0, dport = 0;
	__u32 dmask = 0;

	if (!p)
		return -1;
	gen &= 1;

	if (!p->frag_later && (p->proto == IPPROTO_TCP || p->proto == IPPROTO_UDP)) {
		sport = bpf_ntohs(p->sport);
		dport = bpf_ntohs(p->dport);
	}
	if (hdr_flags & SIPXDP_HDR_DSCP_DST)
		dmask = dst_mask(p, gen);
	for (__u32 i = 0; i < SIPXDP_MAX_DSCP_RULES; i++) {
		__u32 key = gen * SIPXDP_MAX_DSCP_RULES + i;
		struct sipxdp_dscp_rule *r;

		if (i >= n)
			break;
		r = bpf_map_lookup_elem(&dscp_rules, &key);
		if (!r)
			break;
		if (r->family && r->family != p->family)
			continue;
		if (r->proto && r->proto != p->proto)
			continue;
		if (r->dst && !(dmask & (1u << i)))
			continue;
		/* Later fragments take their first fragment's rule (tc_egress). */
		if (r->nsport && (p->frag_later || !in_ranges(sport, r->sport, r->nsport)))
			continue;
		if (r->ndport && (p->frag_later || !in_ranges(dport, r->dport, r->ndport)))
			continue;
		return i;
	}
	return -1;
}

/*
 * Writes the DSCP bits, keeping ECN; the IPv4 header checksum follows
 * (bpf_l3_csum_replace: RFC 1624's incremental update). Helpers rather than
 * direct stores: a program that writes packet data directly gets a prologue
 * that unclones every cloned skb (all of TCP's), marked or not.
 */
static __always_inline void set_dscp(struct __sk_buff *skb, const struct pkt *p, __u8 dscp)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	__u32 off = p->l3_off & 0xff;
	__u8 *ip = data + off;

	if ((void *)(ip + 2) > end)
		return;
	if (p->family == 4) {
		__u8 b[2] = {ip[0], (dscp << 2) | (ip[1] & 3)};
		__u16 old, new;

		if (b[1] == ip[1])
			return;
		__builtin_memcpy(&old, ip, 2);
		__builtin_memcpy(&new, b, 2);
		if (bpf_skb_store_bytes(skb, off + 1, &b[1], 1, 0) == 0)
			bpf_l3_csum_replace(skb, off + 10, old, new, 2);
	} else {
		/* version(4) | traffic class(8) | flow label(20): DSCP is the top six TC bits. */
		__u8 b[2] = {0x60 | (dscp >> 2), ((dscp & 3) << 6) | (ip[1] & 0x3f)};

		if (b[0] == ip[0] && b[1] == ip[1])
			return;
		bpf_skb_store_bytes(skb, off, b, 2, 0);
	}
}

/* Parses the linear part: 0, or -1 when a header is not (all) there. */
static __always_inline int parse(struct __sk_buff *skb, struct pkt *p)
{
	struct cursor c = {.lax = 1};
	__u16 h_proto;

	c.start = (void *)(long)skb->data;
	c.pos = c.start;
	c.end = (void *)(long)skb->data_end;
	if (parse_eth(&c, &h_proto) < 0)
		return -1;
	p->l3_off = c.pos - (void *)(long)skb->data;
	if (h_proto == ETH_P_IP) {
		if (parse_ipv4(&c, p) < 0)
			return -1;
	} else if (h_proto == ETH_P_IPV6) {
		if (parse_ipv6(&c, p) < 0)
			return -1;
	} else {
		return 1; /* not IP: nothing to do */
	}
	if (!p->frag_later && parse_l4(&c, p) < 0)
		return -1;
	return 0;
}

/*
 * Every exit is TC_ACT_UNSPEC: this filter never decides a packet's fate,
 * so the filters after it on the interface still run.
 */
SEC("tc")
int tc_egress(struct __sk_buff *skb)
{
	struct pkt p = {};
	struct sipxdp_state *st;
	struct sipxdp_policy_hdr *hdr;
	struct sipxdp_dscp_rule *r;
	__u32 zero = 0, gen, key, segs;
	int i, err;

	p.len = skb->len;
	err = parse(skb, &p);
	if (err < 0 && skb->len > skb->data_end - skb->data) {
		/* Headers split across the paged part (rare: the stack puts the
		 * headers of what it sends in the linear part). Pull only then:
		 * pulling unclones, which costs a copy.
		 */
		if (bpf_skb_pull_data(skb, skb->len < HEADERS_MAX ? skb->len : HEADERS_MAX) < 0)
			return TC_ACT_UNSPEC;
		__builtin_memset(&p, 0, sizeof(p));
		p.len = skb->len;
		err = parse(skb, &p);
	}
	if (err)
		return TC_ACT_UNSPEC;

	st = bpf_map_lookup_elem(&state, &zero);
	if (!st)
		return TC_ACT_UNSPEC;
	gen = st->active_gen & 1;
	hdr = bpf_map_lookup_elem(&policy_hdr, &gen);
	if (!hdr || !(hdr->flags & SIPXDP_HDR_VALID))
		return TC_ACT_UNSPEC;
	/* A GSO packet is several packets on the wire. */
	segs = skb->gso_segs ? skb->gso_segs : 1;
	count_n(SIPXDP_CTR_EGRESS, segs, skb->len);

	if ((hdr->flags & SIPXDP_HDR_STATEFUL) && !p.frag_later)
		record_flow(&p, gen, hdr);

	if (!hdr->ndscp)
		return TC_ACT_UNSPEC;
	if (p.frag_later) {
		/* The first fragment's rule, if it was seen (fragments leave in order). */
		struct sipxdp_frag_key fk;
		struct out_frag *of;

		frag_key(&p, &fk);
		of = bpf_map_lookup_elem(&out_frags, &fk);
		if (!of || !of->rule || of->gen != gen ||
		    of->expires_ns < bpf_ktime_get_coarse_ns())
			return TC_ACT_UNSPEC;
		i = of->rule - 1;
	} else {
		i = sipxdp_match_dscp(&p, gen, hdr->ndscp, hdr->flags);
		if (p.frag_first) {
			struct sipxdp_frag_key fk;
			struct out_frag of = {
				.expires_ns = bpf_ktime_get_coarse_ns() + SIPXDP_FRAG_TIMEOUT_NS,
				.rule = i + 1,
				.gen = gen,
			};

			frag_key(&p, &fk);
			bpf_map_update_elem(&out_frags, &fk, &of, BPF_ANY);
		}
	}
	if (i < 0 || i >= SIPXDP_MAX_DSCP_RULES)
		return TC_ACT_UNSPEC;
	key = gen * SIPXDP_MAX_DSCP_RULES + i;
	r = bpf_map_lookup_elem(&dscp_rules, &key);
	if (!r)
		return TC_ACT_UNSPEC;
	count_n(r->counter, segs, skb->len);
	set_dscp(skb, &p, r->dscp);
	return TC_ACT_UNSPEC;
}
