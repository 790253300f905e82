/* SPDX-License-Identifier: GPL-2.0 */
/* TCP streams on inspect_sip rules: a pattern split between segments (ingress). */
#ifndef SIPXDP_STREAM_H
#define SIPXDP_STREAM_H

#include "sipxdp/edges.h"

/* New entries are written from here, not from the stack. */
const struct sipxdp_stream_tail tail_zero = {};

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

#endif /* SIPXDP_STREAM_H */
