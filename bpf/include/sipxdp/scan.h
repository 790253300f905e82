/* SPDX-License-Identifier: GPL-2.0 */
/*
 * SIP scanner matcher (ingress).
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
#ifndef SIPXDP_SCAN_H
#define SIPXDP_SCAN_H

#include "sipxdp/bans.h"

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

/* sip.trusted: sources never searched and never banned. */
static __always_inline int is_trusted(const struct pkt *p, __u32 gen)
{
	return lpm_value(p, gen, SIPXDP_DIR_TRUSTED, 0) != 0;
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
		ban_source(p, gen, cfg->ban_ns, slot);
	return slot;
}

#endif /* SIPXDP_SCAN_H */
