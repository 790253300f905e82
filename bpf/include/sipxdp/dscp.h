/* SPDX-License-Identifier: GPL-2.0 */
/*
 * DSCP marking (egress): the first DSCP rule that matches an outbound packet
 * sets its class. Later fragments carry no ports: they take the rule of their
 * datagram's first fragment (the kernel fragments before TC, in order).
 */
#ifndef SIPXDP_DSCP_H
#define SIPXDP_DSCP_H

#include <linux/pkt_cls.h>

#include "sipxdp/counters.h"
#include "sipxdp/keys.h"

#ifndef INET_ECN_MASK
#define INET_ECN_MASK 3 /* the two ECN bits under DSCP, never touched */
#endif

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
	/* The mask of the rules whose destination prefixes hold the packet's. */
	if (hdr_flags & SIPXDP_HDR_DSCP_DST)
		dmask = lpm_value(p, gen, SIPXDP_DIR_DSCP, 1);
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
		/* Later fragments take their first fragment's rule (dscp_rule_of). */
		if (r->nsport && (p->frag_later || !in_ranges(sport, r->sport, r->nsport)))
			continue;
		if (r->ndport && (p->frag_later || !in_ranges(dport, r->dport, r->ndport)))
			continue;
		return i;
	}
	return -1;
}

/* The rule for this packet (its first fragment's, for a later one), or -1. */
static __always_inline int dscp_rule_of(const struct pkt *p, __u32 gen,
					const struct sipxdp_policy_hdr *hdr)
{
	struct sipxdp_frag_key fk;
	int i;

	if (p->frag_later) {
		struct out_frag *of;

		frag_key(p, &fk);
		of = bpf_map_lookup_elem(&out_frags, &fk);
		if (!of || !of->rule || of->gen != gen ||
		    of->expires_ns < bpf_ktime_get_coarse_ns())
			return -1;
		return of->rule - 1;
	}
	i = sipxdp_match_dscp(p, gen, hdr->ndscp, hdr->flags);
	if (p->frag_first) {
		struct out_frag of = {
			.expires_ns = bpf_ktime_get_coarse_ns() + SIPXDP_FRAG_TIMEOUT_NS,
			.rule = i + 1,
			.gen = gen,
		};

		frag_key(p, &fk);
		bpf_map_update_elem(&out_frags, &fk, &of, BPF_ANY);
	}
	return i;
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

	if (p->family == 4) {
		struct iphdr *ip = data + off;
		__u8 tos;
		__u16 old, new;

		if ((void *)(ip + 1) > end)
			return;
		tos = (dscp << 2) | (ip->tos & INET_ECN_MASK);
		if (tos == ip->tos)
			return;
		/* The checksum covers 16-bit words: the one holding version, IHL and TOS. */
		__builtin_memcpy(&old, ip, 2);
		new = old;
		((__u8 *)&new)[1] = tos;
		if (bpf_skb_store_bytes(skb, off + offsetof(struct iphdr, tos), &tos, 1, 0) == 0)
			bpf_l3_csum_replace(skb, off + offsetof(struct iphdr, check), old, new, 2);
	} else {
		struct ipv6hdr *ip6 = data + off;
		__u8 b[2];

		if ((void *)(ip6 + 1) > end)
			return;
		/* version(4) | traffic class(8) | flow label(20): the traffic
		 * class's top six bits are DSCP, its low two ECN.
		 */
		b[0] = (6 << 4) | (dscp >> 2);
		b[1] = ((dscp & 3) << 6) | (ip6->flow_lbl[0] & ((INET_ECN_MASK << 4) | 0x0f));
		if (b[0] == ((__u8 *)ip6)[0] && b[1] == ip6->flow_lbl[0])
			return;
		bpf_skb_store_bytes(skb, off, b, 2, 0);
	}
}

/* Marks the packet by its DSCP rule and counts it (`segs` packets on the wire). */
static __always_inline void mark_dscp(struct __sk_buff *skb, const struct pkt *p, __u32 gen,
				      const struct sipxdp_policy_hdr *hdr, __u32 segs)
{
	struct sipxdp_dscp_rule *r;
	__u32 key;
	int i;

	if (!hdr->ndscp)
		return;
	i = dscp_rule_of(p, gen, hdr);
	if (i < 0 || i >= SIPXDP_MAX_DSCP_RULES)
		return;
	key = gen * SIPXDP_MAX_DSCP_RULES + i;
	r = bpf_map_lookup_elem(&dscp_rules, &key);
	if (!r)
		return;
	count_n(r->counter, segs, p->len);
	set_dscp(skb, p, r->dscp);
}

#endif /* SIPXDP_DSCP_H */
