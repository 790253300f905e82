/* SPDX-License-Identifier: GPL-2.0 */
#ifndef SIPXDP_EDGES_H
#define SIPXDP_EDGES_H

#include "sipxdp/scan.h"

/*
 * Boundaries (ingress). A pattern split between two fragments of a datagram, or two
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

/* The last `keep` (1-63) bytes of the payload at frame offset off + len, to scratch[EDGE_B]. */
static __always_inline int load_tail(struct xdp_md *ctx, struct scratch *s, __u32 off, __u32 len,
				     __u32 keep)
{
	barrier_var(keep); /* the test must be on the register passed (see sip_scan) */
	if (keep < 1 || keep > SIPXDP_EDGE_KEEP)
		return -1;
	return bpf_xdp_load_bytes(ctx, off + len - keep, &s->buf[EDGE_B], keep);
}

#endif /* SIPXDP_EDGES_H */
