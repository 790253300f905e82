/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Bans. Automatic ones (a scanner pattern, a rate limit, auth failures) are
 * addresses (IPv6 cut to sip.ipv6_prefix) in the LRU
 * maps bans4/bans6 behind a hint bitmap, so an unbanned source costs one
 * array read; manual ones (`sipxdp ban add`) are prefixes, looked up only
 * while there are any. Each packet compares the ban's expiry time with the
 * clock, so a ban ends by itself: no userspace sweeper is needed.
 */
#ifndef SIPXDP_BANS_H
#define SIPXDP_BANS_H

#include "sipxdp/keys.h"

/* A ban in force at `now` (expires_ns 0: until removed). */
static __always_inline int ban_in_force(const struct sipxdp_ban *b, __u64 now)
{
	return !b->expires_ns || b->expires_ns > now;
}

static __always_inline int ban_live(struct sipxdp_ban *b, __u64 now)
{
	if (!ban_in_force(b, now))
		return 0;
	__sync_fetch_and_add(&b->hits, 1);
	return 1;
}

/* An IPv6 address cut to its first plen bits. */
static __always_inline void mask6(__u8 *out, const __u8 *in, __u32 plen)
{
	__u64 w[2];

	__builtin_memcpy(w, in, 16);
	if (plen < 128) {
		if (plen <= 64) {
			w[1] = 0;
			w[0] = plen ? w[0] & bpf_cpu_to_be64(~0ull << (64 - plen)) : 0;
		} else {
			w[1] &= bpf_cpu_to_be64(~0ull << (128 - plen));
		}
	}
	__builtin_memcpy(out, w, 16);
}

/* How many bits of an IPv6 source make one source for automatic bans, rate
 * limits and auth failures (sip.ipv6_prefix).
 */
static __always_inline __u32 v6_prefix(__u32 gen)
{
	struct sipxdp_sip_cfg *cfg = bpf_map_lookup_elem(&sip_cfg, &gen);
	__u32 plen = cfg ? cfg->v6_prefix : 128;

	return plen >= 1 && plen <= 128 ? plen : 128;
}

/* The packet's source (destination with `use_dst`) address as one source
 * is counted and banned: IPv4 as is (first 4 bytes), IPv6 cut to v6_plen.
 */
static __always_inline void source_addr(__u8 *out, const struct pkt *p, int use_dst, __u32 v6_plen)
{
	if (p->family == 4)
		__builtin_memcpy(out, use_dst ? &p->dst.v4 : &p->src.v4, 4);
	else
		mask6(out, use_dst ? p->dst.v6 : p->src.v6, v6_plen);
}

static __always_inline __u32 fold6(const __u8 *a)
{
	__u32 w[4];

	__builtin_memcpy(w, a, 16);
	return w[0] ^ (w[1] * 0x85ebca6bu) ^ (w[2] * 0xc2b2ae35u) ^ (w[3] * 0x27d4eb2fu);
}

static __always_inline __u32 addr_hash(__u32 word)
{
	return (word * 0x9e3779b1u) >> (32 - SIPXDP_HINT_SHIFT);
}

/* The key of an automatic ban of the packet's source (or, with `use_dst`,
 * destination: the egress program bans the address it answers).
 */
static __always_inline void *auto_ban_key(const struct pkt *p, int use_dst, __u32 gen,
					  struct sipxdp_ban6_key *k6, __u32 *hash)
{
	if (p->family == 4) {
		const __be32 *a = use_dst ? &p->dst.v4 : &p->src.v4;

		*hash = addr_hash(*a);
		return (void *)a;
	}
	mask6(k6->addr, use_dst ? p->dst.v6 : p->src.v6, v6_prefix(gen));
	*hash = addr_hash(fold6(k6->addr));
	return k6;
}

#define BANNED_AUTO 1	/* a pattern, a rate limit, auth failures */
#define BANNED_MANUAL 2 /* sipxdp ban add: the operator's word, over learned trust too */

/* 0, or how the packet's source is banned. */
static __always_inline int is_banned(const struct pkt *p, const struct sipxdp_state *st, __u32 gen)
{
	struct sipxdp_ban6_key k6;
	struct sipxdp_ban *b;
	struct hint_bits *hint = hints(&ban_hint);
	__u32 hash;
	void *key = auto_ban_key(p, 0, gen, &k6, &hash);
	int found = 0;
	__u64 now;

	/* An expired entry is left alone: deleting it here could delete the
	 * fresh ban another CPU just wrote for the same source. The LRU
	 * recycles it, and `sipxdp bans` hides it.
	 */
	if (!hint || hint_test(hint, hash)) {
		b = bpf_map_lookup_elem(p->family == 4 ? (void *)&bans4 : (void *)&bans6, key);
		if (b && ban_live(b, bpf_ktime_get_coarse_ns()))
			found = BANNED_AUTO;
	}
	/* Manual bans are looked up while there are any (even for a source
	 * banned automatically: they outrank learned trust).
	 */
	if (!st->manual_bans)
		return found;
	now = bpf_ktime_get_coarse_ns();
	if (p->family == 4) {
		struct sipxdp_ban_lpm4 lk = {.prefixlen = 32};

		__builtin_memcpy(lk.addr, &p->src.v4, 4);
		b = bpf_map_lookup_elem(&ban_prefixes4, &lk);
	} else {
		struct sipxdp_ban_lpm6 lk = {.prefixlen = 128};

		__builtin_memcpy(lk.addr, p->src.v6, 16);
		b = bpf_map_lookup_elem(&ban_prefixes6, &lk);
	}
	return b && ban_live(b, now) ? BANNED_MANUAL : found;
}

/* The live automatic ban of the packet's source (destination with
 * `use_dst`), or NULL. */
static __always_inline struct sipxdp_ban *auto_ban(const struct pkt *p, int use_dst, __u32 gen)
{
	struct sipxdp_ban6_key k6;
	struct sipxdp_ban *b;
	__u32 hash;
	void *key = auto_ban_key(p, use_dst, gen, &k6, &hash);

	b = bpf_map_lookup_elem(p->family == 4 ? (void *)&bans4 : (void *)&bans6, key);
	return b && ban_in_force(b, bpf_ktime_get_coarse_ns()) ? b : NULL;
}

/* Each program has its own copy of the global function (one object, two
 * programs: a global symbol may be defined once). */
#ifdef SIPXDP_DEFINE_MAPS
#define SIPXDP_BAN_ADDR sipxdp_ban_addr_in
#else
#define SIPXDP_BAN_ADDR sipxdp_ban_addr_out
#endif

/*
 * Bans the packet's source (destination with `use_dst`) for ban_ns; reason:
 * the counter slot of what banned it. IPv6 by its sip.ipv6_prefix. A live
 * ban that ends later is kept (a shorter one never replaces it); returns 1
 * when the ban was made. A global function, verified once.
 */
__noinline int SIPXDP_BAN_ADDR(const struct pkt *p, int use_dst, __u32 gen, __u64 ban_ns,
			       __u32 reason)
{
	__u64 now = bpf_ktime_get_coarse_ns();
	struct hint_bits *hint = hints(&ban_hint);
	struct sipxdp_ban *old, *b;
	struct scratch *s;
	__u32 hash, zero = 0;
	void *key;

	s = bpf_map_lookup_elem(&scratch, &zero);
	if (!p || !s)
		return 0;
	gen &= 1;
	key = auto_ban_key(p, use_dst, gen, &s->ban_k6, &hash);
	old = bpf_map_lookup_elem(p->family == 4 ? (void *)&bans4 : (void *)&bans6, key);
	if (old && ban_in_force(old, now + ban_ns)) /* it outlasts the new one */
		return 0;
	b = &s->ban;
	__builtin_memset(b, 0, sizeof(*b));
	b->expires_ns = now + ban_ns;
	b->since_ns = now;
	b->reason = reason;
	b->plen = p->family == 4 ? 32 : v6_prefix(gen);
	if (hint)
		hint_set(hint, hash);
	bpf_map_update_elem(p->family == 4 ? (void *)&bans4 : (void *)&bans6, key, b, BPF_ANY);
	return 1;
}

static __always_inline int ban_addr(const struct pkt *p, int use_dst, __u32 gen, __u64 ban_ns,
				    __u32 reason)
{
	return SIPXDP_BAN_ADDR(p, use_dst, gen, ban_ns, reason);
}

static __always_inline void ban_source(const struct pkt *p, __u32 gen, __u64 ban_ns, __u32 reason)
{
	ban_addr(p, 0, gen, ban_ns, reason);
}

#endif /* SIPXDP_BANS_H */
