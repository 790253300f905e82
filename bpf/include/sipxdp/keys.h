/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Keys built from a packet, once each: the flow of a packet as this host
 * sees it, the datagram of a fragment, the longest-prefix lookups of an
 * address, and the hint bitmaps' hashes.
 */
#ifndef SIPXDP_KEYS_H
#define SIPXDP_KEYS_H

#include "sipxdp/maps.h"
#include "sipxdp/parse.h"

/* The flow key of a packet as this host sees it: `out` for packets it sends. */
static __always_inline void flow_key(struct sipxdp_flow_key *k, const struct pkt *p, int out)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->family = p->family;
	k->proto = p->proto;
	k->lport = out ? p->sport : p->dport;
	k->rport = out ? p->dport : p->sport;
	if (p->family == 4) {
		__builtin_memcpy(k->laddr, out ? &p->src.v4 : &p->dst.v4, 4);
		__builtin_memcpy(k->raddr, out ? &p->dst.v4 : &p->src.v4, 4);
	} else {
		__builtin_memcpy(k->laddr, out ? p->src.v6 : p->dst.v6, 16);
		__builtin_memcpy(k->raddr, out ? p->dst.v6 : p->src.v6, 16);
	}
}

/* The datagram a fragment belongs to. */
static __always_inline void frag_key(const struct pkt *p, struct sipxdp_frag_key *k)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->id = p->frag_id;
	k->family = p->family;
	k->proto = p->proto;
	if (p->family == 4) {
		__builtin_memcpy(k->src, &p->src.v4, 4);
		__builtin_memcpy(k->dst, &p->dst.v4, 4);
	} else {
		__builtin_memcpy(k->src, p->src.v6, 16);
		__builtin_memcpy(k->dst, p->dst.v6, 16);
	}
}

/* The value of the longest prefix of generation gen and direction dir in
 * lpm4/lpm6 that holds the packet's source (or, with `use_dst`, destination)
 * address; 0 when none does.
 */
static __always_inline __u32 lpm_value(const struct pkt *p, __u32 gen, __u32 dir, int use_dst)
{
	__u32 *v;

	if (p->family == 4) {
		struct sipxdp_lpm4_key k = {
			.prefixlen = SIPXDP_LPM_HDR_BITS + 32,
			.gen = gen,
			.dir = dir,
		};

		__builtin_memcpy(k.addr, use_dst ? &p->dst.v4 : &p->src.v4, 4);
		v = bpf_map_lookup_elem(&lpm4, &k);
	} else {
		struct sipxdp_lpm6_key k = {
			.prefixlen = SIPXDP_LPM_HDR_BITS + 128,
			.gen = gen,
			.dir = dir,
		};

		__builtin_memcpy(k.addr, use_dst ? p->dst.v6 : p->src.v6, 16);
		v = bpf_map_lookup_elem(&lpm6, &k);
	}
	return v ? *v : 0;
}

/* A 32-bit summary of the packet's source (or destination) address: IPv4 as
 * is, IPv6 folded.
 */
static __always_inline __u32 addr_word(const struct pkt *p, int use_dst)
{
	__u32 w[4];

	if (p->family == 4)
		return use_dst ? p->dst.v4 : p->src.v4;
	__builtin_memcpy(w, use_dst ? p->dst.v6 : p->src.v6, 16);
	return w[0] ^ (w[1] * 0x85ebca6bu) ^ (w[2] * 0xc2b2ae35u) ^ (w[3] * 0x27d4eb2fu);
}

static __always_inline struct hint_bits *hints(void *map)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(map, &zero);
}

static __always_inline int hint_test(const struct hint_bits *h, __u32 bit)
{
	return (h->bits[(bit / 64) & (SIPXDP_HINT_BITS / 64 - 1)] & (1ull << (bit % 64))) != 0;
}

static __always_inline void hint_set(struct hint_bits *h, __u32 bit)
{
	__sync_fetch_and_or(&h->bits[(bit / 64) & (SIPXDP_HINT_BITS / 64 - 1)], 1ull << (bit % 64));
}

#endif /* SIPXDP_KEYS_H */
