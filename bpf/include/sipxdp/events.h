/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Drop events: what `sipxdp events`, `capture` and the service's journal
 * lines show. A drop makes an event only when its reason (its counter slot)
 * has credit left in this CPU's token bucket for that reason; otherwise it
 * counts as suppressed, which costs a lookup, a clock read and a few adds.
 * The event (abi.h) goes to this CPU's recent slot and to every reader's
 * ring buffer.
 *
 * sipxdp_drop_event is a global function, so the verifier checks it once,
 * not at each of the judge's exits that call it; ingress.bpf.c defines it.
 */
#ifndef SIPXDP_EVENTS_H
#define SIPXDP_EVENTS_H

#include "sipxdp/maps.h"

int sipxdp_drop_event(struct xdp_md *ctx, __u32 slot);

#ifdef SIPXDP_DEFINE_MAPS

/* Takes one event's credit from the reason's bucket; 0 (and one more
 * suppressed) when there is not enough.
 */
static __always_inline int event_credit(const struct sipxdp_event_cfg *cfg, __u32 slot)
{
	struct sipxdp_event_bucket *b = bpf_map_lookup_elem(&event_budget, &slot);
	__u64 now, credit;

	if (!b)
		return 0;
	now = bpf_ktime_get_coarse_ns();
	credit = b->credit_ns + (now - b->last_ns);
	if (credit > cfg->burst_ns)
		credit = cfg->burst_ns;
	b->last_ns = now;
	if (credit < cfg->cost_ns) {
		b->credit_ns = credit;
		b->suppressed++;
		return 0;
	}
	b->credit_ns = credit - cfg->cost_ns;
	b->emitted++;
	return 1;
}

__attribute__((noinline)) int sipxdp_drop_event(struct xdp_md *ctx, __u32 slot)
{
	struct sipxdp_event_stats *st;
	struct sipxdp_event_cfg *cfg;
	struct sipxdp_event *ev;
	__u32 zero = 0, idx, len, cap;

	cfg = bpf_map_lookup_elem(&event_cfg, &zero);
	if (!cfg || !(cfg->flags & SIPXDP_EVENTS_DROPS) || slot >= SIPXDP_CTR_MAX)
		return 0;
	if (!event_credit(cfg, slot))
		return 0;
	st = bpf_map_lookup_elem(&event_stats, &zero);
	if (!st)
		return 0;
	idx = st->seq % SIPXDP_EVENT_RECENT;
	st->seq++;
	ev = bpf_map_lookup_elem(&event_recent, &idx);
	if (!ev)
		return 0;
	len = bpf_xdp_get_buff_len(ctx);
	cap = len < cfg->snaplen ? len : cfg->snaplen;
	if (cap > SIPXDP_EVENT_SNAP_MAX)
		cap = SIPXDP_EVENT_SNAP_MAX;
	ev->h.ts_ns = bpf_ktime_get_ns();
	ev->h.seq = st->seq;
	ev->h.ifindex = ctx->ingress_ifindex;
	ev->h.slot = slot;
	ev->h.pkt_len = len;
	ev->h.action = SIPXDP_ACT_DROP;
	ev->h.cpu = bpf_get_smp_processor_id();
	if (cap == 0 || bpf_xdp_load_bytes(ctx, 0, ev->data, cap) < 0)
		cap = 0;
	ev->h.cap_len = cap;
	/* Unrolled: each reader's key a constant, so the verifier sees no loop. */
#pragma clang loop unroll(full)
	for (int i = 0; i < SIPXDP_EVENT_READERS; i++) {
		__u32 key = i;
		void *ring = bpf_map_lookup_elem(&event_readers, &key);

		if (ring && bpf_ringbuf_output(ring, ev, sizeof(ev->h) + cap, 0) < 0)
			st->lost++;
	}
	return 1;
}

#endif /* SIPXDP_DEFINE_MAPS */

#endif /* SIPXDP_EVENTS_H */
