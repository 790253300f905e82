// SPDX-License-Identifier: GPL-2.0
/* sipxdp XDP ingress: parse -> built-in paths -> policy lookup -> verdict. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "sipxdp/abi.h"
#include "sipxdp/parse.h"

/* The generation live now. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sipxdp_state);
} state SEC(".maps");

/* Per-generation policy header: default action, dimensions in use. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SIPXDP_GENS);
	__type(key, __u32);
	__type(value, struct sipxdp_policy_hdr);
} policy_hdr SEC(".maps");

/* Class of the rules matching a protocol+dport (or ICMP type), or a sport. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, SIPXDP_PORT_CLASS_ENTRIES);
	__type(key, __u32);
	__type(value, __u32);
} port_class SEC(".maps");

/* Class of the rules matching an IPv4 source or destination prefix. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 20);
	__type(key, struct sipxdp_lpm4_key);
	__type(value, __u32);
} lpm4 SEC(".maps");

/* Class of the rules matching an IPv6 source or destination prefix. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 20);
	__type(key, struct sipxdp_lpm6_key);
	__type(value, __u32);
} lpm6 SEC(".maps");

/* Intersection of two classes (absent: no rule matches both). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 20);
	__type(key, struct sipxdp_comb_key);
	__type(value, __u32);
} comb SEC(".maps");

/* First rule of a final class: action, counter slot, flags. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, SIPXDP_GENS *SIPXDP_MAX_CLASSES);
	__type(key, __u32);
	__type(value, struct sipxdp_rule);
} cls_rule SEC(".maps");

/* Packets and bytes per built-in path and per rule slot. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SIPXDP_CTR_MAX);
	__type(key, __u32);
	__type(value, struct sipxdp_counter);
} counters SEC(".maps");

/* Compiled policy description (JSON) per generation; read by the loader only. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SIPXDP_GENS *SIPXDP_MANIFEST_CHUNKS);
	__type(key, __u32);
	__type(value, struct sipxdp_manifest_chunk);
} manifest SEC(".maps");

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
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct rcu_inner);
} rcu_sync SEC(".maps");

static __always_inline void count(__u32 slot, __u32 len)
{
	struct sipxdp_counter *c = bpf_map_lookup_elem(&counters, &slot);

	if (c) {
		c->packets++;
		c->bytes += len;
	}
}

static __always_inline int verdict(__u32 action)
{
	return action == SIPXDP_ACT_ALLOW ? XDP_PASS : XDP_DROP;
}

static __always_inline int is_martian(const struct pkt *p)
{
	if (p->family == 4)
		return (bpf_ntohl(p->dst.v4) >> 24) == 127 || (bpf_ntohl(p->src.v4) >> 24) == 127;
	/* ::1 as destination or source */
	__u64 d0, d1, s0, s1;

	__builtin_memcpy(&d0, p->dst.v6, 8);
	__builtin_memcpy(&d1, p->dst.v6 + 8, 8);
	__builtin_memcpy(&s0, p->src.v6, 8);
	__builtin_memcpy(&s1, p->src.v6 + 8, 8);
	return (d0 == 0 && d1 == bpf_cpu_to_be64(1)) || (s0 == 0 && s1 == bpf_cpu_to_be64(1));
}

static __always_inline __u32 addr_class(const struct pkt *p, __u32 gen, __u32 dir)
{
	__u32 *cls;

	if (p->family == 4) {
		struct sipxdp_lpm4_key k = {
			.prefixlen = SIPXDP_LPM_HDR_BITS + 32,
			.gen = gen,
			.dir = dir,
		};

		__builtin_memcpy(k.addr, dir == SIPXDP_DIR_SRC ? &p->src.v4 : &p->dst.v4, 4);
		cls = bpf_map_lookup_elem(&lpm4, &k);
	} else {
		struct sipxdp_lpm6_key k = {
			.prefixlen = SIPXDP_LPM_HDR_BITS + 128,
			.gen = gen,
			.dir = dir,
		};

		__builtin_memcpy(k.addr, dir == SIPXDP_DIR_SRC ? p->src.v6 : p->dst.v6, 16);
		cls = bpf_map_lookup_elem(&lpm6, &k);
	}
	return cls ? *cls : 0;
}

static __always_inline __u32 combine(__u32 gen, __u32 stage, __u32 a, __u32 b)
{
	struct sipxdp_comb_key k = {.gen = gen, .stage = stage, .a = a, .b = b};
	__u32 *cls;

	if (!a || !b)
		return 0;
	cls = bpf_map_lookup_elem(&comb, &k);
	return cls ? *cls : 0;
}

static __always_inline __u32 port_lookup(__u32 gen, __u32 table, __u32 port)
{
	__u32 idx = sipxdp_port_index(gen, table, port);
	__u32 *cls = bpf_map_lookup_elem(&port_class, &idx);

	return cls ? *cls : 0;
}

static __always_inline __u32 dport_table(const struct pkt *p, __u32 *port)
{
	switch (p->proto) {
	case IPPROTO_TCP:
		*port = bpf_ntohs(p->dport);
		return SIPXDP_PT_TCP;
	case IPPROTO_UDP:
		*port = bpf_ntohs(p->dport);
		return SIPXDP_PT_UDP;
	case IPPROTO_ICMP:
		if (p->family == 4) {
			*port = p->icmp_type;
			return SIPXDP_PT_ICMP;
		}
		break;
	case IPPROTO_ICMPV6:
		if (p->family == 6) {
			*port = p->icmp_type;
			return SIPXDP_PT_ICMP6;
		}
		break;
	}
	*port = p->proto;
	return SIPXDP_PT_OTHER;
}

SEC("xdp")
int xdp_ingress(struct xdp_md *ctx)
{
	struct cursor c = {.pos = (void *)(long)ctx->data, .end = (void *)(long)ctx->data_end};
	struct pkt p = {};
	struct sipxdp_state *st;
	struct sipxdp_policy_hdr *hdr;
	struct sipxdp_rule *rule;
	__u32 zero = 0, gen, table, port, cls, idx;
	__u16 h_proto;

	p.len = c.end - c.pos;
	if (parse_eth(&c, &h_proto) < 0)
		goto malformed;

	if (h_proto == ETH_P_IP) {
		if (parse_ipv4(&c, &p) < 0)
			goto malformed;
	} else if (h_proto == ETH_P_IPV6) {
		if (parse_ipv6(&c, &p) < 0)
			goto malformed;
	} else {
		count(SIPXDP_CTR_NONIP, p.len);
		return XDP_PASS;
	}

	if (ctx->ingress_ifindex != 1 && is_martian(&p)) {
		count(SIPXDP_CTR_MARTIAN, p.len);
		return XDP_DROP;
	}

	if (p.frag_later) {
		count(SIPXDP_CTR_FRAGMENT, p.len);
		return XDP_DROP;
	}
	if (parse_l4(&c, &p) < 0)
		goto malformed;

	/* Neighbour discovery (RS, RA, NS, NA, redirect): IPv6 stops working without it. */
	if (p.family == 6 && p.proto == IPPROTO_ICMPV6 && p.icmp_type >= 133 &&
	    p.icmp_type <= 137) {
		count(SIPXDP_CTR_IPV6_ND, p.len);
		return XDP_PASS;
	}

	st = bpf_map_lookup_elem(&state, &zero);
	if (!st)
		return XDP_PASS;
	gen = st->active_gen & 1;
	hdr = bpf_map_lookup_elem(&policy_hdr, &gen);
	if (!hdr || !(hdr->flags & SIPXDP_HDR_VALID)) {
		count(SIPXDP_CTR_NO_POLICY, p.len);
		return XDP_PASS;
	}

	table = dport_table(&p, &port);
	cls = port_lookup(gen, table, port);
	if (cls && (hdr->flags & SIPXDP_HDR_SPORT)) {
		__u32 sport = table <= SIPXDP_PT_UDP ? bpf_ntohs(p.sport) : 0;

		cls = combine(gen, SIPXDP_COMB_PS, cls, port_lookup(gen, SIPXDP_PT_SPORT, sport));
	}
	if (cls && (hdr->flags & (SIPXDP_HDR_SRC | SIPXDP_HDR_DST))) {
		__u32 acls;

		if (!(hdr->flags & SIPXDP_HDR_DST))
			acls = addr_class(&p, gen, SIPXDP_DIR_SRC);
		else if (!(hdr->flags & SIPXDP_HDR_SRC))
			acls = addr_class(&p, gen, SIPXDP_DIR_DST);
		else
			acls = combine(gen, SIPXDP_COMB_AD, addr_class(&p, gen, SIPXDP_DIR_SRC),
				       addr_class(&p, gen, SIPXDP_DIR_DST));
		cls = combine(gen, SIPXDP_COMB_FINAL, cls, acls);
	}
	if (!cls)
		goto dflt;

	idx = gen * SIPXDP_MAX_CLASSES + cls;
	rule = bpf_map_lookup_elem(&cls_rule, &idx);
	if (!rule)
		goto dflt;
	count(rule->counter, p.len);
	return verdict(rule->action);

dflt:
	count(SIPXDP_CTR_DEFAULT, p.len);
	return verdict(hdr->default_action);

malformed:
	count(SIPXDP_CTR_MALFORMED, p.len);
	return XDP_DROP;
}

char _license[] SEC("license") = "GPL";
