/* SPDX-License-Identifier: GPL-2.0 */
/*
 * SIP request rate limits (sip.rate_limits), before the scanner search: the
 * request's method, from its first bytes, picks the limits that count it;
 * each limit keeps a token bucket per source (IPv4 address, IPv6 prefix of
 * sip.ipv6_prefix bits) in rl_state. Credit is time: a request costs
 * cost_ns (per_seconds / requests) and credit grows with the clock up to
 * burst_ns (per_seconds), so `requests` pass at once and then one per
 * cost_ns. Responses are never counted; over TCP, a request is counted when
 * a segment starts with one. Over the limit the request drops on the
 * limit's counter and, with ban_seconds, its source is banned.
 */
#ifndef SIPXDP_RATELIMIT_H
#define SIPXDP_RATELIMIT_H

#include "sipxdp/bans.h"
#include "sipxdp/counters.h"

#define SIP_HEAD 16 /* request bytes read: "SUBSCRIBE sip:x" fits */

/* The first n bytes of s as a little-endian word (folded at compile time). */
static __always_inline __u64 lit(const char *s, int n)
{
	__u64 w = 0;

	for (int i = 0; i < n && i < 8; i++)
		w |= (__u64)(__u8)s[i] << (8 * i);
	return w;
}

static __always_inline __u64 low_bytes(__u64 w, int n)
{
	return n >= 8 ? w : w & ((1ull << (8 * n)) - 1);
}

/* Whether the request starts with `name` and a space. */
static __always_inline int starts(__u64 w0, __u64 w1, const char *name, int n)
{
	/* name + ' ' is n + 1 bytes: up to 8 in w0, the rest in w1 */
	char t[16] = {};

	for (int i = 0; i < n; i++)
		t[i] = name[i];
	t[n] = ' ';
	if (n + 1 <= 8)
		return low_bytes(w0, n + 1) == lit(t, n + 1);
	return w0 == lit(t, 8) && low_bytes(w1, n + 1 - 8) == lit(t + 8, n + 1 - 8);
}

/* enum sipxdp_sip_method of a request's first bytes, or -1 (a response, or not SIP). */
static __always_inline int sip_method(const __u8 *b)
{
	__u64 w0, w1;

	__builtin_memcpy(&w0, b, 8);
	__builtin_memcpy(&w1, b + 8, 8);
	if ((w0 & 0xffffffffull) == lit("SIP/", 4))
		return -1;
#define SIPXDP_X_MATCH(id, bit, name)                                                              \
	if (SIPXDP_M_##id != SIPXDP_M_OTHER && starts(w0, w1, name, sizeof(name) - 1))             \
		return SIPXDP_M_##id;
	SIPXDP_SIP_METHODS(SIPXDP_X_MATCH)
#undef SIPXDP_X_MATCH
	/* Another method: a token of capitals, a space and a SIP URI. */
	for (int i = 0; i < SIP_HEAD - 5; i++) {
		__u8 c = b[i];

		if (c == ' ')
			return i > 0 && b[i + 1] == 's' && b[i + 2] == 'i' && b[i + 3] == 'p' &&
					       (b[i + 4] == ':' || b[i + 4] == 's')
				       ? SIPXDP_M_OTHER
				       : -1;
		if (c < 'A' || c > 'Z')
			return -1;
	}
	return -1;
}

/* The rate-limit key of the packet's source for limit slot `limit`. */
static __always_inline void rl_key(struct sipxdp_rl_key *k, const struct pkt *p, __u32 limit,
				   __u32 v6_plen)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->limit = limit;
	k->family = p->family;
	if (p->family == 4)
		__builtin_memcpy(k->addr, &p->src.v4, 4);
	else
		mask6(k->addr, p->src.v6, v6_plen);
}

/* Takes one request's credit from the source's bucket; 0 when it had none. */
static __always_inline int rl_take(const struct sipxdp_rate_limit *lim, struct sipxdp_rl_key *k,
				   __u64 now)
{
	struct sipxdp_rl_state *st = bpf_map_lookup_elem(&rl_state, k), fresh;
	__u64 credit;

	if (!st) {
		fresh.credit_ns = lim->burst_ns - lim->cost_ns;
		fresh.last_ns = now;
		bpf_map_update_elem(&rl_state, k, &fresh, BPF_ANY);
		return 1;
	}
	credit = st->credit_ns;
	if (now > st->last_ns) {
		credit += now - st->last_ns;
		st->last_ns = now;
	}
	if (credit > lim->burst_ns)
		credit = lim->burst_ns;
	if (credit < lim->cost_ns) {
		st->credit_ns = credit;
		return 0;
	}
	st->credit_ns = credit - lim->cost_ns;
	return 1;
}

/*
 * The counter slot of the limit a request from this source is over (it
 * drops there), or 0. A global function, verified once on its own.
 */
__noinline __u32 sipxdp_rate_limit(struct xdp_md *ctx, const struct pkt *p, __u32 off, __u32 len,
				   __u32 gen)
{
	struct sipxdp_sip_cfg *cfg;
	struct sipxdp_rl_key k;
	__u8 head[SIP_HEAD];
	__u32 bit, n, over = 0;
	__u64 now;
	int m;

	gen &= 1;
	cfg = bpf_map_lookup_elem(&sip_cfg, &gen);
	if (!p || !cfg || !cfg->nlimits || len < SIP_HEAD)
		return 0;
	if (bpf_xdp_load_bytes(ctx, off, head, SIP_HEAD) < 0)
		return 0;
	m = sip_method(head);
	if (m < 0)
		return 0;
	bit = 1u << m;
	n = cfg->nlimits;
	now = bpf_ktime_get_coarse_ns();
	for (__u32 i = 0; i < SIPXDP_MAX_RATE_LIMITS; i++) {
		__u32 idx = gen * SIPXDP_MAX_RATE_LIMITS + i;
		struct sipxdp_rate_limit *lim;

		if (i >= n)
			break;
		lim = bpf_map_lookup_elem(&rate_limits, &idx);
		if (!lim || !(lim->methods & bit))
			continue;
		rl_key(&k, p, lim->counter, cfg->v6_prefix);
		/* Every limit that counts the request takes its credit, so each
		 * limit sees the whole rate; the first one over decides.
		 */
		if (!rl_take(lim, &k, now) && !over) {
			over = lim->counter;
			if (lim->ban_ns) {
				ban_source(p, gen, lim->ban_ns, lim->counter);
				count(lim->ban_counter, p->len);
			}
		}
	}
	return over;
}

#endif /* SIPXDP_RATELIMIT_H */
