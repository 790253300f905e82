// SPDX-License-Identifier: GPL-2.0
/*
 * sipxdp TC egress: records outbound flows, so the ingress program lets
 * their replies in (flows.h), reads the server's SIP responses for
 * authentication failures and registrations (responses.h), and marks DSCP
 * by the first matching DSCP rule (dscp.h). It never decides a packet's fate: every exit is
 * TC_ACT_UNSPEC, so the filters after it on the interface still run. The maps are the ingress
 * program's (extern here; `bpftool gen object` links the two).
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "sipxdp/dscp.h"
#include "sipxdp/flows.h"
#include "sipxdp/responses.h"

/* Ethernet, two VLAN tags, IPv6 with a few extension headers, TCP. */
#define HEADERS_MAX 192

/* Parses the linear part: 0, 1 when not IP, or -1 when a header is not (all)
 * there. *payload: the frame offset of the L4 payload.
 */
static __always_inline int parse_skb(struct __sk_buff *skb, struct pkt *p, __u32 *payload)
{
	struct cursor c = {.lax = 1};
	__u16 h_proto;

	__builtin_memset(p, 0, sizeof(*p));
	p->len = skb->len;
	c.start = (void *)(long)skb->data;
	c.pos = c.start;
	c.end = (void *)(long)skb->data_end;
	if (parse_eth(&c, &h_proto) < 0)
		return -1;
	p->l3_off = c.pos - c.start;
	if (h_proto == ETH_P_IP) {
		if (parse_ipv4(&c, p) < 0)
			return -1;
	} else if (h_proto == ETH_P_IPV6) {
		if (parse_ipv6(&c, p) < 0)
			return -1;
	} else {
		return 1;
	}
	if (!p->frag_later && parse_l4(&c, p) < 0)
		return -1;
	*payload = c.pos - c.start;
	return 0;
}

/* The headers, pulled into the linear part when the stack split them (rare:
 * it puts the headers of what it sends there; pulling unclones, a copy).
 */
static __always_inline int parse_outbound(struct __sk_buff *skb, struct pkt *p, __u32 *payload)
{
	int err = parse_skb(skb, p, payload);

	if (err < 0 && skb->len > skb->data_end - skb->data) {
		if (bpf_skb_pull_data(skb, skb->len < HEADERS_MAX ? skb->len : HEADERS_MAX) < 0)
			return -1;
		err = parse_skb(skb, p, payload);
	}
	return err;
}

SEC("tc")
int tc_egress(struct __sk_buff *skb)
{
	struct sipxdp_policy_hdr *hdr;
	struct sipxdp_state *st;
	struct pkt p;
	__u32 zero = 0, gen, segs, payload = 0;

	if (parse_outbound(skb, &p, &payload) != 0)
		return TC_ACT_UNSPEC;
	st = bpf_map_lookup_elem(&state, &zero);
	if (!st)
		return TC_ACT_UNSPEC;
	gen = st->active_gen & 1;
	hdr = bpf_map_lookup_elem(&policy_hdr, &gen);
	if (!hdr || !(hdr->flags & SIPXDP_HDR_VALID))
		return TC_ACT_UNSPEC;
	/* The server's SIP responses: auth failures, learned trust (responses.h). */
	if (hdr->flags & SIPXDP_HDR_SIP_RESPONSES)
		sipxdp_sip_response(skb, &p, payload, gen);
	/* A GSO packet is several packets on the wire. */
	segs = skb->gso_segs ? skb->gso_segs : 1;
	count_n(SIPXDP_CTR_EGRESS, segs, skb->len);
	if ((hdr->flags & SIPXDP_HDR_STATEFUL) && !p.frag_later)
		record_flow(&p, gen, hdr);
	mark_dscp(skb, &p, gen, hdr, segs);
	return TC_ACT_UNSPEC;
}

char _license[] SEC("license") = "GPL";
