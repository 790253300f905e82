/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The maps of the sipxdp BPF object, shared by the XDP ingress program and
 * the TC egress program. ingress.bpf.c defines them (SIPXDP_DEFINE_MAPS);
 * egress.bpf.c declares them extern, and `bpftool gen object` links both
 * sources into one object, so both programs use the same maps. Maps only:
 * what works on them lives in the header of its feature. The loader pins
 * every map listed in loader/src/pinned_maps.h.
 */
#ifndef SIPXDP_MAPS_H
#define SIPXDP_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "sipxdp/abi.h"

#ifdef SIPXDP_DEFINE_MAPS
#define SIPXDP_MAP
#else
#define SIPXDP_MAP extern
#endif

/* The generation live now. */
SIPXDP_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sipxdp_state);
} state SEC(".maps");

/* Per-generation policy header: default action, dimensions in use. */
SIPXDP_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SIPXDP_GENS);
	__type(key, __u32);
	__type(value, struct sipxdp_policy_hdr);
} policy_hdr SEC(".maps");

/* Class of the rules matching a protocol+dport (or ICMP type), or a sport. */
SIPXDP_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, SIPXDP_PORT_CLASS_ENTRIES);
	__type(key, __u32);
	__type(value, __u32);
} port_class SEC(".maps");

/* Class of the rules matching an IPv4 source or destination prefix. */
SIPXDP_MAP struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 2 * SIPXDP_MAX_ENTRIES_PER_GEN);
	__type(key, struct sipxdp_lpm4_key);
	__type(value, __u32);
} lpm4 SEC(".maps");

/* Class of the rules matching an IPv6 source or destination prefix. */
SIPXDP_MAP struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 2 * SIPXDP_MAX_ENTRIES_PER_GEN);
	__type(key, struct sipxdp_lpm6_key);
	__type(value, __u32);
} lpm6 SEC(".maps");

/* Intersection of two classes (absent: no rule matches both). */
SIPXDP_MAP struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 2 * SIPXDP_MAX_ENTRIES_PER_GEN);
	__type(key, struct sipxdp_comb_key);
	__type(value, __u32);
} comb SEC(".maps");

/* First rule of a final class: action, counter slot, flags. */
SIPXDP_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, SIPXDP_GENS *SIPXDP_MAX_CLASSES);
	__type(key, __u32);
	__type(value, struct sipxdp_rule);
} cls_rule SEC(".maps");

/* Packets and bytes per built-in path and per rule slot. */
SIPXDP_MAP struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SIPXDP_CTR_MAX);
	__type(key, __u32);
	__type(value, struct sipxdp_counter);
} counters SEC(".maps");

/* Compiled policy description (JSON) per generation; read by the loader only.
 * A hash without preallocation: it costs the chunks written, not its capacity.
 */
SIPXDP_MAP struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, SIPXDP_GENS *SIPXDP_MANIFEST_CHUNKS);
	__type(key, __u32);
	__type(value, struct sipxdp_manifest_chunk);
} manifest SEC(".maps");

/* Scanner-pattern settings per generation. */
SIPXDP_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SIPXDP_GENS);
	__type(key, __u32);
	__type(value, struct sipxdp_sip_cfg);
} sip_cfg SEC(".maps");

/* Scanner patterns per generation: [gen * SIPXDP_MAX_PATTERNS + i]. */
SIPXDP_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SIPXDP_GENS *SIPXDP_MAX_PATTERNS);
	__type(key, __u32);
	__type(value, struct sipxdp_pattern);
} sip_patterns SEC(".maps");

/* Scanner gram and prefix tables per generation. */
SIPXDP_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SIPXDP_GENS);
	__type(key, __u32);
	__type(value, struct sipxdp_scan_tables);
} sip_tables SEC(".maps");

/* The scratch buffer: the payload at [0, SIPXDP_SCAN_MAX), and from
 * SCRATCH_EDGE up the bytes on both sides of a boundary (fragments, TCP
 * segments). A power of two, so reads are masked indexes; + 8: word reads
 * at the last index.
 */
#define SCRATCH_BUF 8192
#define SCAN_MASK (SCRATCH_BUF - 1)
#define SCRATCH_EDGE 4352

#define SCRATCH_PLANS 4
#define EDGE_NEED_HEAD 1
#define EDGE_NEED_TAIL 2

struct scratch {
	__u8 buf[SCRATCH_BUF + 8];
	__u32 nlines; /* "headers" mode: the header lines to search */
	__u32 lines[SIPXDP_MAX_SCAN_LINES][2];
	__u32 nplan; /* ranges of buf the main program is to search (boundaries) */
	__u32 plan[SCRATCH_PLANS][2];
	__u32 edges; /* EDGE_NEED_*: what a fragment leaves for its neighbours */
	__u32 edge_start;
	__u32 edge_keep;
	__u32 tail_len; /* a TCP segment's new tail, kept if it passes */
	__u32 tail_next;
	/* Rate limits (ratelimit.h): the walk over a TCP segment's lines, and
	 * the requests found, by method (the last slot: unknown, every limit). */
	__u32 rl_n, rl_pos, rl_line_start, rl_lines;
	__u16 rl_tally[SIPXDP_M_NUM + 1];
	struct sipxdp_rl_key rl_key;
	/* A ban being written (bans.h): off the stack, which three nested
	 * global functions share. */
	struct sipxdp_ban ban;
	struct sipxdp_ban6_key ban_k6;
};

/* Per-CPU copy of the payload being searched. */
SIPXDP_MAP struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

/* One bit per hash of an address or flow (keys.h): a clear bit proves
 * "absent" without the cost of a hash-map lookup. Bits are only ever set; a
 * stale one just costs the lookup it would have saved.
 */
struct hint_bits {
	__u64 bits[SIPXDP_HINT_BITS / 64];
};

/* Hints of banned sources (bans.h). */
SIPXDP_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hint_bits);
} ban_hint SEC(".maps");

/* IPv4 sources banned for sending a scanner pattern; expiry checked per packet. */
SIPXDP_MAP struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct sipxdp_ban);
} bans4 SEC(".maps");

/* IPv6 sources banned for sending a scanner pattern. */
SIPXDP_MAP struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct sipxdp_ban6_key);
	__type(value, struct sipxdp_ban);
} bans6 SEC(".maps");

/* Manual bans (sipxdp ban add), any prefix length. */
SIPXDP_MAP struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, struct sipxdp_ban_lpm4);
	__type(value, struct sipxdp_ban);
} ban_prefixes4 SEC(".maps");

SIPXDP_MAP struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, struct sipxdp_ban_lpm6);
	__type(value, struct sipxdp_ban);
} ban_prefixes6 SEC(".maps");

/* Fragmented datagrams: verdicts and boundary bytes (abi.h). */
SIPXDP_MAP struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct sipxdp_frag_key);
	__type(value, struct sipxdp_frag_state);
} frags SEC(".maps");

/* TCP streams on inspect_sip rules: the last bytes of the previous segment. */
SIPXDP_MAP struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct sipxdp_flow_key);
	__type(value, struct sipxdp_stream_tail);
} tcp_tails SEC(".maps");

struct rcu_inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
};

/* Written by the loader after a generation flip: an update of a map-in-map
 * returns only after an RCU grace period, so once it returns no packet is
 * still being judged by the old generation and its structures may be reused.
 */
SIPXDP_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct rcu_inner);
} rcu_sync SEC(".maps");

/* Outbound flows (stateful replies); max_entries is set by the loader. */
SIPXDP_MAP struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SIPXDP_FLOWS_DEFAULT);
	__type(key, struct sipxdp_flow_key);
	__type(value, struct sipxdp_flow);
} flows SEC(".maps");

/* Hints of recorded flows and of their remote addresses (flows.h). */
SIPXDP_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hint_bits);
} flow_hint SEC(".maps");

/* The DSCP rule of each outbound first fragment, for its later fragments
 * (the kernel fragments before TC egress; later fragments carry no ports).
 */
struct out_frag {
	__u64 expires_ns;
	__u32 rule; /* DSCP rule index + 1; 0: none matched */
	__u32 gen;
};

SIPXDP_MAP struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct sipxdp_frag_key);
	__type(value, struct out_frag);
} out_frags SEC(".maps");

/* DSCP rules per generation: [gen * SIPXDP_MAX_DSCP_RULES + i]. */
SIPXDP_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SIPXDP_GENS *SIPXDP_MAX_DSCP_RULES);
	__type(key, __u32);
	__type(value, struct sipxdp_dscp_rule);
} dscp_rules SEC(".maps");

/* Drop events (abi.h, events.h). */
SIPXDP_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sipxdp_event_cfg);
} event_cfg SEC(".maps");

SIPXDP_MAP struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SIPXDP_CTR_MAX);
	__type(key, __u32);
	__type(value, struct sipxdp_event_bucket);
} event_budget SEC(".maps");

SIPXDP_MAP struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sipxdp_event_stats);
} event_stats SEC(".maps");

SIPXDP_MAP struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SIPXDP_EVENT_RECENT);
	__type(key, __u32);
	__type(value, struct sipxdp_event);
} event_recent SEC(".maps");

struct event_ring {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, SIPXDP_EVENT_RING_BYTES);
};

SIPXDP_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, SIPXDP_EVENT_READERS);
	__type(key, __u32);
	__array(values, struct event_ring);
} event_readers SEC(".maps");

SIPXDP_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SIPXDP_EVENT_READERS);
	__type(key, __u32);
	__type(value, struct sipxdp_event_owner);
} event_owners SEC(".maps");

/* SIP rate limits per generation: [gen * SIPXDP_MAX_RATE_LIMITS + i] (ratelimit.h). */
SIPXDP_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SIPXDP_GENS *SIPXDP_MAX_RATE_LIMITS);
	__type(key, __u32);
	__type(value, struct sipxdp_rate_limit);
} rate_limits SEC(".maps");

/* Token buckets per limit and source; max_entries is set by the loader
 * (sip.rate_limit_sources). */
SIPXDP_MAP struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SIPXDP_RL_SOURCES_DEFAULT);
	__type(key, struct sipxdp_rl_key);
	__type(value, struct sipxdp_rl_state);
} rl_state SEC(".maps");

/* Authentication failures per remote address (responses.h). */
SIPXDP_MAP struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct sipxdp_addr_key);
	__type(value, struct sipxdp_auth_state);
} auth_fails SEC(".maps");

/* Learned trust: registered phones' flows (trust.h). */
SIPXDP_MAP struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct sipxdp_trust_key);
	__type(value, struct sipxdp_trust);
} trust_learned SEC(".maps");

/* Hints of the addresses with learned trust. */
SIPXDP_MAP struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hint_bits);
} trust_hint SEC(".maps");

/* The egress program's copy of a SIP response's first bytes (zeroes after
 * them), and what the walk over its header lines found (responses.h).
 */
#define RESP_BUF 2048
#define RESP_MASK (RESP_BUF - 1)

struct resp_scratch {
	__u8 buf[RESP_BUF];
	__u32 n; /* bytes copied */
	__u32 pos;
	__u32 in_contact; /* inside a Contact header */
	__u32 in_angle;	  /* inside its <URI>: parameters there are the URI's */
	__u32 cseq_register;
	__u32 pad;
	__s64 expires_hdr;
	__s64 contact_expires; /* the least expires= of every Contact, -1: none */
};

SIPXDP_MAP struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct resp_scratch);
} resp_scratch SEC(".maps");

#endif /* SIPXDP_MAPS_H */
