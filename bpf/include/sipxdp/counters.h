/* SPDX-License-Identifier: GPL-2.0 */
/* Per-CPU packet and byte counters, by slot (abi.h). */
#ifndef SIPXDP_COUNTERS_H
#define SIPXDP_COUNTERS_H

#include "sipxdp/maps.h"

static __always_inline void count_n(__u32 slot, __u32 packets, __u32 len)
{
	struct sipxdp_counter *c = bpf_map_lookup_elem(&counters, &slot);

	if (c) {
		c->packets += packets;
		c->bytes += len;
	}
}

static __always_inline void count(__u32 slot, __u32 len)
{
	count_n(slot, 1, len);
}

#endif /* SIPXDP_COUNTERS_H */
