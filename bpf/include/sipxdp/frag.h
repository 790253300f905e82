/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Fragments (ingress): the first fragment's verdict for the rest of its
 * datagram, and for datagrams whose rule searches for patterns, every
 * fragment and every boundary between them searched (abi.h).
 */
#ifndef SIPXDP_FRAG_H
#define SIPXDP_FRAG_H

#include "sipxdp/edges.h"
#include "sipxdp/judgement.h"

/* New entries are written from here, not from the stack (160 bytes of it). */
const struct sipxdp_frag_state frag_zero = {};

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

/* A fragment's verdict from sipxdp_frag_begin: the planned search, then the
 * second step; counts the packet and ends the walk.
 */
static __always_inline int settle_fragment(struct xdp_md *ctx, const struct judgement *j, __u32 len,
					   __u32 r)
{
	if (r & FRAG_SCAN) {
		__u32 hit = run_plan(j->gen);

		r = sipxdp_frag_end(&j->p, len, (r & ~FRAG_SCAN) | (hit << FRAG_HIT_SHIFT));
	}
	return settle(ctx, j, r & FRAG_SLOT_MASK,
		      r & FRAG_ALLOW ? SIPXDP_ACT_ALLOW : SIPXDP_ACT_DROP);
}

/* A later fragment (no ports): its datagram's verdict. */
static __always_inline int judge_later_fragment(struct xdp_md *ctx, const struct judgement *j)
{
	return settle_fragment(
		ctx, j, 0,
		sipxdp_frag_begin(ctx, &j->p, 0, 0, FRAG_LATER | (j->gen ? FRAG_GEN : 0)));
}

/* A first fragment: the rules' verdict, kept for the rest of its datagram. */
static __always_inline int judge_first_fragment(struct xdp_md *ctx, const struct judgement *j)
{
	__u32 v = (j->slot & FRAG_SLOT_MASK) | (j->action == SIPXDP_ACT_ALLOW ? FRAG_ALLOW : 0) |
		  (j->inspected ? FRAG_INSPECT : 0) | (j->gen ? FRAG_GEN : 0);

	return settle_fragment(ctx, j, j->len, sipxdp_frag_begin(ctx, &j->p, j->off, j->len, v));
}

#endif /* SIPXDP_FRAG_H */
