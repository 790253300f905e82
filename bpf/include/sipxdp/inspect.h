/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The inspect stage of xdp_ingress: a packet whose rule has inspect_sip,
 * from a source not trusted, first meets the SIP rate limits (ratelimit.h;
 * a registered phone's flow with learned trust is exempt), then is searched
 * for scanner patterns (scan.h), across TCP segment boundaries too
 * (stream.h). A hit drops it on the pattern's counter and bans the source
 * (not a trusted phone's); no reply may undo that.
 */
#ifndef SIPXDP_INSPECT_H
#define SIPXDP_INSPECT_H

#include "sipxdp/ratelimit.h"
#include "sipxdp/stream.h"
#include "sipxdp/trusted.h"

static __always_inline void inspect(struct xdp_md *ctx, struct judgement *j)
{
	struct sipxdp_sip_cfg *cfg;
	int hit;

	if (!(j->rule_flags & SIPXDP_RULE_INSPECT_SIP) ||
	    !(cfg = bpf_map_lookup_elem(&sip_cfg, &j->gen)) || is_trusted(&j->p, j->gen))
		return;
	j->inspected = 1;
	if (cfg->nlimits && j->len) {
		__u32 over = sipxdp_rate_limit(ctx, &j->p, j->off, j->len, j->gen);

		if (over) {
			j->slot = over;
			j->action = SIPXDP_ACT_DROP;
			j->settled = 1;
			return;
		}
	}
	/* A first fragment too short to search across its end, or any
	 * fragment when the policy says so, drops (see sip.fragments).
	 */
	if (j->p.frag_first && ((cfg->flags & SIPXDP_SIP_FRAG_DROP) || j->len < SIPXDP_EDGE_MAX)) {
		j->slot = SIPXDP_CTR_FRAGMENT;
		j->action = SIPXDP_ACT_DROP;
		j->settled = 1;
		return;
	}
	hit = j->len ? sip_scan(ctx, j->gen, cfg, j->off, j->len, j->p.proto == IPPROTO_TCP) : 0;
	if (!hit && j->len && j->p.proto == IPPROTO_TCP) {
		hit = sipxdp_stream_edge(ctx, &j->p, j->off, j->len) ? run_plan(j->gen) : 0;
		if (!hit)
			sipxdp_stream_commit(&j->p);
	}
	if (hit > 0 && hit <= SIPXDP_MAX_PATTERNS) {
		/* A registered phone's flow: dropped, its address not banned. */
		j->slot = sipxdp_trusted_flow(&j->p, j->gen) ? pattern_slot(j->gen, hit)
							     : scanner_hit(&j->p, j->gen, hit);
		j->action = SIPXDP_ACT_DROP;
		j->settled = 1;
	}
}

#endif /* SIPXDP_INSPECT_H */
