// SPDX-License-Identifier: GPL-2.0
/* sipxdp XDP ingress: parse -> built-in paths -> policy lookup -> verdict. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "sipxdp/abi.h"
#include "sipxdp/parse.h"

/* The generation live now. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sipxdp_state);
} state SEC(".maps");

/* Per-generation policy header: default action, dimensions in use. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SIPXDP_GENS);
	__type(key, __u32);
	__type(value, struct sipxdp_policy_hdr);
} policy_hdr SEC(".maps");

/* Class of the rules matching a protocol+dport (or ICMP type), or a sport. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, SIPXDP_PORT_CLASS_ENTRIES);
	__type(key, __u32);
	__type(value, __u32);
} port_class SEC(".maps");

/* Class of the rules matching an IPv4 source or destination prefix. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 20);
	__type(key, struct sipxdp_lpm4_key);
	__type(value, __u32);
} lpm4 SEC(".maps");

/* Class of the rules matching an IPv6 source or destination prefix. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 20);
	__type(key, struct sipxdp_lpm6_key);
	__type(value, __u32);
} lpm6 SEC(".maps");

/* Intersection of two classes (absent: no rule matches both). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 20);
	__type(key, struct sipxdp_comb_key);
	__type(value, __u32);
} comb SEC(".maps");

/* First rule of a final class: action, counter slot, flags. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, SIPXDP_GENS *SIPXDP_MAX_CLASSES);
	__type(key, __u32);
	__type(value, struct sipxdp_rule);
} cls_rule SEC(".maps");

/* Packets and bytes per built-in path and per rule slot. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SIPXDP_CTR_MAX);
	__type(key, __u32);
	__type(value, struct sipxdp_counter);
} counters SEC(".maps");

/* Compiled policy description (JSON) per generation; read by the loader only. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SIPXDP_GENS *SIPXDP_MANIFEST_CHUNKS);
	__type(key, __u32);
	__type(value, struct sipxdp_manifest_chunk);
} manifest SEC(".maps");

/* Scanner-pattern settings per generation. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SIPXDP_GENS);
	__type(key, __u32);
	__type(value, struct sipxdp_sip_cfg);
} sip_cfg SEC(".maps");

/* Scanner patterns per generation: [gen * SIPXDP_MAX_PATTERNS + i]. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SIPXDP_GENS *SIPXDP_MAX_PATTERNS);
	__type(key, __u32);
	__type(value, struct sipxdp_pattern);
} sip_patterns SEC(".maps");

/* Wu-Manber shift and candidate tables per generation. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SIPXDP_GENS);
	__type(key, __u32);
	__type(value, struct sipxdp_wm);
} sip_wm SEC(".maps");

struct scratch {
	__u8 buf[SIPXDP_SCAN_MAX + 8]; /* + 8: word reads at the last offset */
};

/* Per-CPU copy of the payload being searched. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

/* Sources banned for sending a scanner pattern; expiry checked per packet. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct sipxdp_ban_key);
	__type(value, struct sipxdp_ban);
} bans SEC(".maps");

/* Manual bans (sipxdp ban add), any prefix length. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, struct sipxdp_ban_lpm4);
	__type(value, struct sipxdp_ban);
} ban_prefixes4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, struct sipxdp_ban_lpm6);
	__type(value, struct sipxdp_ban);
} ban_prefixes6 SEC(".maps");

struct rcu_inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
};

/* Written by the loader after a generation flip: an update of a map-in-map
 * returns only after an RCU grace period, so once it returns no packet is
 * still being judged by the old generation and its structures may be reused.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct rcu_inner);
} rcu_sync SEC(".maps");

static __always_inline void count(__u32 slot, __u32 len)
{
	struct sipxdp_counter *c = bpf_map_lookup_elem(&counters, &slot);

	if (c) {
		c->packets++;
		c->bytes += len;
	}
}

/*
 * Bans. An expired ban is deleted by the first packet that finds it, so no
 * userspace sweeper is needed for correctness.
 */
static __always_inline int ban_live(struct sipxdp_ban *b, __u64 now)
{
	if (b->expires_ns && b->expires_ns <= now)
		return 0;
	__sync_fetch_and_add(&b->hits, 1);
	return 1;
}

static __always_inline int is_banned(const struct pkt *p, const struct sipxdp_state *st)
{
	struct sipxdp_ban_key k = {.family = p->family};
	struct sipxdp_ban *b;
	__u64 now = bpf_ktime_get_ns();

	if (p->family == 4)
		__builtin_memcpy(k.addr, &p->src.v4, 4);
	else
		__builtin_memcpy(k.addr, p->src.v6, 16);
	b = bpf_map_lookup_elem(&bans, &k);
	if (b) {
		if (ban_live(b, now))
			return 1;
		bpf_map_delete_elem(&bans, &k);
	}
	if (!st->manual_bans)
		return 0;
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

/*
 * SIP scanner matcher.
 *
 * Userspace compiles the patterns into a Wu-Manber table over 2-byte grams
 * (loader/src/compiler.cpp): the search window is as long as the shortest
 * pattern, m; for the gram that ends the window, shift[g] says how far the
 * window may move without skipping a match (up to m - 1 bytes at a time), and
 * shift[g] == 0 means some pattern's first m bytes may end here: cand[g]
 * names those patterns, which are then compared in full. Cost depends on the
 * payload length and m, not on the number of patterns. With ignore_case the
 * table holds every case variant of each gram, so the scan never folds; only
 * the full comparison does.
 *
 * The payload is first copied into a per-CPU buffer (bpf_xdp_load_bytes also
 * reads multi-buffer frames), so every read is a masked index into map
 * memory rather than a packet pointer the verifier must re-prove. The scan
 * runs in bpf_loop callbacks (inlined by the verifier), four window moves per
 * call; full comparisons are a global function, verified once.
 *
 * "headers" mode walks the header lines instead (finding newlines eight bytes
 * at a time), stops at the blank line that ends the headers, and scans only
 * User-Agent, From, To and Contact (and their compact forms).
 */
#define SCAN_MASK (SIPXDP_SCAN_MAX - 1)

static __always_inline __u8 fold(__u8 b)
{
	return (b >= 'A' && b <= 'Z') ? b + 32 : b;
}

/* 1 when pattern `idx` of `gen` starts at `start` and ends before `end`. */
__noinline int sipxdp_cmp(__u32 gen, __u32 idx, __u32 start, __u32 end, __u32 icase)
{
	__u32 zero = 0, key = (gen & 1) * SIPXDP_MAX_PATTERNS + (idx & (SIPXDP_MAX_PATTERNS - 1)),
	      k, len;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	struct sipxdp_pattern *pat = bpf_map_lookup_elem(&sip_patterns, &key);

	if (!s || !pat)
		return 0;
	len = pat->len;
	if (len > SIPXDP_MAX_PATTERN_LEN || start + len > end)
		return 0;
#pragma clang loop unroll(disable)
	for (k = 0; k < SIPXDP_MAX_PATTERN_LEN; k++) {
		__u8 b;

		if (k >= len)
			return 1;
		b = s->buf[(start + k) & SCAN_MASK];
		if (icase)
			b = fold(b);
		if (b != pat->bytes[k])
			return 0;
	}
	return 1;
}

/* Returns 1 + the index of a pattern in `mask` starting at `start`, or 0. */
__noinline int sipxdp_verify(__u32 gen, __u32 start, __u32 end, __u64 mask, __u32 icase)
{
	__u32 i;

#pragma clang loop unroll(disable)
	for (i = 0; i < SIPXDP_MAX_PATTERNS; i++) {
		if (!mask)
			return 0;
		if ((mask & 1) && sipxdp_cmp(gen, i, start, end, icase))
			return i + 1;
		mask >>= 1;
	}
	return 0;
}

struct wm_ctx {
	__u64 want; /* patterns that would still improve on `found` */
	__u32 gen;
	__u32 pos; /* index of the window's last byte */
	__u32 end;
	__u32 minlen;
	__u32 icase;
	int found;
};

/* Several patterns may occur in one packet: the first in the policy's list
 * takes it (as the first matching iptables rule would), so the search goes on
 * for patterns listed earlier than the best found so far.
 */
static __always_inline __u64 want_below(int found)
{
	return found ? (1ull << (found - 1)) - 1 : ~0ull;
}

static long wm_step(__u32 i, struct wm_ctx *c)
{
	__u32 zero = 0, gen = c->gen & 1, pos = c->pos, end = c->end;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	struct sipxdp_wm *wm = bpf_map_lookup_elem(&sip_wm, &gen);
	int k;

	if (!s || !wm)
		return 1;
#pragma unroll
	for (k = 0; k < 4; k++) {
		__u32 g;
		__u8 sh;

		if (pos >= end) {
			c->pos = pos;
			return 1;
		}
		g = ((__u32)s->buf[(pos - 1) & SCAN_MASK] << 8) | s->buf[pos & SCAN_MASK];
		sh = wm->shift[g & 0xffff];
		if (!sh) {
			__u64 mask =
				wm->masks[wm->cand[g & 0xffff] & (SIPXDP_WM_CANDS - 1)] & c->want;
			int r = mask ? sipxdp_verify(gen, pos + 1 - c->minlen, end, mask, c->icase)
				     : 0;

			if (r) {
				c->found = r;
				c->want = want_below(r);
				if (!c->want)
					return 1;
			}
			sh = 1;
		}
		pos += sh;
	}
	c->pos = pos;
	return 0;
}

/* Searches scratch[start, end) for the patterns in `want`: 1 + the lowest index found, or 0. */
__noinline int sipxdp_scan_range(__u32 gen, __u32 start, __u32 end, __u64 want)
{
	struct sipxdp_sip_cfg *cfg;
	struct wm_ctx c = {};

	gen &= 1;
	cfg = bpf_map_lookup_elem(&sip_cfg, &gen);
	if (!cfg || !cfg->npatterns || cfg->minlen < SIPXDP_MIN_PATTERN_LEN)
		return 0;
	if (end > SIPXDP_SCAN_MAX)
		end = SIPXDP_SCAN_MAX;
	c.want = want;
	c.gen = gen;
	c.pos = start + cfg->minlen - 1;
	c.end = end;
	c.minlen = cfg->minlen;
	c.icase = cfg->flags & SIPXDP_SIP_IGNORE_CASE;
	if (c.pos >= end)
		return 0;
	bpf_loop((end - c.pos) / 4 + 1, wm_step, &c, 0);
	return c.found;
}

/* Offset of the first '\n' in scratch[pos, end), or end. Eight bytes a step. */
__noinline __u32 sipxdp_find_nl(__u32 pos, __u32 end)
{
	__u32 zero = 0, k;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);

	if (!s)
		return end;
#pragma clang loop unroll(disable)
	for (k = 0; k < SIPXDP_SCAN_MAX / 8 + 1; k++) {
		__u64 w, x, t;
		__u32 at;

		if (pos >= end)
			return end;
		w = *(__u64 *)&s->buf[pos & SCAN_MASK];
		x = w ^ 0x0a0a0a0a0a0a0a0aull;
		t = (x - 0x0101010101010101ull) & ~x & 0x8080808080808080ull;
		if (t) {
			/* Lowest flagged byte is the first newline (little-endian word). */
			t &= -t;
			at = pos + 7 - (__u32)(((t >> 7) * 0x0706050403020100ull) >> 56);
			return at < end ? at : end;
		}
		pos += 8;
	}
	return end;
}

static __always_inline int header_wanted(const struct scratch *s, __u32 pos, __u32 end)
{
	__u64 w;
	__u32 n = end - pos;
	__u8 b0, b1;

	if (n < 2)
		return 0;
	b0 = fold(s->buf[pos & SCAN_MASK]);
	b1 = s->buf[(pos + 1) & SCAN_MASK];
	/* compact forms: f: t: m: */
	if ((b0 == 'f' || b0 == 't' || b0 == 'm') && (b1 == ':' || b1 == ' ' || b1 == '\t'))
		return 1;
	w = *(__u64 *)&s->buf[pos & SCAN_MASK] | 0x2020202020202020ull;
	/* little-endian words of "user-age", "contact:", "from:", "to:" (lowercased) */
	if (n >= 11 && w == 0x6567612d72657375ull) {
		__u8 c8 = fold(s->buf[(pos + 8) & SCAN_MASK]),
		     c9 = fold(s->buf[(pos + 9) & SCAN_MASK]);

		return c8 == 'n' && c9 == 't';
	}
	if (n >= 8 && (w & 0x00ffffffffffffffull) == 0x00746361746e6f63ull)
		return 1; /* "contact" */
	if (n >= 5 && (w & 0xffffffffull) == 0x6d6f7266ull)
		return 1; /* "from" */
	if (n >= 3 && (w & 0xffffull) == 0x6f74ull) {
		__u8 c2 = s->buf[(pos + 2) & SCAN_MASK];

		return c2 == ':' || c2 == ' ' || c2 == '\t';
	}
	return 0;
}

struct line_ctx {
	__u32 gen;
	__u32 pos; /* start of the current line */
	__u32 end;
	__u32 prev_wanted; /* for folded continuation lines */
	int found;
};

static long line_step(__u32 i, struct line_ctx *c)
{
	__u32 zero = 0, pos = c->pos, end = c->end, eol;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	__u8 b0;
	int wanted;

	if (!s || pos >= end)
		return 1;
	b0 = s->buf[pos & SCAN_MASK];
	if (i > 0 && (b0 == '\r' || b0 == '\n'))
		return 1; /* the blank line: end of headers */
	if (b0 == ' ' || b0 == '\t')
		wanted = c->prev_wanted;
	else
		wanted = header_wanted(s, pos, end);
	eol = sipxdp_find_nl(pos, end);
	if (wanted) {
		int r = sipxdp_scan_range(c->gen, pos, eol, want_below(c->found));

		if (r) {
			c->found = r;
			if (r == 1)
				return 1;
		}
	}
	c->prev_wanted = wanted;
	c->pos = eol + 1;
	return 0;
}

/* Copies the L4 payload and searches it: 1 + pattern index, or 0. */
static __always_inline int sip_scan(struct xdp_md *ctx, __u32 gen, const struct sipxdp_sip_cfg *cfg,
				    __u32 off, __u32 len)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);

	if (!s || !len)
		return 0;
	if (len > SIPXDP_SCAN_MAX)
		len = SIPXDP_SCAN_MAX;
	if (bpf_xdp_load_bytes(ctx, off, s->buf, len) < 0)
		return 0;
	if (cfg->flags & SIPXDP_SIP_HEADERS) {
		struct line_ctx lc = {.gen = gen, .end = len};

		bpf_loop(SIPXDP_SCAN_MAX / 2, line_step, &lc, 0);
		return lc.found;
	}
	return sipxdp_scan_range(gen, 0, len, ~0ull);
}

static __always_inline int is_trusted(const struct pkt *p, __u32 gen)
{
	__u32 *v;

	if (p->family == 4) {
		struct sipxdp_lpm4_key k = {.prefixlen = SIPXDP_LPM_HDR_BITS + 32,
					    .gen = gen,
					    .dir = SIPXDP_DIR_TRUSTED};

		__builtin_memcpy(k.addr, &p->src.v4, 4);
		v = bpf_map_lookup_elem(&lpm4, &k);
	} else {
		struct sipxdp_lpm6_key k = {.prefixlen = SIPXDP_LPM_HDR_BITS + 128,
					    .gen = gen,
					    .dir = SIPXDP_DIR_TRUSTED};

		__builtin_memcpy(k.addr, p->src.v6, 16);
		v = bpf_map_lookup_elem(&lpm6, &k);
	}
	return v && *v;
}

static __always_inline void ban_source(const struct pkt *p, __u64 ban_ns, __u32 reason)
{
	struct sipxdp_ban_key k = {.family = p->family};
	__u64 now = bpf_ktime_get_ns();
	struct sipxdp_ban b = {.expires_ns = now + ban_ns, .since_ns = now, .reason = reason};

	if (p->family == 4)
		__builtin_memcpy(k.addr, &p->src.v4, 4);
	else
		__builtin_memcpy(k.addr, p->src.v6, 16);
	bpf_map_update_elem(&bans, &k, &b, BPF_ANY);
}

static __always_inline int verdict(__u32 action)
{
	return action == SIPXDP_ACT_ALLOW ? XDP_PASS : XDP_DROP;
}

static __always_inline int is_martian(const struct pkt *p)
{
	if (p->family == 4)
		return (bpf_ntohl(p->dst.v4) >> 24) == 127 || (bpf_ntohl(p->src.v4) >> 24) == 127;
	/* ::1 as destination or source */
	__u64 d0, d1, s0, s1;

	__builtin_memcpy(&d0, p->dst.v6, 8);
	__builtin_memcpy(&d1, p->dst.v6 + 8, 8);
	__builtin_memcpy(&s0, p->src.v6, 8);
	__builtin_memcpy(&s1, p->src.v6 + 8, 8);
	return (d0 == 0 && d1 == bpf_cpu_to_be64(1)) || (s0 == 0 && s1 == bpf_cpu_to_be64(1));
}

static __always_inline __u32 addr_class(const struct pkt *p, __u32 gen, __u32 dir)
{
	__u32 *cls;

	if (p->family == 4) {
		struct sipxdp_lpm4_key k = {
			.prefixlen = SIPXDP_LPM_HDR_BITS + 32,
			.gen = gen,
			.dir = dir,
		};

		__builtin_memcpy(k.addr, dir == SIPXDP_DIR_SRC ? &p->src.v4 : &p->dst.v4, 4);
		cls = bpf_map_lookup_elem(&lpm4, &k);
	} else {
		struct sipxdp_lpm6_key k = {
			.prefixlen = SIPXDP_LPM_HDR_BITS + 128,
			.gen = gen,
			.dir = dir,
		};

		__builtin_memcpy(k.addr, dir == SIPXDP_DIR_SRC ? p->src.v6 : p->dst.v6, 16);
		cls = bpf_map_lookup_elem(&lpm6, &k);
	}
	return cls ? *cls : 0;
}

static __always_inline __u32 combine(__u32 gen, __u32 stage, __u32 a, __u32 b)
{
	struct sipxdp_comb_key k = {.gen = gen, .stage = stage, .a = a, .b = b};
	__u32 *cls;

	if (!a || !b)
		return 0;
	cls = bpf_map_lookup_elem(&comb, &k);
	return cls ? *cls : 0;
}

static __always_inline __u32 port_lookup(__u32 gen, __u32 table, __u32 port)
{
	__u32 idx = sipxdp_port_index(gen, table, port);
	__u32 *cls = bpf_map_lookup_elem(&port_class, &idx);

	return cls ? *cls : 0;
}

static __always_inline __u32 dport_table(const struct pkt *p, __u32 *port)
{
	switch (p->proto) {
	case IPPROTO_TCP:
		*port = bpf_ntohs(p->dport);
		return SIPXDP_PT_TCP;
	case IPPROTO_UDP:
		*port = bpf_ntohs(p->dport);
		return SIPXDP_PT_UDP;
	case IPPROTO_ICMP:
		if (p->family == 4) {
			*port = p->icmp_type;
			return SIPXDP_PT_ICMP;
		}
		break;
	case IPPROTO_ICMPV6:
		if (p->family == 6) {
			*port = p->icmp_type;
			return SIPXDP_PT_ICMP6;
		}
		break;
	}
	*port = p->proto;
	return SIPXDP_PT_OTHER;
}

SEC("xdp")
int xdp_ingress(struct xdp_md *ctx)
{
	struct cursor c = {.pos = (void *)(long)ctx->data, .end = (void *)(long)ctx->data_end};
	struct pkt p = {};
	struct sipxdp_state *st;
	struct sipxdp_sip_cfg *cfg;
	struct sipxdp_policy_hdr *hdr;
	struct sipxdp_rule *rule;
	__u32 zero = 0, gen, table, port, cls, idx, l3_off, l4_end;
	__u16 h_proto;
	int hit;

	p.len = c.end - c.pos;
	if (parse_eth(&c, &h_proto) < 0)
		goto malformed;
	l3_off = c.pos - (void *)(long)ctx->data;

	if (h_proto == ETH_P_IP) {
		if (parse_ipv4(&c, &p) < 0)
			goto malformed;
	} else if (h_proto == ETH_P_IPV6) {
		if (parse_ipv6(&c, &p) < 0)
			goto malformed;
	} else {
		count(SIPXDP_CTR_NONIP, p.len);
		return XDP_PASS;
	}

	if (ctx->ingress_ifindex != 1 && is_martian(&p)) {
		count(SIPXDP_CTR_MARTIAN, p.len);
		return XDP_DROP;
	}

	st = bpf_map_lookup_elem(&state, &zero);
	if (!st)
		return XDP_PASS;
	if (is_banned(&p, st)) {
		count(SIPXDP_CTR_BANNED, p.len);
		return XDP_DROP;
	}

	if (p.frag_later) {
		count(SIPXDP_CTR_FRAGMENT, p.len);
		return XDP_DROP;
	}
	if (parse_l4(&c, &p) < 0)
		goto malformed;

	/* Neighbour discovery (RS, RA, NS, NA, redirect): IPv6 stops working without it. */
	if (p.family == 6 && p.proto == IPPROTO_ICMPV6 && p.icmp_type >= 133 &&
	    p.icmp_type <= 137) {
		count(SIPXDP_CTR_IPV6_ND, p.len);
		return XDP_PASS;
	}

	gen = st->active_gen & 1;
	hdr = bpf_map_lookup_elem(&policy_hdr, &gen);
	if (!hdr || !(hdr->flags & SIPXDP_HDR_VALID)) {
		count(SIPXDP_CTR_NO_POLICY, p.len);
		return XDP_PASS;
	}

	table = dport_table(&p, &port);
	cls = port_lookup(gen, table, port);
	if (cls && (hdr->flags & SIPXDP_HDR_SPORT)) {
		__u32 sport = table <= SIPXDP_PT_UDP ? bpf_ntohs(p.sport) : 0;

		cls = combine(gen, SIPXDP_COMB_PS, cls, port_lookup(gen, SIPXDP_PT_SPORT, sport));
	}
	if (cls && (hdr->flags & (SIPXDP_HDR_SRC | SIPXDP_HDR_DST))) {
		__u32 acls;

		if (!(hdr->flags & SIPXDP_HDR_DST))
			acls = addr_class(&p, gen, SIPXDP_DIR_SRC);
		else if (!(hdr->flags & SIPXDP_HDR_SRC))
			acls = addr_class(&p, gen, SIPXDP_DIR_DST);
		else
			acls = combine(gen, SIPXDP_COMB_AD, addr_class(&p, gen, SIPXDP_DIR_SRC),
				       addr_class(&p, gen, SIPXDP_DIR_DST));
		cls = combine(gen, SIPXDP_COMB_FINAL, cls, acls);
	}
	if (!cls)
		goto dflt;

	idx = gen * SIPXDP_MAX_CLASSES + cls;
	rule = bpf_map_lookup_elem(&cls_rule, &idx);
	if (!rule)
		goto dflt;
	if ((rule->flags & SIPXDP_RULE_INSPECT_SIP) &&
	    (cfg = bpf_map_lookup_elem(&sip_cfg, &gen)) && !is_trusted(&p, gen)) {
		__u32 off = c.pos - (void *)(long)ctx->data;

		l4_end = l3_off + p.ip_len;
		hit = off < l4_end ? sip_scan(ctx, gen, cfg, off, l4_end - off) : 0;
		if (hit > 0 && hit <= SIPXDP_MAX_PATTERNS) {
			__u32 key = gen * SIPXDP_MAX_PATTERNS + (hit - 1);
			struct sipxdp_pattern *pat = bpf_map_lookup_elem(&sip_patterns, &key);

			__u32 slot = pat ? pat->counter : SIPXDP_CTR_DEFAULT;

			if (cfg->flags & SIPXDP_SIP_BAN)
				ban_source(&p, cfg->ban_ns, slot);
			count(slot, p.len);
			return XDP_DROP;
		}
	}
	count(rule->counter, p.len);
	return verdict(rule->action);

dflt:
	count(SIPXDP_CTR_DEFAULT, p.len);
	return verdict(hdr->default_action);

malformed:
	count(SIPXDP_CTR_MALFORMED, p.len);
	return XDP_DROP;
}

char _license[] SEC("license") = "GPL";
