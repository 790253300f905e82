/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Cursor-based header parsers for XDP and TC. Each returns -1 when a bounds
 * check fails and leaves the cursor past the parsed header otherwise.
 */
#ifndef SIPXDP_PARSE_H
#define SIPXDP_PARSE_H

#include <linux/types.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/icmp.h>
#include <linux/icmpv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define SIPXDP_MAX_VLAN 2
#define SIPXDP_MAX_EXTHDR 8

#ifndef ETH_P_8021Q
#define ETH_P_8021Q 0x8100
#endif
#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif

/* Neighbour discovery's ICMPv6 types, as the kernel names them (net/ndisc.h, not UAPI). */
#ifndef NDISC_ROUTER_SOLICITATION
#define NDISC_ROUTER_SOLICITATION 133
#define NDISC_REDIRECT 137
#endif

#define IPV6_FRAG_OFFSET_MASK 0xfff8 /* network order masked after ntohs */
#define IPV6_FRAG_MF 0x0001
#define IPV4_FRAG_OFFSET_MASK 0x1fff
#define IPV4_FRAG_MF 0x2000

struct cursor {
	void *start; /* the frame's first byte: offsets are from here */
	void *pos;
	void *end;
	/* 1 (TC): the payload may lie past `end`, in the skb's paged part, and
	 * a GSO packet's IP length may be 0; only headers must be before `end`.
	 */
	int lax;
};

struct vlan_hdr {
	__be16 tci;
	__be16 proto;
};

struct ipv6_opt_hdr_s {
	__u8 nexthdr;
	__u8 hdrlen;
};

struct ipv6_frag_hdr_s {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off;
	__be32 identification;
};

/* What the parsers learn about a packet. Addresses in network order. */
struct pkt {
	__u32 len;
	__u32 ip_len; /* IP header(s) and payload, as the IP header says */
	__u16 l3_off;
	__u8 family;	 /* 4 or 6 */
	__u8 proto;	 /* L4 protocol after extension headers */
	__u8 frag_first; /* first fragment of a fragmented datagram */
	__u8 frag_later; /* non-first fragment: no L4 header */
	__u8 frag_more;	 /* more fragments follow this one */
	__u16 frag_data; /* frame offset of the fragment's data (after IPv4 / fragment header) */
	__u16 frag_off;	 /* where that data lies in the datagram, in bytes */
	__u8 icmp_type;
	__u8 tcp_syn; /* a SYN without ACK: a connection's first packet */
	__be16 sport;
	__be16 dport;
	__u32 frag_id;
	__u32 tcp_seq; /* host order */
	union {
		__be32 v4;
		__u8 v6[16];
	} src, dst;
};

static __always_inline int parse_eth(struct cursor *c, __u16 *h_proto)
{
	struct ethhdr *eth = c->pos;
	__u16 proto;
	int i;

	if ((void *)(eth + 1) > c->end)
		return -1;
	c->pos = eth + 1;
	proto = eth->h_proto;

#pragma unroll
	for (i = 0; i < SIPXDP_MAX_VLAN; i++) {
		struct vlan_hdr *vh = c->pos;

		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		if ((void *)(vh + 1) > c->end)
			return -1;
		proto = vh->proto;
		c->pos = vh + 1;
	}
	/* A third tag: more than we parse, and never let it pass as non-IP. */
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD))
		return -1;
	*h_proto = bpf_ntohs(proto);
	return 0;
}

static __always_inline int parse_ipv4(struct cursor *c, struct pkt *p)
{
	struct iphdr *ip = c->pos;
	__u32 hlen;
	__u16 frag;

	if ((void *)(ip + 1) > c->end)
		return -1;
	if (ip->version != 4 || ip->ihl < 5)
		return -1;
	hlen = ip->ihl * 4;
	if (c->pos + hlen > c->end)
		return -1;
	if (!c->lax && (bpf_ntohs(ip->tot_len) < hlen || c->pos + bpf_ntohs(ip->tot_len) > c->end))
		return -1;
	p->family = 4;
	p->ip_len = bpf_ntohs(ip->tot_len);
	p->proto = ip->protocol;
	p->src.v4 = ip->saddr;
	p->dst.v4 = ip->daddr;
	frag = bpf_ntohs(ip->frag_off);
	if (frag & IPV4_FRAG_OFFSET_MASK)
		p->frag_later = 1;
	else if (frag & IPV4_FRAG_MF)
		p->frag_first = 1;
	p->frag_more = !!(frag & IPV4_FRAG_MF);
	p->frag_off = (frag & IPV4_FRAG_OFFSET_MASK) * 8;
	p->frag_id = bpf_ntohs(ip->id);
	c->pos += hlen;
	p->frag_data = c->pos - c->start;
	return 0;
}

static __always_inline int parse_ipv6(struct cursor *c, struct pkt *p)
{
	struct ipv6hdr *ip6 = c->pos;
	__u8 nexthdr;
	int i;

	if ((void *)(ip6 + 1) > c->end)
		return -1;
	if (ip6->version != 6)
		return -1;
	if (!c->lax && c->pos + sizeof(*ip6) + bpf_ntohs(ip6->payload_len) > c->end)
		return -1;
	p->family = 6;
	p->ip_len = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
	__builtin_memcpy(p->src.v6, &ip6->saddr, 16);
	__builtin_memcpy(p->dst.v6, &ip6->daddr, 16);
	nexthdr = ip6->nexthdr;
	c->pos = ip6 + 1;

#pragma unroll
	for (i = 0; i < SIPXDP_MAX_EXTHDR; i++) {
		struct ipv6_opt_hdr_s *oh = c->pos;

		switch (nexthdr) {
		case IPPROTO_HOPOPTS:
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
			if ((void *)(oh + 1) > c->end)
				return -1;
			nexthdr = oh->nexthdr;
			c->pos += (oh->hdrlen + 1) * 8;
			break;
		case IPPROTO_AH:
			if ((void *)(oh + 1) > c->end)
				return -1;
			nexthdr = oh->nexthdr;
			c->pos += (oh->hdrlen + 2) * 4;
			break;
		case IPPROTO_FRAGMENT: {
			struct ipv6_frag_hdr_s *fh = c->pos;
			__u16 off;

			if ((void *)(fh + 1) > c->end)
				return -1;
			nexthdr = fh->nexthdr;
			off = bpf_ntohs(fh->frag_off);
			p->frag_id = bpf_ntohl(fh->identification);
			c->pos = fh + 1;
			p->frag_data = c->pos - c->start;
			p->frag_off = off & IPV6_FRAG_OFFSET_MASK;
			p->frag_more = off & IPV6_FRAG_MF;
			if (off & IPV6_FRAG_OFFSET_MASK) {
				/* What follows is payload, not headers. */
				p->frag_later = 1;
				goto done;
			}
			if (off & IPV6_FRAG_MF)
				p->frag_first = 1;
			break;
		}
		default:
			goto done;
		}
		if (c->pos > c->end)
			return -1;
	}
	/* SIPXDP_MAX_EXTHDR headers walked: one more is more than we parse,
	 * which is malformed for us (never guess past it).
	 */
	switch (nexthdr) {
	case IPPROTO_HOPOPTS:
	case IPPROTO_ROUTING:
	case IPPROTO_DSTOPTS:
	case IPPROTO_AH:
	case IPPROTO_FRAGMENT:
		return -1;
	}
done:
	p->proto = nexthdr;
	return 0;
}

/* L4: ports for TCP/UDP; type and echo identifier (as both ports) for
 * ICMP/ICMPv6. Not called for later fragments.
 */
static __always_inline int parse_l4(struct cursor *c, struct pkt *p)
{
	switch (p->proto) {
	case IPPROTO_TCP: {
		struct tcphdr *th = c->pos;

		if ((void *)(th + 1) > c->end)
			return -1;
		if (th->doff < 5 || c->pos + th->doff * 4 > c->end)
			return -1;
		p->sport = th->source;
		p->dport = th->dest;
		p->tcp_syn = th->syn && !th->ack;
		p->tcp_seq = bpf_ntohl(th->seq);
		c->pos += th->doff * 4;
		return 0;
	}
	case IPPROTO_UDP: {
		struct udphdr *uh = c->pos;

		if ((void *)(uh + 1) > c->end)
			return -1;
		if (bpf_ntohs(uh->len) < sizeof(*uh))
			return -1;
		p->sport = uh->source;
		p->dport = uh->dest;
		c->pos = uh + 1;
		return 0;
	}
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6: {
		__u8 *t = c->pos;

		/* type, code, checksum and the 4-byte rest-of-header */
		if ((void *)(t + 8) > c->end)
			return -1;
		p->icmp_type = t[0];
		/* echo identifier (meaningful for echo request/reply only) */
		p->sport = *(__be16 *)(t + 4);
		p->dport = p->sport;
		return 0;
	}
	default:
		return 0;
	}
}

#endif /* SIPXDP_PARSE_H */
