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
#ifdef __cplusplus
#include <netinet/in.h>
#define SIPXDP_ASSERT(cond, msg) static_assert(cond, msg)
#else
#include <linux/in.h>
#include <linux/in6.h>
#define SIPXDP_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

#define SIPXDP_ABI_VERSION 6

#ifndef NSEC_PER_SEC
#define NSEC_PER_SEC 1000000000ull
#endif

#define SIPXDP_GENS 2
#define SIPXDP_MAX_RULES 16384
#define SIPXDP_MAX_CLASSES 65536
#define SIPXDP_PORTS 65536
/* lpm4, lpm6 and comb hold both generations while a policy edit is written. */
#define SIPXDP_MAX_ENTRIES_PER_GEN (1 << 20)

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

/* The destination-side table of a packet (and of a rule's protocols): ICMP
 * types are looked up only for ICMP over IPv4 and ICMPv6 over IPv6; anything
 * else by its protocol number in SIPXDP_PT_OTHER.
 */
static inline __u32 sipxdp_dport_table(__u8 family, __u8 proto)
{
	switch (proto) {
	case IPPROTO_TCP:
		return SIPXDP_PT_TCP;
	case IPPROTO_UDP:
		return SIPXDP_PT_UDP;
	case IPPROTO_ICMP:
		return family == 4 ? SIPXDP_PT_ICMP : SIPXDP_PT_OTHER;
	case IPPROTO_ICMPV6:
		return family == 6 ? SIPXDP_PT_ICMP6 : SIPXDP_PT_OTHER;
	}
	return SIPXDP_PT_OTHER;
}

/* The index in that table: port (host order), ICMP type, or protocol number. */
static inline __u32 sipxdp_dport_key(__u32 table, __u8 proto, __u16 dport, __u8 icmp_type)
{
	switch (table) {
	case SIPXDP_PT_TCP:
	case SIPXDP_PT_UDP:
		return dport;
	case SIPXDP_PT_ICMP:
	case SIPXDP_PT_ICMP6:
		return icmp_type;
	}
	return proto;
}

#define SIPXDP_PORT_CLASS_ENTRIES (SIPXDP_GENS * SIPXDP_PT_NUM * SIPXDP_PORTS)

enum sipxdp_dir {
	SIPXDP_DIR_SRC = 0,
	SIPXDP_DIR_DST = 1,
	SIPXDP_DIR_TRUSTED = 2, /* sip.trusted: sources never scanned nor banned */
	SIPXDP_DIR_DSCP = 3,	/* DSCP rule destinations (value: rule mask) */
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
/* The class's first rule matches any address (any source port and address):
 * a packet whose class this is needs no further lookup. */
#define SIPXDP_RULE_NO_ADDR (1u << 1)
#define SIPXDP_RULE_NO_SPORT_ADDR (1u << 2)

/*
 * What a packet does when its final class is cls: cls_rule[gen * MAX_CLASSES + cls].
 * comb holds a pair only where the result differs from the first class's
 * "wild" class: its rules that every class of the other dimension holds
 * (those with no constraint there). A missing pair means that wild class,
 * so comb grows with the rules that constrain a dimension, not with the
 * product of the classes.
 */
struct sipxdp_rule {
	__u32 action;	  /* enum sipxdp_action */
	__u32 counter;	  /* slot in counters */
	__u32 flags;	  /* SIPXDP_RULE_* */
	__u32 wild_sport; /* COMB_PS miss: this class & rules with any source port */
	__u32 wild_addr;  /* COMB_FINAL miss: this class & rules with any address */
	__u32 wild_dst;	  /* COMB_AD miss (a source class): & rules with any destination */
};

/* Which dimensions the active policy uses; unused ones cost no lookup. */
#define SIPXDP_HDR_SPORT (1u << 0)
#define SIPXDP_HDR_SRC (1u << 1)
#define SIPXDP_HDR_DST (1u << 2)
#define SIPXDP_HDR_STATEFUL (1u << 3)	   /* egress records flows, ingress lets replies in */
#define SIPXDP_HDR_DSCP_DST (1u << 4)	   /* some DSCP rule matches on destination */
#define SIPXDP_HDR_SIP_RESPONSES (1u << 5) /* egress reads SIP responses (auth failures, trust) */
#define SIPXDP_HDR_VALID (1u << 31)

/* Flow timeouts, by kind. Other protocols open no flows (keyed by
 * addresses alone they would let anything of that protocol in).
 */
enum sipxdp_flow_kind {
	SIPXDP_FLOW_TCP = 0,
	SIPXDP_FLOW_UDP = 1,
	SIPXDP_FLOW_ICMP = 2, /* echo requests (ICMP and ICMPv6), by identifier */
	SIPXDP_FLOW_KINDS = 3,
};

static inline __u32 sipxdp_flow_kind(__u8 proto)
{
	switch (proto) {
	case IPPROTO_TCP:
		return SIPXDP_FLOW_TCP;
	case IPPROTO_UDP:
		return SIPXDP_FLOW_UDP;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		return SIPXDP_FLOW_ICMP;
	}
	return SIPXDP_FLOW_KINDS;
}

/* policy_hdr[gen] */
struct sipxdp_policy_hdr {
	__u32 flags;	      /* SIPXDP_HDR_* */
	__u32 default_action; /* enum sipxdp_action */
	__u32 ndscp;	      /* DSCP rules in dscp_rules[gen] */
	__u32 flow_timeout_s[SIPXDP_FLOW_KINDS];
};

/* state[0]: the one word a policy edit writes to make a generation live, and
 * where the instance was attached (so that a detach can find and remove what
 * an attach made, even one killed half-way).
 */
struct sipxdp_state {
	__u32 active_gen;
	__u32 abi_version;
	__u32 manual_bans;  /* entries in ban_prefixes: 0 skips the lookup */
	__u32 tc_flags;	    /* SIPXDP_TC_*: how the egress program was attached */
	__u32 tc_ifindex;   /* where (in the instance's network namespace) */
	__u32 settled;	    /* loader: 1 once no packet can still see the other generation */
	__u64 netns_cookie; /* the instance's network namespace (SO_NETNS_COOKIE) */
	__u64 applies;	    /* policies applied since the attach, the first included */
};

#define SIPXDP_TC_ATTACHED (1u << 0)
#define SIPXDP_TC_OWN_CLSACT (1u << 1) /* sipxdp created the clsact qdisc: detach removes it */
#define SIPXDP_TC_HANDLE 0x5d1f	       /* the egress filter's handle and priority */
#define SIPXDP_TC_PRIORITY 1	       /* first: it never ends the filter walk */

/*
 * Stateful replies. The egress program records each outbound flow (seen from
 * this host: local and remote address and port; for ICMP echo the identifier
 * as local port); the ingress program lets a packet the rules would drop
 * through when it is the reply of a flow seen within its timeout.
 */
struct sipxdp_flow_key {
	__u8 family;
	__u8 proto;
	__u16 pad;
	__be16 lport; /* TCP/UDP local port, ICMP echo identifier, 0 otherwise */
	__be16 rport;
	__u8 laddr[16]; /* IPv4 in the first 4 bytes */
	__u8 raddr[16];
};

struct sipxdp_flow {
	__u64 seen_ns; /* CLOCK_MONOTONIC_COARSE of the last outbound packet */
};

#define SIPXDP_FLOWS_DEFAULT 65536
#define SIPXDP_FLOW_REFRESH_NS NSEC_PER_SEC /* refresh seen_ns at most once a second */

/* Hint bitmaps (bans, flows): one bit per hash, 2^20 bits (128 KiB) each. */
#define SIPXDP_HINT_SHIFT 20
#define SIPXDP_HINT_BITS (1u << SIPXDP_HINT_SHIFT)

static inline __u32 sipxdp_flow_hash(const struct sipxdp_flow_key *k)
{
	const __u32 *w = (const __u32 *)k;
	__u32 h = 0;

	for (int i = 0; i < (int)(sizeof(*k) / 4); i++)
		h = (h ^ w[i]) * 0x9e3779b1u;
	return h >> (32 - SIPXDP_HINT_SHIFT);
}

/*
 * DSCP marking on egress: dscp_rules[gen * SIPXDP_MAX_DSCP_RULES + i], first
 * match wins. Ports in host order. Destination prefixes of rule i are in
 * lpm4/lpm6 under SIPXDP_DIR_DSCP, whose value is the mask of the rules
 * whose prefixes cover that prefix.
 */
#define SIPXDP_MAX_DSCP_RULES 32
#define SIPXDP_DSCP_RANGES 8

struct sipxdp_dscp_rule {
	__u8 family; /* 0: both, 4, 6 */
	__u8 proto;  /* 0: any */
	__u8 dscp;   /* 0-63 */
	__u8 nsport; /* 0: any source port */
	__u8 ndport; /* 0: any destination port */
	__u8 dst;    /* 1: only destinations in the rule's prefixes */
	__u16 pad;
	__u32 counter; /* slot in counters */
	__u32 pad2;
	__u16 sport[SIPXDP_DSCP_RANGES][2]; /* lo, hi */
	__u16 dport[SIPXDP_DSCP_RANGES][2];
};

/*
 * Fragments. A datagram's state lives in `frags` from its first fragment
 * seen (whichever that is) for SIPXDP_FRAG_TIMEOUT_NS: the first
 * fragment's verdict, given to the later ones, and for datagrams whose rule
 * searches for scanner patterns, the bytes on each side of a boundary not
 * yet searched across (a pattern split between two fragments). Every
 * non-last fragment of such a datagram must carry SIPXDP_EDGE_MAX bytes or
 * more (real stacks send hundreds), so a pattern spans at most one boundary.
 */
#define SIPXDP_FRAG_TIMEOUT_NS (30 * NSEC_PER_SEC) /* as net.ipv4.ipfrag_time */
#define SIPXDP_EDGE_MAX 64 /* patterns are at most 64 bytes: 63 each side covers a crossing */
#define SIPXDP_EDGE_KEEP (SIPXDP_EDGE_MAX - 1)
#define SIPXDP_FRAG_EDGES 2

struct sipxdp_frag_key {
	__u32 id; /* IPv4 ID or IPv6 fragment identification */
	__u8 family;
	__u8 proto;
	__u8 pad[2];
	__u8 src[16];
	__u8 dst[16];
};

enum sipxdp_edge_kind {
	SIPXDP_EDGE_FREE = 0,
	SIPXDP_EDGE_TAIL = 1, /* bytes ending at off */
	SIPXDP_EDGE_HEAD = 2, /* bytes starting at off */
};

struct sipxdp_edge {
	__u16 off; /* the boundary, as an offset in the datagram */
	__u8 len;
	__u8 kind; /* enum sipxdp_edge_kind */
	__u8 bytes[SIPXDP_EDGE_MAX];
};

struct sipxdp_frag_state {
	__u64 expires_ns; /* CLOCK_MONOTONIC_COARSE */
	__u32 action;	  /* enum sipxdp_action, once known */
	__u32 counter;	  /* the first fragment's counter slot, once known */
	__u8 known;	  /* the first fragment was judged */
	__u8 inspect;	  /* its rule searches for scanner patterns (source not trusted) */
	__u8 bad;	  /* cannot be searched whole: its fragments drop (counter `fragment`) */
	__u8 hit;	  /* 1 + pattern index found in a fragment that came before the first */
	__u32 pad;
	struct sipxdp_edge edge[SIPXDP_FRAG_EDGES];
};

/* The last bytes of a TCP stream's previous segment (inspect_sip rules), so a
 * pattern split between two segments is found: tcp_tails, per flow.
 */
struct sipxdp_stream_tail {
	__u32 next_seq; /* host order: where the next in-order segment starts */
	__u8 len;
	__u8 pad[3];
	__u8 bytes[SIPXDP_EDGE_MAX];
};

/*
 * Counter slots (per-CPU packets and bytes, summed by the loader). The
 * built-in ones, from one list: X(ID, slot, name, action, what) gives
 * SIPXDP_CTR_ID here and the loader's names for stats.
 */
#define SIPXDP_BUILTIN_COUNTERS(X)                                                                 \
	X(NONIP, 0, "non-ip", "allow", "non-IP frames (ARP...)")                                   \
	X(MALFORMED, 1, "malformed", "drop", "truncated or malformed headers")                     \
	X(MARTIAN, 2, "martian", "drop", "loopback addresses from outside")                        \
	X(DEFAULT, 3, "default", "", "no rule matched")                                            \
	X(IPV6_ND, 4, "ipv6-nd", "allow", "ICMPv6 neighbour discovery")                            \
	X(FRAGMENT, 5, "fragment", "drop", "fragments of datagrams that cannot be searched whole") \
	X(NO_POLICY, 6, "no-policy", "allow", "no policy loaded")                                  \
	X(BANNED, 7, "banned", "drop", "source banned (sipxdp bans)")                              \
	X(ESTABLISHED, 8, "established", "allow", "replies to flows this host opened")             \
	X(EGRESS, 9, "egress", "pass", "outbound packets (TC egress)")                             \
	X(FRAG_EARLY, 10, "fragment-early", "allow",                                               \
	  "later fragments before their first: to reassembly")                                     \
	X(AUTH_FAILURE, 11, "auth-failures", "pass", "401/403/407 responses sent (TC egress)")     \
	X(AUTH_BAN, 12, "auth-bans", "pass", "sources banned for failing authentication")          \
	X(TRUST_LEARNED, 13, "trust-learned", "pass",                                              \
	  "2xx to REGISTER that made a source trusted")                                            \
	X(TRUSTED, 14, "trusted", "allow", "learned-trusted phones let in past a ban")

enum sipxdp_builtin_counter {
#define SIPXDP_X_COUNTER(id, slot, name, action, what) SIPXDP_CTR_##id = slot,
	SIPXDP_BUILTIN_COUNTERS(SIPXDP_X_COUNTER)
#undef SIPXDP_X_COUNTER
};

#define SIPXDP_CTR_RULE_BASE 512 /* above every built-in slot */
/* Named counters (rules, patterns) take slots from here; a policy edit never
 * reuses a slot the old policy still counts on. */
#define SIPXDP_CTR_RULE_SLOTS (2 * (SIPXDP_MAX_RULES + 512)) /* rules, patterns, DSCP rules */
#define SIPXDP_CTR_MAX (SIPXDP_CTR_RULE_BASE + SIPXDP_CTR_RULE_SLOTS)

struct sipxdp_counter {
	__u64 packets;
	__u64 bytes;
};

/*
 * SIP scanner patterns (a sampled 2-byte-gram filter, see the matcher in
 * bpf/include/sipxdp/scan.h).
 * Per generation: sip_cfg[gen], sip_patterns[gen * MAX_PATTERNS + i],
 * sip_tables[gen]. Auto bans live in `bans4`/`bans6` (LRU), manual ones in
 * `ban_prefixes4`/`ban_prefixes6`.
 */
#define SIPXDP_MAX_PATTERNS 64
#define SIPXDP_MAX_PATTERN_LEN 64
#define SIPXDP_MIN_PATTERN_LEN 2
#define SIPXDP_SCAN_MAX 4096 /* payload bytes searched; the rest is ignored */
#define SIPXDP_SCAN_GRAMS 65536
#define SIPXDP_SCAN_PREFIX_BITS 12
#define SIPXDP_SCAN_PREFIXES (1u << SIPXDP_SCAN_PREFIX_BITS)
#define SIPXDP_SCAN_MASKS 128 /* distinct candidate masks, index 0 unused */
#define SIPXDP_SCAN_MAX_WINDOW 9
#define SIPXDP_MAX_SCAN_LINES 8 /* header lines searched in "headers" mode */

#define SIPXDP_SIP_IGNORE_CASE (1u << 0)
#define SIPXDP_SIP_HEADERS (1u << 1) /* only User-Agent, From, To, Contact lines */
#define SIPXDP_SIP_BAN (1u << 2)
#define SIPXDP_SIP_FRAG_DROP (1u << 3) /* fragmented datagrams on inspect_sip rules drop */

/*
 * SIP defences beyond patterns (ratelimit.h, responses.h, trust.h).
 * Request methods, as bits of sipxdp_rate_limit.methods.
 */
#define SIPXDP_SIP_METHODS(X)                                                                      \
	X(INVITE, 0, "INVITE")                                                                     \
	X(ACK, 1, "ACK")                                                                           \
	X(BYE, 2, "BYE")                                                                           \
	X(CANCEL, 3, "CANCEL")                                                                     \
	X(REGISTER, 4, "REGISTER")                                                                 \
	X(OPTIONS, 5, "OPTIONS")                                                                   \
	X(SUBSCRIBE, 6, "SUBSCRIBE")                                                               \
	X(NOTIFY, 7, "NOTIFY")                                                                     \
	X(PUBLISH, 8, "PUBLISH")                                                                   \
	X(MESSAGE, 9, "MESSAGE")                                                                   \
	X(INFO, 10, "INFO")                                                                        \
	X(PRACK, 11, "PRACK")                                                                      \
	X(UPDATE, 12, "UPDATE")                                                                    \
	X(REFER, 13, "REFER")                                                                      \
	X(OTHER, 14, "OTHER") /* any other token followed by " sip:" or " sips:" */

enum sipxdp_sip_method {
#define SIPXDP_X_METHOD(id, bit, name) SIPXDP_M_##id = bit,
	SIPXDP_SIP_METHODS(SIPXDP_X_METHOD)
#undef SIPXDP_X_METHOD
		SIPXDP_M_NUM = 15,
};

#define SIPXDP_MAX_RATE_LIMITS 8
#define SIPXDP_RL_SOURCES_DEFAULT 65536 /* rl_state entries (sip.rate_limit_sources) */
#define SIPXDP_MAX_AUTH_CODES 4
#define SIPXDP_RESPONSE_SCAN 1024 /* response bytes searched for CSeq, Expires, Contact */

/* rate_limits[gen * SIPXDP_MAX_RATE_LIMITS + i]: a token bucket per source
 * (IPv4 address, IPv6 prefix of sip_cfg.v6_prefix bits) and limit, in
 * nanoseconds of credit: a request takes cost_ns, credit grows with time up
 * to burst_ns (cost_ns * requests).
 */
struct sipxdp_rate_limit {
	__u32 methods;	   /* 1 << enum sipxdp_sip_method */
	__u32 counter;	   /* slot: requests dropped */
	__u32 ban_counter; /* slot: sources banned (0: the limit never bans) */
	__u32 pad;
	__u64 cost_ns;
	__u64 burst_ns;
	__u64 ban_ns;
};

struct sipxdp_rl_key {
	__u32 limit; /* the limit's counter slot: state follows a limit across edits */
	__u8 family;
	__u8 pad[3];
	__u8 addr[16]; /* IPv6 masked to sip_cfg.v6_prefix */
};

struct sipxdp_rl_state {
	__u64 credit_ns;
	__u64 last_ns;
};

/* Remote addresses (IPv6 masked) the server answered 401/403/407. */
struct sipxdp_addr_key {
	__u8 family;
	__u8 pad[3];
	__u8 addr[16];
};

struct sipxdp_auth_state {
	__u64 window_start_ns;
	__u64 last_ban_end_ns; /* escalation: strikes are forgotten max_ban past this */
	__u32 count;	       /* failures in the window */
	__u32 strikes;	       /* bans so far */
};

/* Learned trust: the phone's flow (its address, port and transport) that the
 * server accepted a REGISTER from (a 2xx to it), until the binding expires.
 */
struct sipxdp_trust_key {
	__u8 family;
	__u8 proto;
	__be16 port;
	__u8 addr[16];
};

struct sipxdp_trust {
	__u64 expires_ns;   /* CLOCK_MONOTONIC_COARSE */
	__u64 since_ns;	    /* the first 2xx */
	__u64 hits;	    /* packets let in past a ban */
	__u64 refreshed_ns; /* the last 2xx: trust ends max_seconds after it */
	__u32 fails; /* auth failures sent to the flow since: at sip.auth_failures.max it ends */
	__u32 pad;
};

#define SIPXDP_SIP_AUTH_BANS (1u << 4)	   /* count auth failures on egress, ban at auth_max */
#define SIPXDP_SIP_AUTH_ESCALATE (1u << 5) /* each repeat ban doubles, up to auth_ban_max_ns */
#define SIPXDP_SIP_TRUST (1u << 6)	   /* 2xx to REGISTER makes the phone's flow trusted */

struct sipxdp_sip_cfg {
	__u32 flags; /* SIPXDP_SIP_* */
	__u32 npatterns;
	__u32 window;	  /* min(shortest pattern, SIPXDP_SCAN_MAX_WINDOW) */
	__u32 prefix_len; /* min(shortest pattern, 4): bytes hashed into prefix[] */
	__u64 ban_ns;
	__u32 nlimits;	 /* rate limits in rate_limits[gen] */
	__u32 v6_prefix; /* IPv6 sources are counted and banned per prefix of this length */
	__u32 auth_max;	 /* auth failures in a window that ban */
	__u16 auth_codes[SIPXDP_MAX_AUTH_CODES]; /* 0: unused */
	__u32 pad;
	__u64 auth_window_ns;
	__u64 auth_ban_ns;
	__u64 auth_ban_max_ns;
	__u64 trust_max_ns;
};

struct sipxdp_pattern {
	__u32 len;
	__u32 counter;			    /* slot in counters */
	__u8 bytes[SIPXDP_MAX_PATTERN_LEN]; /* ASCII-lowercased when ignoring case */
};

/* The scan tables. grams[g] for g = byte[i - 1] << 8 | byte[i]: bit j is
 * set when some pattern has that gram at offsets j, j + 1 of its first
 * `window` bytes. prefix[h] names (through masks[]) the patterns whose first
 * prefix_len bytes hash to h (see sipxdp_prefix_hash).
 */
struct sipxdp_scan_tables {
	__u8 grams[SIPXDP_SCAN_GRAMS];
	__u8 prefix[SIPXDP_SCAN_PREFIXES];
	__u64 masks[SIPXDP_SCAN_MASKS];
};

/* Hash of up to four bytes read as a little-endian word; letters folded by
 * setting 0x20 on every byte (a filter: collisions are checked in full).
 */
static inline __u32 sipxdp_prefix_hash(__u32 word, __u32 prefix_len)
{
	__u32 keep = prefix_len >= 4 ? 0xffffffffu : (1u << (8 * prefix_len)) - 1;

	return (((word | 0x20202020u) & keep) * 0x9e3779b1u) >> (32 - SIPXDP_SCAN_PREFIX_BITS);
}

/* bans4 is keyed by the IPv4 address (network order), bans6 by this: the
 * address masked to the ban's prefix (sipxdp_ban.plen). */
struct sipxdp_ban6_key {
	__u8 addr[16];
};

#define SIPXDP_BAN_MANUAL 0xffffffffu

struct sipxdp_ban {
	__u64 expires_ns; /* CLOCK_MONOTONIC_COARSE (bpf_ktime_get_coarse_ns); 0: never */
	__u64 hits;	  /* packets dropped since the ban */
	__u64 since_ns;
	__u32 reason; /* the counter slot of what banned (pattern, rate limit, auth-bans), or MANUAL
		       */
	__u8 plen;    /* the prefix banned: 32, or IPv6 sip_cfg.v6_prefix (128 for older bans) */
	__u8 pad[3];
};

struct sipxdp_ban_lpm4 {
	__u32 prefixlen;
	__u8 addr[4];
};

struct sipxdp_ban_lpm6 {
	__u32 prefixlen;
	__u8 addr[16];
};

/* Manifest: the compiled policy's description (JSON text), for stats and status. */
#define SIPXDP_MANIFEST_CHUNK 4096
#define SIPXDP_MANIFEST_CHUNKS 4096 /* per generation: 16 MiB, allocated as written */

struct sipxdp_manifest_chunk {
	__u8 data[SIPXDP_MANIFEST_CHUNK];
};

/*
 * Drop events (events.h). A dropped packet makes an event when its reason
 * (its counter slot) has credit in a per-CPU token bucket: event_cfg gives
 * the cost of one event and the most credit kept (rate and burst). The event
 * (header and the frame's first bytes) is written to this CPU's slot of
 * `event_recent` (the last SIPXDP_EVENT_RECENT per CPU, for `sipxdp events`)
 * and copied to each reader's ring buffer in `event_readers` (a reader,
 * `sipxdp events --follow` or `capture` or the service, puts its own ring in
 * a free slot and says who it is in event_owners).
 */
#define SIPXDP_EVENT_SNAP_MAX 1536 /* frame bytes an event can carry */
#define SIPXDP_EVENT_SNAP_MIN 64
#define SIPXDP_EVENT_SNAP_DEFAULT 512
#define SIPXDP_EVENT_RECENT 64
#define SIPXDP_EVENT_READERS 4
#define SIPXDP_EVENT_RING_BYTES (1u << 20) /* each reader's ring buffer */

#define SIPXDP_EVENTS_DROPS (1u << 0) /* dropped packets make events */

struct sipxdp_event_cfg {
	__u32 flags;	/* SIPXDP_EVENTS_* */
	__u32 snaplen;	/* frame bytes per event */
	__u64 cost_ns;	/* credit one event takes: NSEC_PER_SEC / rate */
	__u64 burst_ns; /* most credit a reason keeps: cost_ns * burst */
};

/* event_budget[slot], per CPU. */
struct sipxdp_event_bucket {
	__u64 credit_ns;
	__u64 last_ns; /* CLOCK_MONOTONIC_COARSE of the last refill */
	__u64 emitted;
	__u64 suppressed; /* drops with no credit left: no event */
};

/* event_stats[0], per CPU. */
struct sipxdp_event_stats {
	__u64 seq;  /* events made on this CPU; the next recent slot is seq % RECENT */
	__u64 lost; /* copies a reader's full ring refused */
};

struct sipxdp_event_hdr {
	__u64 ts_ns; /* CLOCK_MONOTONIC (bpf_ktime_get_ns) */
	__u64 seq;   /* this CPU's event_stats.seq when made (from 1) */
	__u32 ifindex;
	__u32 slot;    /* the verdict's counter slot: rule, pattern or built-in */
	__u32 pkt_len; /* the frame's length */
	__u16 cap_len; /* frame bytes in data */
	__u8 action;   /* enum sipxdp_action */
	__u8 cpu;
};

struct sipxdp_event {
	struct sipxdp_event_hdr h;
	__u8 data[SIPXDP_EVENT_SNAP_MAX];
};

/* event_owners[i]: who reads through event_readers[i] (0: nobody). */
struct sipxdp_event_owner {
	__u32 pid;
	__u32 pad;
	__u64 start_time; /* the process's start time (clock ticks since boot, /proc/PID/stat) */
};

/* Both compilers check the layout both sides rely on. */
SIPXDP_ASSERT(sizeof(struct sipxdp_lpm4_key) == 12, "sipxdp_lpm4_key");
SIPXDP_ASSERT(sizeof(struct sipxdp_lpm6_key) == 24, "sipxdp_lpm6_key");
SIPXDP_ASSERT(sizeof(struct sipxdp_comb_key) == 12, "sipxdp_comb_key");
SIPXDP_ASSERT(sizeof(struct sipxdp_rule) == 24, "sipxdp_rule");
SIPXDP_ASSERT(sizeof(struct sipxdp_policy_hdr) == 24, "sipxdp_policy_hdr");
SIPXDP_ASSERT(sizeof(struct sipxdp_state) == 40, "sipxdp_state");
SIPXDP_ASSERT(sizeof(struct sipxdp_flow_key) == 40, "sipxdp_flow_key");
SIPXDP_ASSERT(sizeof(struct sipxdp_flow) == 8, "sipxdp_flow");
SIPXDP_ASSERT(sizeof(struct sipxdp_dscp_rule) == 80, "sipxdp_dscp_rule");
SIPXDP_ASSERT(sizeof(struct sipxdp_frag_key) == 40, "sipxdp_frag_key");
SIPXDP_ASSERT(sizeof(struct sipxdp_edge) == 68, "sipxdp_edge");
SIPXDP_ASSERT(sizeof(struct sipxdp_frag_state) == 160, "sipxdp_frag_state");
SIPXDP_ASSERT(sizeof(struct sipxdp_stream_tail) == 72, "sipxdp_stream_tail");
SIPXDP_ASSERT(sizeof(struct sipxdp_counter) == 16, "sipxdp_counter");
SIPXDP_ASSERT(sizeof(struct sipxdp_sip_cfg) == 80, "sipxdp_sip_cfg");
SIPXDP_ASSERT(sizeof(struct sipxdp_rate_limit) == 40, "sipxdp_rate_limit");
SIPXDP_ASSERT(sizeof(struct sipxdp_rl_key) == 24, "sipxdp_rl_key");
SIPXDP_ASSERT(sizeof(struct sipxdp_rl_state) == 16, "sipxdp_rl_state");
SIPXDP_ASSERT(sizeof(struct sipxdp_addr_key) == 20, "sipxdp_addr_key");
SIPXDP_ASSERT(sizeof(struct sipxdp_auth_state) == 24, "sipxdp_auth_state");
SIPXDP_ASSERT(sizeof(struct sipxdp_trust_key) == 20, "sipxdp_trust_key");
SIPXDP_ASSERT(sizeof(struct sipxdp_trust) == 40, "sipxdp_trust");
SIPXDP_ASSERT(sizeof(struct sipxdp_pattern) == 72, "sipxdp_pattern");
SIPXDP_ASSERT(sizeof(struct sipxdp_ban) == 32, "sipxdp_ban");
SIPXDP_ASSERT(sizeof(struct sipxdp_ban6_key) == 16, "sipxdp_ban6_key");
SIPXDP_ASSERT(sizeof(struct sipxdp_ban_lpm4) == 8, "sipxdp_ban_lpm4");
SIPXDP_ASSERT(sizeof(struct sipxdp_ban_lpm6) == 20, "sipxdp_ban_lpm6");
SIPXDP_ASSERT(sizeof(struct sipxdp_event_cfg) == 24, "sipxdp_event_cfg");
SIPXDP_ASSERT(sizeof(struct sipxdp_event_bucket) == 32, "sipxdp_event_bucket");
SIPXDP_ASSERT(sizeof(struct sipxdp_event_stats) == 16, "sipxdp_event_stats");
SIPXDP_ASSERT(sizeof(struct sipxdp_event_hdr) == 32, "sipxdp_event_hdr");
SIPXDP_ASSERT(sizeof(struct sipxdp_event_owner) == 16, "sipxdp_event_owner");
SIPXDP_ASSERT(sizeof(struct sipxdp_manifest_chunk) == SIPXDP_MANIFEST_CHUNK,
	      "sipxdp_manifest_chunk");
SIPXDP_ASSERT(SIPXDP_CTR_TRUSTED < SIPXDP_CTR_RULE_BASE, "built-in counters below the rule slots");
SIPXDP_ASSERT(SIPXDP_CTR_MAX <= 0xffff, "counter slots fit the 16 bits fragments keep");

#endif /* SIPXDP_ABI_H */
