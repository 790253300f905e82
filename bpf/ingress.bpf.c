// SPDX-License-Identifier: GPL-2.0
/* sipxdp XDP ingress: parse -> built-in paths -> policy lookup -> verdict. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define SIPXDP_DEFINE_MAPS
#include "sipxdp/abi.h"
#include "sipxdp/maps.h"
#include "sipxdp/parse.h"

/*
 * Bans. Each packet compares the ban's expiry time with the clock, so a ban
 * ends by itself: no userspace sweeper is needed for correctness.
 */
static __always_inline int ban_live(struct sipxdp_ban *b, __u64 now)
{
	if (b->expires_ns && b->expires_ns <= now)
		return 0;
	__sync_fetch_and_add(&b->hits, 1);
	return 1;
}

static __always_inline __u32 ban_hash(const struct pkt *p)
{
	__u32 h = p->src.v4;

	if (p->family == 6) {
		__u32 w[4];

		__builtin_memcpy(w, p->src.v6, 16);
		h = w[0] ^ (w[1] * 0x85ebca6bu) ^ (w[2] * 0xc2b2ae35u) ^ (w[3] * 0x27d4eb2fu);
	}
	return (h * 0x9e3779b1u) >> (32 - SIPXDP_BAN_HINT_SHIFT);
}

static __always_inline struct ban_hint *hint_map(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&ban_hint, &zero);
}

static __always_inline int is_banned(const struct pkt *p, const struct sipxdp_state *st)
{
	struct sipxdp_ban6_key k6;
	struct sipxdp_ban *b;
	void *map = &bans4, *key = (void *)&p->src.v4;
	__u64 now;

	struct ban_hint *hint = hint_map();
	__u32 h = ban_hash(p);

	if (hint && !(hint->bits[(h / 64) & (SIPXDP_BAN_HINT_BITS / 64 - 1)] & (1ull << (h % 64))))
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

/*
 * SIP scanner matcher.
 *
 * Every pattern is at least `window` bytes long (the shortest pattern, at
 * most 9), so any occurrence covers window - 1 consecutive 2-byte grams, and
 * sampling one gram every window - 1 bytes meets each occurrence exactly once.
 * For the sampled gram, grams[g] (compiled in userspace) says at which
 * offsets j it appears in some pattern's first `window` bytes; each such j
 * gives a candidate start, whose first four bytes are hashed into prefix[]
 * to name the patterns that could start there; only those are compared in
 * full. So the cost grows with the payload length over the window, not with
 * the number of patterns, and the sample positions do not depend on the data
 * (unlike Wu-Manber's shifts), so the CPU overlaps the table loads of
 * successive samples instead of waiting for each. With ignore_case the gram
 * table holds every case variant and the prefix hash folds case, so only the
 * full comparison folds bytes.
 *
 * The payload is first copied into a per-CPU buffer (bpf_xdp_load_bytes also
 * reads multi-buffer frames), so every read is a masked index into map
 * memory rather than a packet pointer the verifier must re-prove. The scan
 * runs in bpf_loop callbacks (inlined by the verifier), 64 samples per call;
 * full comparisons are a global function, verified once.
 *
 * "headers" mode walks the header lines instead (finding newlines eight bytes
 * at a time), stops at the blank line that ends the headers, and scans only
 * User-Agent, From, To and Contact (and their compact forms).
 *
 * Several patterns may occur in one packet: the first in the policy's list
 * takes it (as the first matching iptables rule would), so the search goes on
 * for patterns listed earlier than the best found so far.
 */
#define SCAN_MASK (SCRATCH_BUF - 1)

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

/* Every BPF function call and return is costly where return thunks mitigate
 * speculative-return attacks (AMD SRSO: about 10 ns each), so a callback
 * does many samples, and nothing on the per-sample path calls anything.
 */
#define SAMPLES_PER_CALL 64

struct scan_ctx {
	__u64 want; /* patterns that would still improve on `found` */
	__u32 gen;
	__u32 pos; /* the next sampled gram ends here */
	__u32 start, end;
	__u32 stride;
	__u32 prefix_len;
	__u32 icase;
	int found;
};

static __always_inline __u64 want_below(int found)
{
	return found ? (1ull << (found - 1)) - 1 : ~0ull;
}

/* Full check of the candidates for the gram ending at `pos`. `flags` carries
 * what the sampler already knows (global functions take five arguments):
 * bit 0 generation, bit 1 ignore case, bits 8-15 the gram's offsets, bits
 * 16-23 the prefix length. Returns 1 + the best pattern index, or 0.
 */
__noinline int sipxdp_candidates(__u32 flags, __u32 pos, __u32 start, __u32 end, __u64 want)
{
	__u32 zero = 0, gen = flags & 1, icase = flags & 2, j;
	__u32 offs = (flags >> 8) & 0xff, plen = (flags >> 16) & 0xff;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	struct sipxdp_scan_tables *t = bpf_map_lookup_elem(&sip_tables, &gen);
	int best = 0;

	if (!s || !t)
		return 0;
#pragma clang loop unroll(disable)
	for (j = 0; j < SIPXDP_SCAN_MAX_WINDOW - 1; j++) {
		__u32 at = pos - 1 - j, word, idx;
		__u64 mask;
		int r;

		if (!(offs & (1u << j)) || at < start || at > pos)
			continue;
		word = *(__u32 *)&s->buf[at & SCAN_MASK];
		idx = t->prefix[sipxdp_prefix_hash(word, plen) & (SIPXDP_SCAN_PREFIXES - 1)];
		mask = idx ? t->masks[idx & (SIPXDP_SCAN_MASKS - 1)] & want : 0;
#pragma clang loop unroll(disable)
		for (r = 0; r < SIPXDP_MAX_PATTERNS && mask; r++, mask >>= 1) {
			if ((mask & 1) && sipxdp_cmp(gen, r, at, end, icase)) {
				best = r + 1;
				want = want_below(best);
				break;
			}
		}
	}
	return best;
}

/* The per-sample filter: no calls and no branches per offset, so it stays
 * cheap and the verifier's view of it stays small. A nonzero result from the
 * prefix table for any offset the gram allows sends the sample to the full
 * check, which is rare.
 */
static __always_inline int sample(struct scan_ctx *c, const struct scratch *s,
				  const struct sipxdp_scan_tables *t, __u32 pos)
{
	__u32 g = ((__u32)s->buf[(pos - 1) & SCAN_MASK] << 8) | s->buf[pos & SCAN_MASK];
	__u32 offs = t->grams[g & 0xffff], plen = c->prefix_len, j;
	__u32 hit = 0;

	if (!offs)
		return 0;
#pragma clang loop unroll(disable)
	for (j = 0; j < SIPXDP_SCAN_MAX_WINDOW - 1; j++) {
		if (!(offs >> j))
			break;
		__u32 word = *(__u32 *)&s->buf[(pos - 1 - j) & SCAN_MASK];
		__u32 idx = t->prefix[sipxdp_prefix_hash(word, plen) & (SIPXDP_SCAN_PREFIXES - 1)];

		hit |= ((offs >> j) & 1) * idx;
	}
	if (!hit)
		return 0;
	return sipxdp_candidates(c->gen | (c->icase ? 2 : 0) | offs << 8 | plen << 16, pos,
				 c->start, c->end, c->want);
}

static long scan_step(__u32 i, struct scan_ctx *c)
{
	__u32 zero = 0, gen = c->gen & 1, pos = c->pos, end = c->end, stride = c->stride;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	struct sipxdp_scan_tables *t = bpf_map_lookup_elem(&sip_tables, &gen);
	int k;

	if (!s || !t)
		return 1;
#pragma clang loop unroll(disable)
	for (k = 0; k < SAMPLES_PER_CALL; k++) {
		int r;

		if (pos >= end) {
			c->pos = pos;
			return 1;
		}
		r = sample(c, s, t, pos);
		if (r) {
			c->found = r;
			c->want = want_below(r);
			if (!c->want)
				return 1;
		}
		pos += stride;
	}
	c->pos = pos;
	return 0;
}

/* Searches scratch[start, end) for the patterns in `want`: 1 + the lowest index found, or 0. */
__noinline int sipxdp_scan_range(__u32 gen, __u32 start, __u32 end, __u64 want)
{
	struct sipxdp_sip_cfg *cfg;
	struct scan_ctx c = {};

	gen &= 1;
	cfg = bpf_map_lookup_elem(&sip_cfg, &gen);
	if (!cfg || !cfg->npatterns || cfg->window < SIPXDP_MIN_PATTERN_LEN ||
	    cfg->window > SIPXDP_SCAN_MAX_WINDOW)
		return 0;
	if (end > SCRATCH_BUF)
		end = SCRATCH_BUF;
	c.want = want;
	c.gen = gen;
	c.start = start;
	c.end = end;
	c.stride = cfg->window - 1;
	c.prefix_len = cfg->prefix_len;
	c.icase = cfg->flags & SIPXDP_SIP_IGNORE_CASE;
	c.pos = start + 1;
	if (c.pos >= end)
		return 0;
	bpf_loop((end - c.pos) / (SAMPLES_PER_CALL * c.stride) + 1, scan_step, &c, 0);
	return c.found;
}

#define NL_WORDS 64 /* words searched per call: keeps the verifier's walk short */

/* Offset of the first '\n' in scratch[pos, end), or end, or (no newline in
 * the next NL_WORDS words) the offset where the search stopped.
 */
static __always_inline __u32 find_nl(const struct scratch *s, __u32 pos, __u32 end)
{
	__u32 k;

#pragma clang loop unroll(disable)
	for (k = 0; k < NL_WORDS; k++) {
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
	return pos < end ? pos : end;
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
	__u32 pos; /* where the next step starts reading */
	__u32 end;
	__u32 line;    /* start of the line being read */
	__u32 in_line; /* the line at `line` has not ended yet */
	__u32 wanted;  /* that line is searched */
	__u32 started; /* a non-blank line has been seen */
	__u32 tcp;     /* a stream: more messages may follow the blank line */
	int found;
};

/* One step of the line walk: 1 when the walk is over. */
static __always_inline int line_once(struct scratch *s, struct line_ctx *c)
{
	__u32 pos = c->pos, end = c->end, eol;

	if (pos >= end)
		return 1;
	if (!c->in_line) {
		__u8 b0 = s->buf[pos & SCAN_MASK];

		if (b0 == '\r' || b0 == '\n') {
			if (c->started) {
				/* The blank line ends the headers. On TCP another message
				 * may follow the body: search the rest whole.
				 */
				if (c->tcp && s->nlines < SIPXDP_MAX_SCAN_LINES) {
					s->lines[s->nlines & (SIPXDP_MAX_SCAN_LINES - 1)][0] = pos;
					s->lines[s->nlines & (SIPXDP_MAX_SCAN_LINES - 1)][1] = end;
					s->nlines++;
				}
				return 1;
			}
			/* Blank lines before the start line are ignored (RFC 3261 7.5). */
			c->pos = pos + 1;
			return 0;
		}
		c->started = 1;
		/* A line starting with white space continues the previous header. */
		if (b0 != ' ' && b0 != '\t')
			c->wanted = header_wanted(s, pos, end);
		c->line = pos;
		c->in_line = 1;
	}
	eol = find_nl(s, pos, end);
	if (eol < end && s->buf[eol & SCAN_MASK] != '\n') {
		c->pos = eol; /* a long line: go on next step */
		return 0;
	}
	if (c->wanted) {
		__u32 n = s->nlines;

		if (n >= SIPXDP_MAX_SCAN_LINES) {
			/* More searched headers than slots: the last slot grows to
			 * cover this line too (and the header lines in between).
			 */
			s->lines[SIPXDP_MAX_SCAN_LINES - 1][1] = eol;
		} else {
			s->lines[n & (SIPXDP_MAX_SCAN_LINES - 1)][0] = c->line;
			s->lines[n & (SIPXDP_MAX_SCAN_LINES - 1)][1] = eol;
			s->nlines = n + 1;
		}
	}
	c->in_line = 0;
	c->pos = eol + 1;
	return 0;
}

/* One line per call: a loop over several lines here makes the verifier's
 * walk of the callback too long.
 */
static long line_step(__u32 i, struct line_ctx *c)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);

	if (!s)
		return 1;
	return line_once(s, c);
}

/* "headers" mode: finds the header lines to search in scratch[0, len) and
 * lists them in scratch.lines. A global function, so the verifier checks the
 * line walk once, not once per path of the caller.
 */
__noinline int sipxdp_find_headers(__u32 len, __u32 tcp)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	struct line_ctx lc = {.end = len > SIPXDP_SCAN_MAX ? SIPXDP_SCAN_MAX : len, .tcp = tcp};

	if (!s)
		return 0;
	s->nlines = 0;
	bpf_loop(SIPXDP_SCAN_MAX / 2, line_step, &lc, 0);
	return s->nlines;
}

/* Copies the L4 payload and searches it: 1 + pattern index, or 0. */
static __always_inline int sip_scan(struct xdp_md *ctx, __u32 gen, const struct sipxdp_sip_cfg *cfg,
				    __u32 off, __u32 len, __u32 tcp)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);

	if (!s)
		return 0;
	if (len > SIPXDP_SCAN_MAX)
		len = SIPXDP_SCAN_MAX;
	/* The test stays here, on the register passed: the compiler would
	 * otherwise reuse the caller's test of another copy, which the
	 * verifier cannot connect to this one.
	 */
	barrier_var(len);
	if (len < 1 || bpf_xdp_load_bytes(ctx, off, s->buf, len) < 0)
		return 0;
	if (cfg->flags & SIPXDP_SIP_HEADERS) {
		__u32 n = sipxdp_find_headers(len, tcp), i;
		int found = 0;

		for (i = 0; i < SIPXDP_MAX_SCAN_LINES && i < n; i++) {
			int r = sipxdp_scan_range(gen, s->lines[i][0], s->lines[i][1],
						  want_below(found));

			if (r) {
				found = r;
				if (r == 1)
					break;
			}
		}
		return found;
	}
	return sipxdp_scan_range(gen, 0, len, ~0ull);
}

/* New entries are written from these, not from the stack (of 512 bytes). */
const struct sipxdp_stream_tail tail_zero = {};
const struct sipxdp_frag_state frag_zero = {};

/*
 * Boundaries. A pattern split between two fragments of a datagram, or two
 * segments of a TCP stream, is in neither piece whole: the last
 * SIPXDP_EDGE_KEEP bytes before the boundary and the first after it are
 * searched together in one of the scratch buffer's edge areas. The
 * functions below only lay out the bytes and list the ranges to search
 * (scratch.plan): the main program runs the search itself, because a search
 * called from inside them would nest too deep for the BPF stack.
 */
#define EDGE_A SCRATCH_EDGE	    /* a stored tail, then this piece's head */
#define EDGE_B (SCRATCH_EDGE + 256) /* this piece's tail, then a stored head */

static __always_inline void copy_edge(struct scratch *s, __u32 at, const __u8 *src)
{
	for (int i = 0; i < SIPXDP_EDGE_MAX / 8; i++)
		*(__u64 *)&s->buf[(at + i * 8) & SCAN_MASK] = *(const __u64 *)&src[i * 8];
}

/* scratch[from, from + 64) to map memory. */
static __always_inline void save_edge(__u8 *dst, const struct scratch *s, __u32 from)
{
	for (int i = 0; i < SIPXDP_EDGE_MAX / 8; i++)
		*(__u64 *)&dst[i * 8] = *(const __u64 *)&s->buf[(from + i * 8) & SCAN_MASK];
}

/* scratch[from, from + 64) to scratch[at, at + 64). */
static __always_inline void move_edge(struct scratch *s, __u32 at, __u32 from)
{
	for (int i = 0; i < SIPXDP_EDGE_MAX / 8; i++)
		*(__u64 *)&s->buf[(at + i * 8) & SCAN_MASK] =
			*(__u64 *)&s->buf[(from + i * 8) & SCAN_MASK];
}

static __always_inline __u32 edge_keep(__u32 n)
{
	return n < SIPXDP_EDGE_KEEP ? n : SIPXDP_EDGE_KEEP;
}

static __always_inline struct scratch *scratch_buf(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&scratch, &zero);
}

static __always_inline void plan(struct scratch *s, __u32 start, __u32 end)
{
	__u32 n = s->nplan;

	if (n < SCRATCH_PLANS && end > start) {
		s->plan[n & (SCRATCH_PLANS - 1)][0] = start;
		s->plan[n & (SCRATCH_PLANS - 1)][1] = end;
		s->nplan = n + 1;
	}
}

/* The last `keep` (1-63) bytes of the payload at frame offset off + len, to scratch[EDGE_B]. */
static __always_inline int load_tail(struct xdp_md *ctx, struct scratch *s, __u32 off, __u32 len,
				     __u32 keep)
{
	barrier_var(keep); /* the test must be on the register passed (see sip_scan) */
	if (keep < 1 || keep > SIPXDP_EDGE_KEEP)
		return -1;
	return bpf_xdp_load_bytes(ctx, off + len - keep, &s->buf[EDGE_B], keep);
}

/* Runs the searches listed in scratch.plan: 1 + the lowest pattern index found, or 0. */
static __always_inline int run_plan(__u32 gen)
{
	struct scratch *s = scratch_buf();
	int found = 0;

	if (!s)
		return 0;
	for (__u32 i = 0; i < SCRATCH_PLANS; i++) {
		int r;

		if (i >= s->nplan)
			break;
		r = sipxdp_scan_range(gen, s->plan[i][0], s->plan[i][1], want_below(found));
		if (r)
			found = r;
	}
	s->nplan = 0;
	return found;
}

#define EDGE_C (SCRATCH_EDGE + 512) /* the tail a TCP segment leaves, until it passes */

/*
 * A TCP segment of a stream whose rule searches for patterns (its payload in
 * scratch[0, len)): plans the search of the previous in-order segment's tail
 * with this head, and prepares this segment's tail (joined to the old one
 * when shorter, so a pattern sent a byte per segment is still found), which
 * sipxdp_stream_commit keeps once the segment passed: a dropped segment's
 * retransmission meets the same tail again. Segments out of order are
 * searched on their own. Returns the number of searches planned.
 */
__noinline int sipxdp_stream_edge(struct xdp_md *ctx, const struct pkt *p, __u32 off, __u32 len)
{
	struct sipxdp_stream_tail *t;
	struct sipxdp_flow_key k;
	struct scratch *s = scratch_buf();
	__u32 alen = 0, keep;

	if (!p || !s || !len || len > 0xffff)
		return 0;
	s->nplan = 0;
	s->tail_len = 0;
	flow_key(&k, p, 0);
	t = bpf_map_lookup_elem(&tcp_tails, &k);
	if (t && t->next_seq == p->tcp_seq && t->len && t->len <= SIPXDP_EDGE_KEEP) {
		alen = t->len;
		copy_edge(s, EDGE_A, t->bytes);
		move_edge(s, EDGE_A + alen, 0);
		plan(s, EDGE_A, EDGE_A + alen + edge_keep(len));
	}
	/* The new tail: the last 63 bytes of (old tail, if contiguous) + this payload. */
	if (len >= SIPXDP_EDGE_KEEP) {
		keep = SIPXDP_EDGE_KEEP;
		if (load_tail(ctx, s, off, len, keep) < 0)
			return s->nplan;
		move_edge(s, EDGE_C, EDGE_B);
	} else if (alen) {
		keep = edge_keep(alen + len); /* alen + len < 126, laid out at EDGE_A */
		move_edge(s, EDGE_C, EDGE_A + alen + len - keep);
	} else {
		keep = len;
		move_edge(s, EDGE_C, 0);
	}
	s->tail_len = keep;
	s->tail_next = p->tcp_seq + len;
	return s->nplan;
}

/* Keeps the tail sipxdp_stream_edge prepared: the segment passed. */
__noinline int sipxdp_stream_commit(const struct pkt *p)
{
	struct sipxdp_stream_tail *t;
	struct sipxdp_flow_key k;
	struct scratch *s = scratch_buf();

	if (!p || !s || !s->tail_len || s->tail_len > SIPXDP_EDGE_KEEP)
		return 0;
	flow_key(&k, p, 0);
	t = bpf_map_lookup_elem(&tcp_tails, &k);
	if (!t) {
		if (bpf_map_update_elem(&tcp_tails, &k, (void *)&tail_zero, BPF_ANY) != 0)
			return 0;
		t = bpf_map_lookup_elem(&tcp_tails, &k);
		if (!t)
			return 0;
	}
	save_edge(t->bytes, s, EDGE_C);
	t->len = s->tail_len;
	t->next_seq = s->tail_next;
	return 0;
}

/* The state of a datagram, made anew when absent or expired (or, for a
 * first fragment, already judged: a duplicate, or the ID reused).
 */
static __always_inline struct sipxdp_frag_state *frag_state(const struct sipxdp_frag_key *k,
							    __u64 now, int fresh_if_known)
{
	struct sipxdp_frag_state *st = bpf_map_lookup_elem(&frags, k);

	if (st && st->expires_ns > now && !(fresh_if_known && st->known))
		return st;
	if (bpf_map_update_elem(&frags, k, (void *)&frag_zero, BPF_ANY) != 0)
		return 0;
	st = bpf_map_lookup_elem(&frags, k);
	if (st)
		st->expires_ns = now + SIPXDP_FRAG_TIMEOUT_NS;
	return st;
}

/*
 * The boundaries of one fragment [start, start + len) of a datagram: a
 * stored tail ending at start, or head starting at start + len, is laid out
 * with this fragment's bytes and planned for search, and freed. What this
 * fragment must leave for neighbours not seen yet is noted in scratch.edges
 * (kept by sipxdp_frag_end once the search found nothing). Expects the
 * fragment's first bytes in scratch[0, ...).
 */
#define EDGE_MORE 1  /* more fragments follow: a successor exists */
#define EDGE_FIRST 2 /* the first fragment: no predecessor */

static __always_inline int frag_edges(struct xdp_md *ctx, struct scratch *s,
				      struct sipxdp_frag_state *st, __u32 off, __u32 len,
				      __u32 start, __u32 how)
{
	__u32 end = start + len, keep = edge_keep(len);
	__u32 need_head = !(how & EDGE_FIRST), need_tail = how & EDGE_MORE;

	if (!len)
		return 0;
	if (need_tail && load_tail(ctx, s, off, len, keep) < 0)
		return -1;
	for (int i = 0; i < SIPXDP_FRAG_EDGES; i++) {
		struct sipxdp_edge *e = &st->edge[i];
		__u32 elen = e->len;

		if (!elen || elen > SIPXDP_EDGE_KEEP)
			continue;
		if (e->kind == SIPXDP_EDGE_TAIL && e->off == start && need_head) {
			copy_edge(s, EDGE_A, e->bytes);
			move_edge(s, EDGE_A + elen, 0);
			plan(s, EDGE_A, EDGE_A + elen + keep);
			e->len = 0;
			need_head = 0;
		} else if (e->kind == SIPXDP_EDGE_HEAD && e->off == end && need_tail) {
			/* this fragment's tail is at EDGE_B already */
			copy_edge(s, EDGE_B + keep, e->bytes);
			plan(s, EDGE_B, EDGE_B + keep + elen);
			e->len = 0;
			need_tail = 0;
		}
	}
	s->edges = (need_head ? EDGE_NEED_HEAD : 0) | (need_tail ? EDGE_NEED_TAIL : 0);
	s->edge_start = start;
	s->edge_keep = keep;
	return 0;
}

/* Keeps what frag_edges noted this fragment must leave; 0, or -1 when no slot is free. */
static __always_inline int frag_keep_edges(struct sipxdp_frag_state *st, const struct scratch *s,
					   __u32 len)
{
	__u32 need = s->edges, keep = s->edge_keep, start = s->edge_start;

	for (int i = 0; i < SIPXDP_FRAG_EDGES && need; i++) {
		struct sipxdp_edge *e = &st->edge[i];

		if (e->len)
			continue;
		if (need & EDGE_NEED_HEAD) {
			save_edge(e->bytes, s, 0);
			e->off = start;
			e->kind = SIPXDP_EDGE_HEAD;
			need &= ~EDGE_NEED_HEAD;
		} else {
			save_edge(e->bytes, s, EDGE_B);
			e->off = start + len;
			e->kind = SIPXDP_EDGE_TAIL;
			need = 0;
		}
		e->len = keep;
	}
	return need ? -1 : 0;
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
	__u64 now = bpf_ktime_get_coarse_ns();
	struct sipxdp_ban b = {.expires_ns = now + ban_ns, .since_ns = now, .reason = reason};
	struct sipxdp_ban6_key k6;
	struct ban_hint *hint = hint_map();
	__u32 h = ban_hash(p);

	if (hint)
		__sync_fetch_and_or(&hint->bits[(h / 64) & (SIPXDP_BAN_HINT_BITS / 64 - 1)],
				    1ull << (h % 64));
	if (p->family == 4) {
		bpf_map_update_elem(&bans4, &p->src.v4, &b, BPF_ANY);
	} else {
		__builtin_memcpy(k6.addr, p->src.v6, 16);
		bpf_map_update_elem(&bans6, &k6, &b, BPF_ANY);
	}
}

static __always_inline int verdict(__u32 action)
{
	return action == SIPXDP_ACT_ALLOW ? XDP_PASS : XDP_DROP;
}

/* The counter slot of pattern `hit` - 1 of generation gen. */
static __always_inline __u32 pattern_slot(__u32 gen, int hit)
{
	__u32 key = (gen & 1) * SIPXDP_MAX_PATTERNS + ((hit - 1) & (SIPXDP_MAX_PATTERNS - 1));
	struct sipxdp_pattern *pat = bpf_map_lookup_elem(&sip_patterns, &key);

	return pat ? pat->counter : SIPXDP_CTR_DEFAULT;
}

/* A pattern found: the packet drops on the pattern's counter, and the source is banned. */
static __always_inline __u32 scanner_hit(const struct pkt *p, __u32 gen, int hit)
{
	__u32 slot = pattern_slot(gen, hit);
	struct sipxdp_sip_cfg *cfg = bpf_map_lookup_elem(&sip_cfg, &gen);

	if (cfg && (cfg->flags & SIPXDP_SIP_BAN))
		ban_source(p, cfg->ban_ns, slot);
	return slot;
}

/* Fragment verdicts between the main program and the fragment steps. */
#define FRAG_SLOT_MASK 0xffffu
#define FRAG_ALLOW (1u << 16)
#define FRAG_INSPECT (1u << 17)
#define FRAG_GEN (1u << 18)
#define FRAG_LATER (1u << 19)
#define FRAG_SCAN (1u << 20) /* run scratch.plan, then sipxdp_frag_end */
#define FRAG_HIT_SHIFT 24    /* sipxdp_frag_end: 1 + the pattern the plan found */

/*
 * A fragment, first step. The first fragment comes judged by the rules
 * (verdict: slot | FRAG_ALLOW | FRAG_INSPECT | FRAG_GEN, its own payload
 * searched already); a later one (FRAG_LATER | FRAG_GEN) gets its datagram's
 * verdict. Where the datagram's rule searches for patterns, the fragment's
 * bytes and boundaries are planned for search and FRAG_SCAN returned:
 * sipxdp_frag_end finishes after the main program's search. Otherwise the
 * final slot | FRAG_ALLOW.
 *
 * A later fragment that comes before its first passes to the kernel's
 * reassembly, which cannot finish without the first fragment, judged when
 * it comes; what the fragment holds is searched and remembered for that
 * judgement (the first fragment's rule decides whether it counts).
 */
__noinline __u32 sipxdp_frag_begin(struct xdp_md *ctx, const struct pkt *p, __u32 off, __u32 len,
				   __u32 verdict)
{
	struct scratch *s = scratch_buf();
	struct sipxdp_frag_state *st;
	struct sipxdp_sip_cfg *cfg;
	struct sipxdp_frag_key k;
	__u32 gen = verdict & FRAG_GEN ? 1 : 0, ip_end, n;

	if (!p || !s)
		return SIPXDP_CTR_FRAGMENT;
	s->nplan = 0;
	s->edges = 0;
	frag_key(p, &k);
	st = frag_state(&k, bpf_ktime_get_coarse_ns(), !(verdict & FRAG_LATER));
	if (!(verdict & FRAG_LATER)) {
		__u32 slot = verdict & FRAG_SLOT_MASK, allow = verdict & FRAG_ALLOW;

		if (!st) /* no room to remember: the rest cannot be judged, so neither is this */
			return allow && (verdict & FRAG_INSPECT) ? SIPXDP_CTR_FRAGMENT
								 : slot | allow;
		if (allow && (verdict & FRAG_INSPECT)) {
			if (st->bad) {
				slot = SIPXDP_CTR_FRAGMENT;
				allow = 0;
			} else if (st->hit) {
				slot = scanner_hit(p, gen, st->hit);
				allow = 0;
			} else if (frag_edges(ctx, s, st, off, len, off - p->frag_data,
					      EDGE_MORE | EDGE_FIRST) < 0) {
				slot = SIPXDP_CTR_FRAGMENT;
				allow = 0;
			} else {
				return verdict | FRAG_SCAN;
			}
		}
		st->action = allow ? SIPXDP_ACT_ALLOW : SIPXDP_ACT_DROP;
		st->counter = slot;
		st->inspect = !!(verdict & FRAG_INSPECT);
		st->known = 1;
		return slot | allow;
	}

	off = p->frag_data;
	ip_end = p->l3_off + p->ip_len;
	len = ip_end > off ? ip_end - off : 0;
	if (!st)
		return SIPXDP_CTR_FRAG_EARLY | FRAG_ALLOW;
	if (st->known) {
		if (st->action != SIPXDP_ACT_ALLOW || !st->inspect)
			return st->counter | (st->action == SIPXDP_ACT_ALLOW ? FRAG_ALLOW : 0);
		if (st->bad || (p->frag_more && len < SIPXDP_EDGE_MAX)) {
			st->bad = 1;
			st->action = SIPXDP_ACT_DROP;
			st->counter = SIPXDP_CTR_FRAGMENT;
			return SIPXDP_CTR_FRAGMENT;
		}
	} else {
		cfg = bpf_map_lookup_elem(&sip_cfg, &gen);
		if (st->bad || !cfg || !cfg->npatterns ||
		    (p->proto != IPPROTO_UDP && p->proto != IPPROTO_TCP) || is_trusted(p, gen))
			return SIPXDP_CTR_FRAG_EARLY | FRAG_ALLOW;
		if (p->frag_more && len < SIPXDP_EDGE_MAX) {
			st->bad = 1;
			return SIPXDP_CTR_FRAG_EARLY | FRAG_ALLOW;
		}
	}
	/* Search this fragment's bytes (payload mode) and its boundaries. */
	n = len > SIPXDP_SCAN_MAX ? SIPXDP_SCAN_MAX : len;
	barrier_var(n); /* the test must be on the register passed (see sip_scan) */
	if (n < 1 || bpf_xdp_load_bytes(ctx, off, s->buf, n) < 0)
		return st->known ? st->counter | FRAG_ALLOW : SIPXDP_CTR_FRAG_EARLY | FRAG_ALLOW;
	plan(s, 0, n);
	if (frag_edges(ctx, s, st, off, len, p->frag_off, p->frag_more ? EDGE_MORE : 0) < 0) {
		st->bad = 1;
		if (!st->known)
			return SIPXDP_CTR_FRAG_EARLY | FRAG_ALLOW;
		st->action = SIPXDP_ACT_DROP;
		st->counter = SIPXDP_CTR_FRAGMENT;
		return SIPXDP_CTR_FRAGMENT;
	}
	return verdict | FRAG_SCAN;
}

/* A fragment, second step: what the planned search found (verdict's hit bits). */
__noinline __u32 sipxdp_frag_end(const struct pkt *p, __u32 len, __u32 verdict)
{
	struct scratch *s = scratch_buf();
	struct sipxdp_frag_state *st;
	struct sipxdp_frag_key k;
	__u32 gen = verdict & FRAG_GEN ? 1 : 0, slot = verdict & FRAG_SLOT_MASK;
	int hit = verdict >> FRAG_HIT_SHIFT;

	if (!p || !s)
		return SIPXDP_CTR_FRAGMENT;
	frag_key(p, &k);
	st = bpf_map_lookup_elem(&frags, &k);
	if (!st)
		return verdict & FRAG_LATER ? SIPXDP_CTR_FRAG_EARLY | FRAG_ALLOW
					    : SIPXDP_CTR_FRAGMENT;
	if (verdict & FRAG_LATER) {
		__u32 ip_end = p->l3_off + p->ip_len;

		len = ip_end > p->frag_data ? ip_end - p->frag_data : 0;
	}
	if ((verdict & FRAG_LATER) && !st->known) { /* a later fragment before its first */
		if (hit > 0 && (!st->hit || hit < st->hit))
			st->hit = hit;
		if (frag_keep_edges(st, s, len) < 0)
			st->bad = 1;
		return SIPXDP_CTR_FRAG_EARLY | FRAG_ALLOW;
	}
	if (hit > 0) {
		slot = scanner_hit(p, gen, hit);
		st->action = SIPXDP_ACT_DROP;
	} else if (frag_keep_edges(st, s, len) < 0) {
		st->bad = 1;
		slot = SIPXDP_CTR_FRAGMENT;
		st->action = SIPXDP_ACT_DROP;
	} else if (verdict & FRAG_LATER) {
		return st->counter | FRAG_ALLOW;
	} else {
		st->action = SIPXDP_ACT_ALLOW;
	}
	if (!(verdict & FRAG_LATER)) {
		st->inspect = 1;
		st->known = 1;
	}
	st->counter = slot;
	return slot | (st->action == SIPXDP_ACT_ALLOW ? FRAG_ALLOW : 0);
}

/* Counts the packet and gives its verdict. */
static __always_inline int judge(const struct pkt *p, __u32 slot, __u32 action)
{
	count(slot, p->len);
	return verdict(action);
}

/* A fragment's verdict from sipxdp_frag_begin: the planned search, then the second step. */
static __always_inline int judge_fragment(const struct pkt *p, __u32 len, __u32 gen, __u32 r)
{
	if (r & FRAG_SCAN) {
		__u32 hit = run_plan(gen);

		r = sipxdp_frag_end(p, len, (r & ~FRAG_SCAN) | (hit << FRAG_HIT_SHIFT));
	}
	return judge(p, r & FRAG_SLOT_MASK, r & FRAG_ALLOW ? SIPXDP_ACT_ALLOW : SIPXDP_ACT_DROP);
}

/* 0 proves the source has no recorded flow. (Not for ICMP: errors come from routers.) */
static __always_inline int maybe_reply(const struct pkt *p)
{
	struct flow_hint *hint = flow_hint_map();

	return hint && flow_hint_test(hint, flow_addr_hash(p, 0));
}

/* 1 when the flow `k` was recorded by the egress program within its timeout. */
static __always_inline int flow_live(struct sipxdp_flow_key *k, const struct sipxdp_policy_hdr *hdr)
{
	struct flow_hint *hint = flow_hint_map();
	struct sipxdp_flow *f;
	__u32 h = sipxdp_flow_hash(k), kind;

	if (!hint || !flow_hint_test(hint, h))
		return 0;
	switch (k->proto) {
	case IPPROTO_TCP:
		kind = SIPXDP_FLOW_TCP;
		break;
	case IPPROTO_UDP:
		kind = SIPXDP_FLOW_UDP;
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		kind = SIPXDP_FLOW_ICMP;
		break;
	default:
		kind = SIPXDP_FLOW_OTHER;
	}
	f = bpf_map_lookup_elem(&flows, k);
	/* Signed: the egress program on another CPU may have stored a time
	 * later than the one read here.
	 */
	return f && (__s64)(bpf_ktime_get_coarse_ns() - f->seen_ns) <=
			    (__s64)hdr->flow_timeout_s[kind & 3] * 1000000000ll;
}

/*
 * An ICMP error (destination unreachable, packet too big, time exceeded,
 * parameter problem) about a packet of a recorded flow: the quoted header is
 * the flow's outbound packet, so path MTU discovery and traceroute work under
 * default drop. The quote is read with bpf_xdp_load_bytes: a rare path, kept
 * out of the verifier's packet-pointer bookkeeping.
 */
static __always_inline int is_related(struct xdp_md *ctx, const struct pkt *p, __u32 icmp_off,
				      const struct sipxdp_policy_hdr *hdr)
{
	struct sipxdp_flow_key k = {.family = p->family};
	__u8 q[48];
	__u64 a[2], b[2];
	__u32 l4, w;

	if (p->family == 4) {
		if (bpf_xdp_load_bytes(ctx, icmp_off + 8, q, 28) < 0 || (q[0] >> 4) != 4)
			return 0;
		l4 = (q[0] & 0x0f) * 4;
		if (l4 < 20 || bpf_xdp_load_bytes(ctx, icmp_off + 8 + l4, q + 20, 8) < 0)
			return 0;
		/* A quoted later fragment has no ports. */
		if (q[6] & 0x1f || q[7])
			return 0;
		k.proto = q[9];
		__builtin_memcpy(k.laddr, q + 12, 4);
		__builtin_memcpy(k.raddr, q + 16, 4);
		/* It must be about a packet this host sent. */
		__builtin_memcpy(&w, k.laddr, 4);
		if (w != p->dst.v4)
			return 0;
	} else {
		if (bpf_xdp_load_bytes(ctx, icmp_off + 8, q, 48) < 0 || (q[0] >> 4) != 6)
			return 0;
		k.proto = q[6];
		__builtin_memcpy(k.laddr, q + 8, 16);
		__builtin_memcpy(k.raddr, q + 24, 16);
		__builtin_memcpy(a, k.laddr, 16);
		__builtin_memcpy(b, p->dst.v6, 16);
		if (a[0] != b[0] || a[1] != b[1])
			return 0;
		/* A quoted first fragment (a big UDP datagram: Packet Too Big is
		 * about exactly those) has a Fragment header before its ports.
		 * Other extension headers are not followed.
		 */
		if (k.proto == IPPROTO_FRAGMENT) {
			k.proto = q[40];
			if (((q[42] << 8 | q[43]) & IPV6_FRAG_OFFSET_MASK) ||
			    bpf_xdp_load_bytes(ctx, icmp_off + 8 + 48, q + 40, 8) < 0)
				return 0;
		}
		__builtin_memcpy(q + 20, q + 40, 8);
	}
	switch (k.proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
		__builtin_memcpy(&k.lport, q + 20, 2);
		__builtin_memcpy(&k.rport, q + 22, 2);
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		/* about an echo request: its identifier */
		__builtin_memcpy(&k.lport, q + 24, 2);
		k.rport = k.lport;
		break;
	}
	return flow_live(&k, hdr);
}

/*
 * Stateful replies: a packet is a reply when the egress program recorded the
 * flow it answers (see bpf/egress.bpf.c) within the flow kind's timeout.
 * ICMP: echo replies, matched by identifier, and errors about a flow.
 */
__noinline int sipxdp_is_reply(struct xdp_md *ctx, const struct pkt *p, __u32 l4_off, __u32 gen)
{
	struct sipxdp_policy_hdr *hdr;
	struct sipxdp_flow_key k;

	/* A global function, verified once on its own: the main program's
	 * verification budget is mostly spent on its parse paths.
	 */
	gen &= 1;
	hdr = bpf_map_lookup_elem(&policy_hdr, &gen);
	if (!p || !hdr)
		return 0;

	/* A bare SYN opens a connection; it is never a reply. */
	if (p->proto == IPPROTO_TCP && (p->tcp_flags & 0x12) == 0x02)
		return 0;
	if (p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP && p->proto != IPPROTO_ICMP &&
	    p->proto != IPPROTO_ICMPV6)
		return 0;
	if (p->proto == IPPROTO_ICMP && p->family == 4) {
		if (p->icmp_type == 3 || p->icmp_type == 4 || p->icmp_type == 11 ||
		    p->icmp_type == 12)
			return is_related(ctx, p, l4_off, hdr);
		if (p->icmp_type != 0)
			return 0;
	} else if (p->proto == IPPROTO_ICMPV6) {
		if (p->icmp_type >= 1 && p->icmp_type <= 4)
			return is_related(ctx, p, l4_off, hdr);
		if (p->icmp_type != 129)
			return 0;
	}
	flow_key(&k, p, 0);
	return flow_live(&k, hdr);
}

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
	       ((a[10] == 0 && a[11] == 0) || (a[10] == 0xff && a[11] == 0xff)) && a[12] == 127;
}

static __always_inline int is_martian(const struct pkt *p)
{
	if (p->family == 4)
		return (bpf_ntohl(p->dst.v4) >> 24) == 127 || (bpf_ntohl(p->src.v4) >> 24) == 127;
	return loopback6(p->dst.v6) || loopback6(p->src.v6);
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

/* The first rule of a class: what a packet whose class it is gets. */
static __always_inline struct sipxdp_rule *class_rule(__u32 gen, __u32 cls)
{
	__u32 idx = gen * SIPXDP_MAX_CLASSES + (cls & (SIPXDP_MAX_CLASSES - 1));

	return bpf_map_lookup_elem(&cls_rule, &idx);
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
	struct cursor c = {.start = (void *)(long)ctx->data,
			   .pos = (void *)(long)ctx->data,
			   .end = (void *)(long)ctx->data_end};
	struct pkt p = {};
	struct sipxdp_state *st;
	struct sipxdp_sip_cfg *cfg;
	struct sipxdp_policy_hdr *hdr;
	struct sipxdp_rule *rule;
	__u32 zero = 0, gen, table, port, cls, l3_off, l4_end, slot, action, off, len, inspect = 0;
	__u16 h_proto;
	int hit;

	p.len = c.end - c.pos;
	if (parse_eth(&c, &h_proto) < 0)
		goto malformed;
	l3_off = c.pos - (void *)(long)ctx->data;
	p.l3_off = l3_off;

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

	gen = st->active_gen & 1;
	if (p.frag_later) {
		__u32 r = sipxdp_frag_begin(ctx, &p, 0, 0, FRAG_LATER | (gen ? FRAG_GEN : 0));

		return judge_fragment(&p, 0, gen, r);
	}
	if (parse_l4(&c, &p) < 0)
		goto malformed;
	off = c.pos - (void *)(long)ctx->data;
	l4_end = l3_off + p.ip_len;
	len = l4_end > off ? l4_end - off : 0;

	/* Neighbour discovery (RS, RA, NS, NA, redirect): IPv6 stops working without it. */
	if (p.family == 6 && p.proto == IPPROTO_ICMPV6 && p.icmp_type >= 133 &&
	    p.icmp_type <= 137) {
		count(SIPXDP_CTR_IPV6_ND, p.len);
		return XDP_PASS;
	}

	hdr = bpf_map_lookup_elem(&policy_hdr, &gen);
	if (!hdr || !(hdr->flags & SIPXDP_HDR_VALID)) {
		count(SIPXDP_CTR_NO_POLICY, p.len);
		return XDP_PASS;
	}

	table = dport_table(&p, &port);
	cls = port_lookup(gen, table, port);
	/* When the first rule of the class so far matches any source port or
	 * address, it is the answer: the remaining lookups are skipped.
	 */
	rule = class_rule(gen, cls);
	/* A combination comb does not hold is the class's wild class (abi.h). */
	if (cls && rule && !(rule->flags & SIPXDP_RULE_NO_SPORT_ADDR) &&
	    (hdr->flags & SIPXDP_HDR_SPORT)) {
		__u32 sport = table <= SIPXDP_PT_UDP ? bpf_ntohs(p.sport) : 0;

		cls = combine(gen, SIPXDP_COMB_PS, cls, port_lookup(gen, SIPXDP_PT_SPORT, sport))
			      ?: rule->wild_sport;
		rule = class_rule(gen, cls);
	}
	if (cls && rule && !(rule->flags & SIPXDP_RULE_NO_ADDR) &&
	    (hdr->flags & (SIPXDP_HDR_SRC | SIPXDP_HDR_DST))) {
		__u32 acls;

		if (!(hdr->flags & SIPXDP_HDR_DST)) {
			acls = addr_class(&p, gen, SIPXDP_DIR_SRC);
		} else if (!(hdr->flags & SIPXDP_HDR_SRC)) {
			acls = addr_class(&p, gen, SIPXDP_DIR_DST);
		} else {
			__u32 scls = addr_class(&p, gen, SIPXDP_DIR_SRC);

			acls = combine(gen, SIPXDP_COMB_AD, scls,
				       addr_class(&p, gen, SIPXDP_DIR_DST));
			if (!acls) {
				struct sipxdp_rule *sr = class_rule(gen, scls);

				acls = sr ? sr->wild_dst : 0;
			}
		}
		cls = combine(gen, SIPXDP_COMB_FINAL, cls, acls) ?: rule->wild_addr;
		rule = class_rule(gen, cls);
	}
	if (!cls || !rule)
		goto dflt;
	slot = rule->counter;
	action = rule->action;
	if ((rule->flags & SIPXDP_RULE_INSPECT_SIP) &&
	    (cfg = bpf_map_lookup_elem(&sip_cfg, &gen)) && !is_trusted(&p, gen)) {
		inspect = FRAG_INSPECT;
		/* A first fragment too short to search across its end, or any
		 * fragment when the policy says so, drops (see sip.fragments).
		 */
		if (p.frag_first &&
		    ((cfg->flags & SIPXDP_SIP_FRAG_DROP) || len < SIPXDP_EDGE_MAX)) {
			slot = SIPXDP_CTR_FRAGMENT;
			action = SIPXDP_ACT_DROP;
			goto done;
		}
		hit = len ? sip_scan(ctx, gen, cfg, off, len, p.proto == IPPROTO_TCP) : 0;
		if (!hit && len && p.proto == IPPROTO_TCP) {
			hit = sipxdp_stream_edge(ctx, &p, off, len) ? run_plan(gen) : 0;
			if (!hit)
				sipxdp_stream_commit(&p);
		}
		if (hit > 0 && hit <= SIPXDP_MAX_PATTERNS) {
			slot = scanner_hit(&p, gen, hit);
			action = SIPXDP_ACT_DROP;
			goto done;
		}
	}
	goto decide;

dflt:
	slot = SIPXDP_CTR_DEFAULT;
	action = hdr->default_action;
decide:
	/* What the rules drop may still be the reply to a flow this host opened. */
	if (action == SIPXDP_ACT_DROP && (hdr->flags & SIPXDP_HDR_STATEFUL) &&
	    (p.proto == IPPROTO_ICMP || p.proto == IPPROTO_ICMPV6 || maybe_reply(&p)) &&
	    sipxdp_is_reply(ctx, &p, off, gen)) {
		slot = SIPXDP_CTR_ESTABLISHED;
		action = SIPXDP_ACT_ALLOW;
	}
done:
	/* The rest of a fragmented datagram carries no ports: its first
	 * fragment's verdict is kept for them.
	 */
	if (p.frag_first)
		return judge_fragment(
			&p, len, gen,
			sipxdp_frag_begin(ctx, &p, off, len,
					  (slot & FRAG_SLOT_MASK) |
						  (action == SIPXDP_ACT_ALLOW ? FRAG_ALLOW : 0) |
						  inspect | (gen ? FRAG_GEN : 0)));
	return judge(&p, slot, action);

malformed:
	count(SIPXDP_CTR_MALFORMED, p.len);
	return XDP_DROP;
}

char _license[] SEC("license") = "GPL";
