/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The parse stages of xdp_ingress: the frame's headers into the judgement.
 * What fails a bounds check drops on `malformed`; what is not IP passes.
 */
#ifndef SIPXDP_FRAME_H
#define SIPXDP_FRAME_H

#include "sipxdp/judgement.h"

/* Ethernet, VLAN tags, IPv4 or IPv6 with its extension headers. */
static __always_inline int parse_frame(struct xdp_md *ctx, struct cursor *c, struct judgement *j)
{
	__u16 h_proto;

	j->p.len = c->end - c->pos;
	if (parse_eth(c, &h_proto) < 0)
		return settle(ctx, j, SIPXDP_CTR_MALFORMED, SIPXDP_ACT_DROP);
	j->l3_off = c->pos - c->start;
	j->p.l3_off = j->l3_off;
	if (h_proto == ETH_P_IP) {
		if (parse_ipv4(c, &j->p) < 0)
			return settle(ctx, j, SIPXDP_CTR_MALFORMED, SIPXDP_ACT_DROP);
	} else if (h_proto == ETH_P_IPV6) {
		if (parse_ipv6(c, &j->p) < 0)
			return settle(ctx, j, SIPXDP_CTR_MALFORMED, SIPXDP_ACT_DROP);
	} else {
		return settle(ctx, j, SIPXDP_CTR_NONIP, SIPXDP_ACT_ALLOW);
	}
	return NEXT;
}

/*
 * Ports and ICMP types (first fragments and whole datagrams), then what
 * passes before the policy: neighbour discovery (IPv6 stops working
 * without it) and everything while no policy is loaded.
 */
static __always_inline int parse_transport(struct xdp_md *ctx, struct cursor *c,
					   struct judgement *j)
{
	__u32 l4_end;

	if (parse_l4(c, &j->p) < 0)
		return settle(ctx, j, SIPXDP_CTR_MALFORMED, SIPXDP_ACT_DROP);
	j->off = c->pos - c->start;
	l4_end = j->l3_off + j->p.ip_len;
	j->len = l4_end > j->off ? l4_end - j->off : 0;
	if (j->p.family == 6 && j->p.proto == IPPROTO_ICMPV6 &&
	    j->p.icmp_type >= NDISC_ROUTER_SOLICITATION && j->p.icmp_type <= NDISC_REDIRECT)
		return settle(ctx, j, SIPXDP_CTR_IPV6_ND, SIPXDP_ACT_ALLOW);
	j->hdr = bpf_map_lookup_elem(&policy_hdr, &j->gen);
	if (!j->hdr || !(j->hdr->flags & SIPXDP_HDR_VALID))
		return settle(ctx, j, SIPXDP_CTR_NO_POLICY, SIPXDP_ACT_ALLOW);
	return NEXT;
}

#endif /* SIPXDP_FRAME_H */
