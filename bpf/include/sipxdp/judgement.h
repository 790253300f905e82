/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the XDP program knows of a packet as it passes the stages of
 * xdp_ingress (ingress.bpf.c), and the stages' protocol: a stage that ends
 * the walk counts the packet and returns its XDP action; one that does not
 * returns NEXT. Stages that only refine the verdict (classify, inspect,
 * replies) write it here and return nothing.
 */
#ifndef SIPXDP_JUDGEMENT_H
#define SIPXDP_JUDGEMENT_H

#include "sipxdp/counters.h"
#include "sipxdp/events.h"
#include "sipxdp/parse.h"

struct judgement {
	struct pkt p;
	struct sipxdp_policy_hdr *hdr; /* the live generation's */
	__u32 gen;
	__u32 l3_off;	  /* frame offset of the IP header */
	__u32 off, len;	  /* the L4 payload: frame offset and length */
	__u32 slot;	  /* the verdict so far: counter slot */
	__u32 action;	  /* and enum sipxdp_action */
	__u32 rule_flags; /* SIPXDP_RULE_* of the rule that matched (0: the default) */
	__u32 inspected;  /* the payload was searched for scanner patterns */
	__u32 settled;	  /* a pattern decided the verdict: no reply may change it */
};

#define NEXT (-1)

/* Runs a stage; returns its action from the caller when it ends the walk. */
#define STAGE(call)                                                                                \
	do {                                                                                       \
		int verdict_ = (call);                                                             \
		if (verdict_ != NEXT)                                                              \
			return verdict_;                                                           \
	} while (0)

static __always_inline int xdp_action(__u32 action)
{
	return action == SIPXDP_ACT_ALLOW ? XDP_PASS : XDP_DROP;
}

/* Counts the packet on `slot` and ends the walk with `action`; a drop may
 * make an event (events.h).
 */
static __always_inline int settle(struct xdp_md *ctx, const struct judgement *j, __u32 slot,
				  __u32 action)
{
	count(slot, j->p.len);
	if (action != SIPXDP_ACT_ALLOW)
		sipxdp_drop_event(ctx, slot);
	return xdp_action(action);
}

#endif /* SIPXDP_JUDGEMENT_H */
