/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The ingress side of learned trust (trust.h): is this packet a registered
 * phone's, and the stage that lets such a packet on past a ban of its
 * address.
 */
#ifndef SIPXDP_TRUSTED_H
#define SIPXDP_TRUSTED_H

#include "sipxdp/judgement.h"
#include "sipxdp/trust.h"

/* 1 when the packet belongs to a phone's flow with live learned trust, and
 * the live policy has learned trust on. */
__noinline int sipxdp_trusted_flow(const struct pkt *p, __u32 gen)
{
	struct sipxdp_sip_cfg *cfg;
	struct sipxdp_trust_key k;
	struct sipxdp_trust *t;

	gen &= 1;
	cfg = bpf_map_lookup_elem(&sip_cfg, &gen);
	/* Turned off by the live policy: what was learned no longer counts. */
	if (!p || !cfg || !(cfg->flags & SIPXDP_SIP_TRUST) || !trust_maybe(p))
		return 0;
	trust_key(&k, p, 0);
	t = bpf_map_lookup_elem(&trust_learned, &k);
	if (!t || t->expires_ns <= bpf_ktime_get_coarse_ns())
		return 0;
	return 1;
}

/* A banned source's packet that belongs to a trusted phone flow goes on to
 * the rules (counted on `trusted`); any other drops on `banned`.
 */
static __always_inline int banned_unless_trusted(struct xdp_md *ctx, struct judgement *j)
{
	struct sipxdp_trust_key k;
	struct sipxdp_trust *t;

	if (!j->ban_pending)
		return NEXT;
	if (sipxdp_trusted_flow(&j->p, j->gen)) {
		trust_key(&k, &j->p, 0);
		t = bpf_map_lookup_elem(&trust_learned, &k);
		if (t)
			__sync_fetch_and_add(&t->hits, 1);
		count(SIPXDP_CTR_TRUSTED, j->p.len);
		j->trusted_flow = 1;
		return NEXT;
	}
	return settle(ctx, j, SIPXDP_CTR_BANNED, SIPXDP_ACT_DROP);
}

#endif /* SIPXDP_TRUSTED_H */
