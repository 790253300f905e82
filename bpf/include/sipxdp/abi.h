/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * sipxdp ABI: the one header shared by the BPF programs and the C++ loader.
 * Map keys and values, counter layout, limits and enums live here and nowhere
 * else. Fixed-width __u* types only; the loader static_asserts the sizes.
 *
 * Policy lookup (compiled in userspace, see loader/src/compiler.cpp):
 *   every rule set that can match a packet is a "class" (a small integer; 0 is
 *   the empty set). Per dimension the kernel finds a class with one lookup:
 *     port_class  [gen][table][port]   proto+dport (or ICMP type), and sport
 *     lpm4 / lpm6 [gen][dir][prefix]   source / destination address
 *   and combines two classes with one hash lookup (comb). The final class
 *   names the first matching rule (cls_rule). Cost does not depend on the
 *   number of rules or prefixes. Every policy structure is keyed by a
 *   generation (0/1); a policy edit fills the spare generation and flips
 *   state.active_gen with one write.
 */
#ifndef SIPXDP_ABI_H
#define SIPXDP_ABI_H

#include <linux/types.h>

#define SIPXDP_ABI_VERSION 1

#define SIPXDP_GENS 2
#define SIPXDP_MAX_RULES 16384
#define SIPXDP_MAX_CLASSES 65536
#define SIPXDP_PORTS 65536

/* Port tables: one per protocol kind for the destination side, one for sport. */
enum sipxdp_port_table {
	SIPXDP_PT_TCP = 0,   /* index: TCP destination port */
	SIPXDP_PT_UDP = 1,   /* index: UDP destination port */
	SIPXDP_PT_ICMP = 2,  /* index: ICMP type */
	SIPXDP_PT_ICMP6 = 3, /* index: ICMPv6 type */
	SIPXDP_PT_OTHER = 4, /* index: IP protocol number */
	SIPXDP_PT_SPORT = 5, /* index: TCP/UDP source port (0 for others) */
	SIPXDP_PT_NUM = 6,
};

static inline __u32 sipxdp_port_index(__u32 gen, __u32 table, __u32 port)
{
	return (gen * SIPXDP_PT_NUM + table) * SIPXDP_PORTS + port;
}

#define SIPXDP_PORT_CLASS_ENTRIES (SIPXDP_GENS * SIPXDP_PT_NUM * SIPXDP_PORTS)

enum sipxdp_dir {
	SIPXDP_DIR_SRC = 0,
	SIPXDP_DIR_DST = 1,
};

/* LPM keys: prefixlen counts the 32 bits of gen/dir/pad plus the address bits. */
#define SIPXDP_LPM_HDR_BITS 32

struct sipxdp_lpm4_key {
	__u32 prefixlen;
	__u8 gen;
	__u8 dir;
	__u8 pad[2];
	__u8 addr[4];
};

struct sipxdp_lpm6_key {
	__u32 prefixlen;
	__u8 gen;
	__u8 dir;
	__u8 pad[2];
	__u8 addr[16];
};

enum sipxdp_comb_stage {
	SIPXDP_COMB_PS = 1,    /* proto+dport class x sport class */
	SIPXDP_COMB_AD = 2,    /* source class x destination class */
	SIPXDP_COMB_FINAL = 3, /* port class x address class */
};

struct sipxdp_comb_key {
	__u8 gen;
	__u8 stage;
	__u8 pad[2];
	__u32 a;
	__u32 b;
};

enum sipxdp_action {
	SIPXDP_ACT_DROP = 0,
	SIPXDP_ACT_ALLOW = 1,
};

/* Rule flags. */
#define SIPXDP_RULE_INSPECT_SIP (1u << 0)

/* What a packet does when its final class is cls: cls_rule[gen * MAX_CLASSES + cls]. */
struct sipxdp_rule {
	__u32 action;  /* enum sipxdp_action */
	__u32 counter; /* slot in counters */
	__u32 flags;   /* SIPXDP_RULE_* */
	__u32 rule;    /* index in the policy, for tests and tracing */
};

/* Which dimensions the active policy uses; unused ones cost no lookup. */
#define SIPXDP_HDR_SPORT (1u << 0)
#define SIPXDP_HDR_SRC (1u << 1)
#define SIPXDP_HDR_DST (1u << 2)
#define SIPXDP_HDR_VALID (1u << 31)

/* policy_hdr[gen] */
struct sipxdp_policy_hdr {
	__u32 flags;	      /* SIPXDP_HDR_* */
	__u32 default_action; /* enum sipxdp_action */
	__u32 nrules;
	__u32 pad;
};

/* state[0]: the one word a policy edit writes to make a generation live. */
struct sipxdp_state {
	__u32 active_gen;
	__u32 abi_version;
};

/* Counter slots (per-CPU packets and bytes, summed by the loader). */
enum sipxdp_builtin_counter {
	SIPXDP_CTR_NONIP = 0,	  /* non-IP frames (ARP, LLDP...): pass */
	SIPXDP_CTR_MALFORMED = 1, /* truncated or malformed headers: drop */
	SIPXDP_CTR_MARTIAN = 2,	  /* 127.0.0.0/8 or ::1 on a non-loopback device: drop */
	SIPXDP_CTR_DEFAULT = 3,	  /* no rule matched: policy default action */
	SIPXDP_CTR_IPV6_ND = 4,	  /* ICMPv6 neighbour discovery: pass */
	SIPXDP_CTR_FRAGMENT = 5,  /* non-first fragment without a known verdict: drop */
	SIPXDP_CTR_NO_POLICY = 6, /* no policy loaded yet: pass */
	SIPXDP_CTR_BUILTIN_NUM = 7,
};

#define SIPXDP_CTR_BUILTIN_MAX 32
#define SIPXDP_CTR_RULE_BASE 512
/* A policy edit never reuses a slot the old policy still counts on. */
#define SIPXDP_CTR_RULE_SLOTS (2 * SIPXDP_MAX_RULES)
#define SIPXDP_CTR_MAX (SIPXDP_CTR_RULE_BASE + SIPXDP_CTR_RULE_SLOTS)

struct sipxdp_counter {
	__u64 packets;
	__u64 bytes;
};

/* Manifest: the compiled policy's description (JSON text), for stats and status. */
#define SIPXDP_MANIFEST_CHUNK 4096
#define SIPXDP_MANIFEST_CHUNKS 1024 /* per generation: 4 MiB */

struct sipxdp_manifest_chunk {
	__u8 data[SIPXDP_MANIFEST_CHUNK];
};

#endif /* SIPXDP_ABI_H */
