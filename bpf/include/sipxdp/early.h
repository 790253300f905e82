/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The early verdicts of xdp_ingress, before any policy lookup: loopback
 * addresses from outside, banned sources (unless a trusted phone's, see
 * trust.h), and later fragments (which carry
 * no ports: they get their datagram's verdict).
 */
#ifndef SIPXDP_EARLY_H
#define SIPXDP_EARLY_H

#include "sipxdp/bans.h"
#include "sipxdp/frag.h"
#include "sipxdp/trusted.h"

#define LOOPBACK_IFINDEX 1

/* An IPv6 address that is loopback: ::1, or 127.0.0.0/8 in IPv4-mapped
 * (::ffff:127.x.y.z) or IPv4-compatible (::127.x.y.z) form, which dual-stack
 * sockets see as IPv4 loopback.
 */
static __always_inline int loopback6(const __u8 *a)
{
	__u64 hi, lo;

	__builtin_memcpy(&hi, a, 8);
	__builtin_memcpy(&lo, a + 8, 8);
	if (hi)
		return 0;
	if (lo == bpf_cpu_to_be64(1))
		return 1;
	/* bytes 8-11: 0000 (compatible) or 0000ffff (mapped); byte 12: 127 */
	return (a[8] | a[9]) == 0 &&
	       ((a[10] == 0 && a[11] == 0) || (a[10] == 0xff && a[11] == 0xff)) &&
	       a[12] == IN_LOOPBACKNET;
}

static __always_inline int is_martian(const struct pkt *p)
{
	if (p->family == 4)
		return (bpf_ntohl(p->dst.v4) >> IN_CLASSA_NSHIFT) == IN_LOOPBACKNET ||
		       (bpf_ntohl(p->src.v4) >> IN_CLASSA_NSHIFT) == IN_LOOPBACKNET;
	return loopback6(p->dst.v6) || loopback6(p->src.v6);
}

static __always_inline int early_verdicts(struct xdp_md *ctx, const struct cursor *c,
					  struct judgement *j)
{
	struct sipxdp_state *st;
	__u32 zero = 0;

	if (ctx->ingress_ifindex != LOOPBACK_IFINDEX && is_martian(&j->p))
		return settle(ctx, j, SIPXDP_CTR_MARTIAN, SIPXDP_ACT_DROP);
	st = bpf_map_lookup_elem(&state, &zero);
	if (!st)
		return XDP_PASS;
	j->gen = st->active_gen & 1;
	switch (is_banned(&j->p, st, j->gen)) {
	case BANNED_MANUAL:
		return settle(ctx, j, SIPXDP_CTR_BANNED, SIPXDP_ACT_DROP);
	case BANNED_AUTO:
		/* A phone with learned trust behind an address banned
		 * automatically goes on to the rules (trusted.h). */
		if (!trust_maybe(&j->p) ||
		    !sipxdp_banned_phone(ctx, &j->p, c->pos - c->start, j->gen))
			return settle(ctx, j, SIPXDP_CTR_BANNED, SIPXDP_ACT_DROP);
	}
	if (j->p.frag_later)
		return judge_later_fragment(ctx, j);
	return NEXT;
}

#endif /* SIPXDP_EARLY_H */
