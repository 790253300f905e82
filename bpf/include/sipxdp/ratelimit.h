/* SPDX-License-Identifier: GPL-2.0 */
/*
 * SIP request rate limits (sip.rate_limits), before the scanner search: the
 * requests a packet carries pick the limits that count them; each limit
 * keeps a token bucket per source (IPv4 address, IPv6 prefix of
 * sip.ipv6_prefix bits) in rl_state. Credit is time: a request costs
 * cost_ns (per_seconds / requests) and credit grows with the clock up to
 * burst_ns (per_seconds), so `requests` pass at once and then one per
 * cost_ns. Responses are never counted.
 *
 * Which requests a packet carries, read as a SIP server reads them:
 *   UDP  one message per datagram: the method after any leading CR, LF,
 *        spaces or NULs (keep-alives), case folded (servers accept
 *        "register" too).
 *   TCP  every request line in the segment (a line ending in " SIP/2.0",
 *        its method at the line's start), so requests pipelined in one
 *        write are each counted; a segment whose first line is a request
 *        line's tail counts for every limit (its method was in the segment
 *        before), and one that ends in a request line's head counts by it.
 * Over a limit the packet drops (a TCP segment with all its requests: the
 * sender retransmits, and meets the empty bucket again) on the limit's
 * counter and, with ban_seconds, its source is banned.
 */
#ifndef SIPXDP_RATELIMIT_H
#define SIPXDP_RATELIMIT_H

#include "sipxdp/bans.h"
#include "sipxdp/counters.h"
#include "sipxdp/trusted.h"

#define RL_MAX_BYTES SIPXDP_SCAN_MAX /* TCP payload bytes searched for request lines */
#define RL_ANY SIPXDP_M_NUM	     /* tally slot: a request of unknown method, every limit */
#define RL_SLOTS (SIPXDP_M_NUM + 1)  /* 16: a mask bounds the index */

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

/* Whether the (upper-cased) bytes start with `name` and a space. */
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

static __always_inline __u8 rl_byte(const struct scratch *s, __u32 i)
{
	return s->buf[i & SCAN_MASK];
}

static __always_inline __u8 upper(__u8 c)
{
	return c >= 'a' && c <= 'z' ? c - 32 : c;
}

static __always_inline int is_blank(__u8 c)
{
	return c == '\r' || c == '\n' || c == ' ' || c == '\t' || c == 0;
}

/*
 * enum sipxdp_sip_method of the request starting at scratch offset `start`
 * (after up to 8 blank bytes), or -1: a response, or not a request. A global
 * function, verified once.
 */
__noinline int sipxdp_method_at(__u32 start)
{
	__u32 zero = 0, at;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	__u64 w0 = 0, w1 = 0;

	if (!s)
		return -1;
	at = start & SCAN_MASK;
	for (int k = 0; k < 8; k++)
		if (is_blank(rl_byte(s, at)))
			at++;
	for (int k = 0; k < 8; k++) {
		w0 |= (__u64)upper(rl_byte(s, at + k)) << (8 * k);
		w1 |= (__u64)upper(rl_byte(s, at + 8 + k)) << (8 * k);
	}
	if ((w0 & 0xffffffffull) == lit("SIP/", 4))
		return -1;
#define SIPXDP_X_MATCH(id, bit, name)                                                              \
	if (SIPXDP_M_##id != SIPXDP_M_OTHER && starts(w0, w1, name, sizeof(name) - 1))             \
		return SIPXDP_M_##id;
	SIPXDP_SIP_METHODS(SIPXDP_X_MATCH)
#undef SIPXDP_X_MATCH
	/* Another method: a token of letters, a space and a SIP URI. */
	for (int i = 0; i < 11; i++) {
		__u8 c = upper(rl_byte(s, at + i));

		if (c == ' ')
			return i > 0 && upper(rl_byte(s, at + i + 1)) == 'S' &&
					       upper(rl_byte(s, at + i + 2)) == 'I' &&
					       upper(rl_byte(s, at + i + 3)) == 'P' &&
					       (rl_byte(s, at + i + 4) == ':' ||
						upper(rl_byte(s, at + i + 4)) == 'S')
				       ? SIPXDP_M_OTHER
				       : -1;
		if (c < 'A' || c > 'Z')
			return -1;
	}
	return -1;
}

/* One request of method m (RL_ANY: unknown); m < 0 is none. The barrier
 * keeps the bound check on the register the index is made of. */
static __always_inline void tally(struct scratch *s, int m)
{
	__u32 i = (__u32)m;

	asm volatile("" : "+r"(i));
	if (i < RL_SLOTS)
		s->rl_tally[i]++;
}

/* Whether the line ending at the '\n' at i ends in " SIP/2.0\r" (case folded). */
static __always_inline int request_line_end(const struct scratch *s, __u32 i)
{
	static const char tail[] = " SIP/2.0\r";
	int same = i >= 9;

	for (int k = 0; k < 9; k++) {
		__u8 c = rl_byte(s, i - 9 + k);

		same &= upper(c) == (__u8)tail[k];
	}
	return same;
}

static long rl_step(__u64 idx, void *data)
{
	__u32 zero = 0, i;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	__u64 w, x;
	int m;

	if (!s)
		return 1;
	i = s->rl_pos;
	if (i >= s->rl_n)
		return 1;
	/* Eight bytes at a time while none is a '\n' (zeroes follow the copy). */
	__builtin_memcpy(&w, &s->buf[i & SCAN_MASK], 8);
	x = w ^ 0x0a0a0a0a0a0a0a0aull;
	if (!((x - 0x0101010101010101ull) & ~x & 0x8080808080808080ull)) {
		s->rl_pos = i + 8;
		return 0;
	}
	s->rl_pos = i + 1;
	if (rl_byte(s, i) != '\n')
		return 0;
	if (request_line_end(s, i)) {
		m = sipxdp_method_at(s->rl_line_start);
		/* The first line with no known method at its start: the tail
		 * of a request line begun in the segment before ("ISTER sip:"
		 * reads as another method). It counts for every limit. */
		if ((m < 0 || m == SIPXDP_M_OTHER) && s->rl_lines == 0)
			m = RL_ANY;
		tally(s, m);
	}
	s->rl_lines++;
	s->rl_line_start = i + 1;
	return 0;
}

/* The rate-limit key of the packet's source for limit slot `limit`. */
static __always_inline void rl_key(struct sipxdp_rl_key *k, const struct pkt *p, __u32 limit,
				   __u32 v6_plen)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->limit = limit;
	k->family = p->family;
	source_addr(k->addr, p, 0, v6_plen);
}

/* Takes n requests' credit from the source's bucket; 0 when it had not
 * enough (then nothing is taken). */
static __always_inline int rl_take(const struct sipxdp_rate_limit *lim, struct sipxdp_rl_key *k,
				   __u64 now, __u32 n)
{
	struct sipxdp_rl_state *st = bpf_map_lookup_elem(&rl_state, k), fresh;
	__u64 credit, need = lim->cost_ns * n;

	if (!st) {
		if (need > lim->burst_ns) {
			fresh.credit_ns = lim->burst_ns;
			fresh.last_ns = now;
			bpf_map_update_elem(&rl_state, k, &fresh, BPF_ANY);
			return 0;
		}
		fresh.credit_ns = lim->burst_ns - need;
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
	if (credit < need) {
		st->credit_ns = credit;
		return 0;
	}
	st->credit_ns = credit - need;
	return 1;
}

/*
 * The counter slot of the limit the packet's requests put its source over
 * (it drops there), or 0. A global function, verified once on its own.
 */
__noinline __u32 sipxdp_rate_limit(struct xdp_md *ctx, const struct pkt *p, __u32 off, __u32 len,
				   __u32 gen)
{
	struct sipxdp_sip_cfg *cfg;
	struct scratch *s;
	__u32 zero = 0, n, over = 0;
	__u64 now;
	int m;

	gen &= 1;
	cfg = bpf_map_lookup_elem(&sip_cfg, &gen);
	s = bpf_map_lookup_elem(&scratch, &zero);
	if (!p || !cfg || !s || !cfg->nlimits || len == 0)
		return 0;
	/* A registered phone's flow is never limited (trust.h). */
	if (sipxdp_trusted_flow(p, gen))
		return 0;
	__builtin_memset(s->rl_tally, 0, sizeof(s->rl_tally));
	if (p->proto == IPPROTO_TCP) {
		n = len < RL_MAX_BYTES ? len : RL_MAX_BYTES;
		if (n < 1 || bpf_xdp_load_bytes(ctx, off, s->buf, n) < 0)
			return 0;
		/* Zeroes after the copy: no stale byte is taken for a line end
		 * or completes a method. */
		for (int k = 0; k < 32; k++)
			s->buf[(n + k) & SCAN_MASK] = 0;
		s->rl_n = n;
		s->rl_pos = 0;
		s->rl_line_start = 0;
		s->rl_lines = 0;
		bpf_loop(RL_MAX_BYTES, rl_step, NULL, 0);
		/* A last line cut at the segment's end: a request begun here,
		 * when its method and the space after it are here. */
		if (s->rl_line_start < n) {
			m = sipxdp_method_at(s->rl_line_start);
			tally(s, m);
		}
	} else {
		/* One message per datagram: its first 32 bytes, zeroes after. */
		n = len < 32 ? len : 32;
		__builtin_memset(s->buf, 0, 32);
		if (n < 1 || bpf_xdp_load_bytes(ctx, off, s->buf, n) < 0)
			return 0;
		m = sipxdp_method_at(0);
		tally(s, m);
	}
	now = bpf_ktime_get_coarse_ns();
	for (__u32 i = 0; i < SIPXDP_MAX_RATE_LIMITS; i++) {
		__u32 idx = gen * SIPXDP_MAX_RATE_LIMITS + i, reqs = s->rl_tally[RL_ANY];
		struct sipxdp_rate_limit *lim;

		if (i >= cfg->nlimits)
			break;
		lim = bpf_map_lookup_elem(&rate_limits, &idx);
		if (!lim)
			continue;
		for (int b = 0; b < SIPXDP_M_NUM; b++)
			if (lim->methods & (1u << b))
				reqs += s->rl_tally[b];
		if (!reqs)
			continue;
		rl_key(&s->rl_key, p, lim->counter, cfg->v6_prefix);
		/* Every limit that counts the requests takes their credit, so each
		 * limit sees the whole rate; the first one over decides.
		 */
		if (!rl_take(lim, &s->rl_key, now, reqs) && !over) {
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
