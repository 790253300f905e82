// SPDX-License-Identifier: GPL-2.0
/*
 * sipxdp XDP ingress: every packet through the same stages, each in the
 * header of its feature (see ARCHITECTURE.md):
 *   parse      frame.h    Ethernet, VLANs, IPv4/IPv6 (malformed drop, non-IP pass)
 *   early      early.h    martians, banned sources (but registered phones,
 *                         trusted.h), later fragments
 *   transport  frame.h    ports and ICMP types; neighbour discovery; no policy yet
 *   classify   lookup.h   the first matching rule, or the default
 *   inspect    inspect.h  SIP rate limits (ratelimit.h), scanner patterns (drop and ban)
 *   replies    replies.h  a drop that answers a flow this host opened passes
 *   judge      verdict.h  count; first fragments leave their verdict for the rest
 * The maps are defined here (maps.h) and shared with egress.bpf.c.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define SIPXDP_DEFINE_MAPS
#include "sipxdp/early.h"
#include "sipxdp/frame.h"
#include "sipxdp/inspect.h"
#include "sipxdp/replies.h"
#include "sipxdp/verdict.h"

SEC("xdp")
int xdp_ingress(struct xdp_md *ctx)
{
	struct cursor c = {
		.start = (void *)(long)ctx->data,
		.pos = (void *)(long)ctx->data,
		.end = (void *)(long)ctx->data_end,
	};
	struct judgement j = {};

	STAGE(parse_frame(ctx, &c, &j));
	STAGE(early_verdicts(ctx, &c, &j));
	STAGE(parse_transport(ctx, &c, &j));
	classify(&j);
	inspect(ctx, &j);
	replies(ctx, &j);
	return judge(ctx, &j);
}

char _license[] SEC("license") = "GPL";
