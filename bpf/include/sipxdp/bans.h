/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Bans. Automatic ones (a scanner pattern) are exact addresses in the LRU
 * maps bans4/bans6 behind a hint bitmap, so an unbanned source costs one
 * array read; manual ones (`sipxdp ban add`) are prefixes, looked up only
 * while there are any. Each packet compares the ban's expiry time with the
 * clock, so a ban ends by itself: no userspace sweeper is needed.
 */
#ifndef SIPXDP_BANS_H
#define SIPXDP_BANS_H

#include "sipxdp/keys.h"

static __always_inline int ban_live(struct sipxdp_ban *b, __u64 now)
{
	if (b->expires_ns && b->expires_ns <= now)
		return 0;
	__sync_fetch_and_add(&b->hits, 1);
	return 1;
}

static __always_inline __u32 ban_hash(const struct pkt *p)
{
	return (addr_word(p, 0) * 0x9e3779b1u) >> (32 - SIPXDP_HINT_SHIFT);
}

static __always_inline int is_banned(const struct pkt *p, const struct sipxdp_state *st)
{
	struct sipxdp_ban6_key k6;
	struct sipxdp_ban *b;
	void *map = &bans4, *key = (void *)&p->src.v4;
	struct hint_bits *hint = hints(&ban_hint);
	__u64 now;

	if (hint && !hint_test(hint, ban_hash(p)))
		goto manual;
	/* A small key: the per-packet hash is of 4 bytes for IPv4. */
	if (p->family == 6) {
		__builtin_memcpy(k6.addr, p->src.v6, 16);
		map = &bans6;
		key = &k6;
	}
	/* An expired entry is left alone: deleting it here could delete the
	 * fresh ban another CPU just wrote for the same source. The LRU
	 * recycles it, and `sipxdp bans` hides it.
	 */
	b = bpf_map_lookup_elem(map, key);
	if (b && ban_live(b, bpf_ktime_get_coarse_ns()))
		return 1;
manual:
	if (!st->manual_bans)
		return 0;
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
	return b && ban_live(b, now);
}

static __always_inline void ban_source(const struct pkt *p, __u64 ban_ns, __u32 reason)
{
	__u64 now = bpf_ktime_get_coarse_ns();
	struct sipxdp_ban b = {.expires_ns = now + ban_ns, .since_ns = now, .reason = reason};
	struct sipxdp_ban6_key k6;
	struct hint_bits *hint = hints(&ban_hint);

	if (hint)
		hint_set(hint, ban_hash(p));
	if (p->family == 4) {
		bpf_map_update_elem(&bans4, &p->src.v4, &b, BPF_ANY);
	} else {
		__builtin_memcpy(k6.addr, p->src.v6, 16);
		bpf_map_update_elem(&bans6, &k6, &b, BPF_ANY);
	}
}

#endif /* SIPXDP_BANS_H */
