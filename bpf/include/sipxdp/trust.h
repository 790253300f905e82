/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Learned trust. When the server answers a REGISTER with a 2xx, the egress
 * program (responses.h) records the phone's flow as seen from here: its
 * address, source port and transport, until the binding expires (capped by
 * sip.learned_trust.max_seconds). Packets of that flow are exempt from rate
 * limits and from automatic bans of their address, so a flood or a password
 * guesser behind the same NAT address gets banned while the phone that
 * registered keeps working. Keyed by port, not address alone: a neighbour
 * behind the same address uses other ports. A hint bitmap by address keeps
 * the cost of the lookup off every other source. The ingress side (the
 * lookup and its stage) is in trusted.h.
 */
#ifndef SIPXDP_TRUST_H
#define SIPXDP_TRUST_H

#include "sipxdp/bans.h"
#include "sipxdp/counters.h"

/* The trusted-flow key of a packet from the phone (ingress) or to it (egress). */
static __always_inline void trust_key(struct sipxdp_trust_key *k, const struct pkt *p, int out)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->family = p->family;
	k->proto = p->proto;
	k->port = out ? p->dport : p->sport;
	if (p->family == 4)
		__builtin_memcpy(k->addr, out ? &p->dst.v4 : &p->src.v4, 4);
	else
		__builtin_memcpy(k->addr, out ? p->dst.v6 : p->src.v6, 16);
}

static __always_inline __u32 trust_hash(const struct pkt *p, int out)
{
	return addr_hash(addr_word(p, out));
}

/* Whether the packet's source address may have learned trust (one bit test). */
static __always_inline int trust_maybe(const struct pkt *p)
{
	struct hint_bits *hint = hints(&trust_hint);

	return hint && hint_test(hint, trust_hash(p, 0));
}

/* Live: within the registration's lifetime, and within the live policy's
 * max_seconds of the last 2xx (a lowered cap applies at once). */
static __always_inline int trust_live(const struct sipxdp_trust *t,
				      const struct sipxdp_sip_cfg *cfg, __u64 now)
{
	return t->expires_ns > now && t->refreshed_ns + cfg->trust_max_ns > now;
}

/* Egress: the server accepted the phone's registration for `expires_s`
 * seconds (0: the binding is removed, and so is the trust).
 */
static __always_inline void learn_trust(const struct pkt *p, __u32 expires_s, __u64 max_ns)
{
	struct sipxdp_trust_key k;
	struct sipxdp_trust t = {}, *old;
	struct hint_bits *hint = hints(&trust_hint);
	__u64 now = bpf_ktime_get_coarse_ns(), life = (__u64)expires_s * NSEC_PER_SEC;

	trust_key(&k, p, 1);
	if (!expires_s) {
		bpf_map_delete_elem(&trust_learned, &k);
		return;
	}
	if (life > max_ns)
		life = max_ns;
	old = bpf_map_lookup_elem(&trust_learned, &k);
	t.since_ns = old && old->expires_ns > now ? old->since_ns : now;
	t.hits = old ? old->hits : 0;
	t.expires_ns = now + life;
	t.refreshed_ns = now;
	t.fails = 0; /* it just proved its password */
	if (hint)
		hint_set(hint, trust_hash(p, 1));
	bpf_map_update_elem(&trust_learned, &k, &t, BPF_ANY);
	count(SIPXDP_CTR_TRUST_LEARNED, p->len);
}

#endif /* SIPXDP_TRUST_H */
