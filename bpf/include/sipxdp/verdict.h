/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The judge stage of xdp_ingress: counts the packet on the verdict's slot
 * and returns its action; a first fragment's verdict is kept for the rest
 * of its datagram (frag.h).
 */
#ifndef SIPXDP_VERDICT_H
#define SIPXDP_VERDICT_H

#include "sipxdp/frag.h"

static __always_inline int judge(struct xdp_md *ctx, const struct judgement *j)
{
	if (j->p.frag_first)
		return judge_first_fragment(ctx, j);
	return settle(ctx, j, j->slot, j->action);
}

#endif /* SIPXDP_VERDICT_H */
