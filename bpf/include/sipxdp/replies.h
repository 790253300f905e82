/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The replies stage of xdp_ingress: what the rules would drop may still be
 * the reply to a flow this host opened (flows.h): TCP and UDP by their
 * ports, ICMP echo replies by identifier, and ICMP errors about a flow.
 */
#ifndef SIPXDP_REPLIES_H
#define SIPXDP_REPLIES_H

#include "sipxdp/flows.h"
#include "sipxdp/judgement.h"

/*
 * An ICMP error (destination unreachable, packet too big, time exceeded,
 * parameter problem) about a packet of a recorded flow: the quoted header is
 * the flow's outbound packet, so path MTU discovery and traceroute work under
 * default drop. The quote is read with bpf_xdp_load_bytes: a rare path, kept
 * out of the verifier's packet-pointer bookkeeping.
 */
static __always_inline int is_related(struct xdp_md *ctx, const struct pkt *p, __u32 icmp_off,
				      const struct sipxdp_policy_hdr *hdr)
{
	struct sipxdp_flow_key k = {.family = p->family};
	__u32 at = icmp_off + sizeof(struct icmphdr); /* the quoted IP header */
	union {
		struct {
			__be16 source, dest; /* TCP and UDP */
		} ports;
		struct icmphdr icmp; /* echo: un.echo.id (the same place in ICMPv6) */
	} l4;

	if (p->family == 4) {
		struct iphdr ip;

		if (bpf_xdp_load_bytes(ctx, at, &ip, sizeof(ip)) < 0 || ip.version != 4 ||
		    ip.ihl < 5)
			return 0;
		/* A quoted later fragment has no ports; the quote must be of a packet this host
		 * sent. */
		if ((bpf_ntohs(ip.frag_off) & IPV4_FRAG_OFFSET_MASK) || ip.saddr != p->dst.v4 ||
		    bpf_xdp_load_bytes(ctx, at + ip.ihl * 4, &l4, sizeof(l4)) < 0)
			return 0;
		k.proto = ip.protocol;
		__builtin_memcpy(k.laddr, &ip.saddr, 4);
		__builtin_memcpy(k.raddr, &ip.daddr, 4);
	} else {
		struct ipv6hdr ip6;
		__u64 a[2], b[2];

		if (bpf_xdp_load_bytes(ctx, at, &ip6, sizeof(ip6)) < 0 || ip6.version != 6)
			return 0;
		__builtin_memcpy(a, &ip6.saddr, 16);
		__builtin_memcpy(b, p->dst.v6, 16);
		if (a[0] != b[0] || a[1] != b[1])
			return 0;
		k.proto = ip6.nexthdr;
		__builtin_memcpy(k.laddr, &ip6.saddr, 16);
		__builtin_memcpy(k.raddr, &ip6.daddr, 16);
		at += sizeof(ip6);
		/* A quoted first fragment (a big UDP datagram: Packet Too Big is
		 * about exactly those) has a Fragment header before its ports.
		 * Other extension headers are not followed.
		 */
		if (k.proto == IPPROTO_FRAGMENT) {
			struct ipv6_frag_hdr_s fh;

			if (bpf_xdp_load_bytes(ctx, at, &fh, sizeof(fh)) < 0 ||
			    (bpf_ntohs(fh.frag_off) & IPV6_FRAG_OFFSET_MASK))
				return 0;
			k.proto = fh.nexthdr;
			at += sizeof(fh);
		}
		if (bpf_xdp_load_bytes(ctx, at, &l4, sizeof(l4)) < 0)
			return 0;
	}
	switch (k.proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
		k.lport = l4.ports.source;
		k.rport = l4.ports.dest;
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		/* about an echo request: its identifier */
		k.lport = l4.icmp.un.echo.id;
		k.rport = k.lport;
		break;
	}
	return flow_live(&k, hdr);
}

/*
 * 1 when the packet answers a flow the egress program recorded within the
 * flow kind's timeout. A global function, verified once on its own: the main
 * program's verification budget is mostly spent on its parse paths.
 */
__noinline int sipxdp_is_reply(struct xdp_md *ctx, const struct pkt *p, __u32 l4_off, __u32 gen)
{
	struct sipxdp_policy_hdr *hdr;
	struct sipxdp_flow_key k;

	gen &= 1;
	hdr = bpf_map_lookup_elem(&policy_hdr, &gen);
	if (!p || !hdr)
		return 0;
	/* A bare SYN opens a connection; it is never a reply. */
	if (p->proto == IPPROTO_TCP && p->tcp_syn)
		return 0;
	if (sipxdp_flow_kind(p->proto) >= SIPXDP_FLOW_KINDS)
		return 0;
	if (p->proto == IPPROTO_ICMP && p->family == 4) {
		switch (p->icmp_type) {
		case ICMP_DEST_UNREACH:
		case ICMP_SOURCE_QUENCH:
		case ICMP_TIME_EXCEEDED:
		case ICMP_PARAMETERPROB:
			return is_related(ctx, p, l4_off, hdr);
		case ICMP_ECHOREPLY:
			break;
		default:
			return 0;
		}
	} else if (p->proto == IPPROTO_ICMPV6) {
		switch (p->icmp_type) {
		case ICMPV6_DEST_UNREACH:
		case ICMPV6_PKT_TOOBIG:
		case ICMPV6_TIME_EXCEED:
		case ICMPV6_PARAMPROB:
			return is_related(ctx, p, l4_off, hdr);
		case ICMPV6_ECHO_REPLY:
			break;
		default:
			return 0;
		}
	}
	flow_key(&k, p, 0);
	return flow_live(&k, hdr);
}

/* The replies stage: a drop the rules decided becomes `established` for a reply. */
static __always_inline void replies(struct xdp_md *ctx, struct judgement *j)
{
	if (j->settled || j->action != SIPXDP_ACT_DROP || !(j->hdr->flags & SIPXDP_HDR_STATEFUL))
		return;
	/* ICMP errors come from routers, not from the flow's peer: no address hint for them. */
	if (j->p.proto != IPPROTO_ICMP && j->p.proto != IPPROTO_ICMPV6 && !maybe_reply(&j->p))
		return;
	if (sipxdp_is_reply(ctx, &j->p, j->off, j->gen)) {
		j->slot = SIPXDP_CTR_ESTABLISHED;
		j->action = SIPXDP_ACT_ALLOW;
	}
}

#endif /* SIPXDP_REPLIES_H */
