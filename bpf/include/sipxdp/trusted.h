/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The ingress side of learned trust (trust.h): is this packet a registered
 * phone's, and is a packet of a banned address a registered phone's (then
 * it goes on to the rules, past the ban).
 */
#ifndef SIPXDP_TRUSTED_H
#define SIPXDP_TRUSTED_H

#include "sipxdp/judgement.h"
#include "sipxdp/trust.h"

/* The live learned trust of the flow from the packet's source address and
 * source port `sport`, or NULL; none while the live policy has learned trust
 * off (what was learned then no longer counts).
 */
static __always_inline struct sipxdp_trust *trusted_entry(const struct pkt *p, __u32 gen,
							  __be16 sport)
{
	struct sipxdp_sip_cfg *cfg;
	struct sipxdp_trust_key k;
	struct sipxdp_trust *t;

	gen &= 1;
	cfg = bpf_map_lookup_elem(&sip_cfg, &gen);
	if (!cfg || !(cfg->flags & SIPXDP_SIP_TRUST) || !trust_maybe(p))
		return NULL;
	trust_key(&k, p, 0);
	k.port = sport;
	t = bpf_map_lookup_elem(&trust_learned, &k);
	return t && trust_live(t, cfg, bpf_ktime_get_coarse_ns()) ? t : NULL;
}

/* 1 when the packet belongs to a phone's flow with live learned trust. */
__noinline int sipxdp_trusted_flow(const struct pkt *p, __u32 gen)
{
	return p && trusted_entry(p, gen, p->sport) != NULL;
}

/*
 * Whether a packet from a source banned automatically is a registered
 * phone's (its TCP or UDP source port is read at frame offset l4_off: the
 * early stage runs before the transport header is parsed); its trust's hits
 * count it. A global function, verified once, so the ban path adds no state
 * to the main program.
 */
__noinline int sipxdp_banned_phone(struct xdp_md *ctx, const struct pkt *p, __u32 l4_off, __u32 gen)
{
	struct sipxdp_trust *t;
	__be16 sport;

	if (!p || p->frag_later || (p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP))
		return 0;
	if (bpf_xdp_load_bytes(ctx, l4_off, &sport, sizeof(sport)) < 0)
		return 0;
	t = trusted_entry(p, gen, sport);
	if (!t)
		return 0;
	__sync_fetch_and_add(&t->hits, 1);
	count(SIPXDP_CTR_TRUSTED, p->len);
	return 1;
}

#endif /* SIPXDP_TRUSTED_H */
