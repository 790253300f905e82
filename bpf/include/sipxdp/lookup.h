/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The policy lookup (abi.h): a packet's destination-side class from
 * port_class, narrowed by source port and addresses where the policy uses
 * them, names the first rule that matches. A fixed number of lookups,
 * whatever the number of rules or prefixes.
 */
#ifndef SIPXDP_LOOKUP_H
#define SIPXDP_LOOKUP_H

#include "sipxdp/judgement.h"
#include "sipxdp/keys.h"

static __always_inline __u32 port_lookup(__u32 gen, __u32 table, __u32 port)
{
	__u32 idx = sipxdp_port_index(gen, table, port);
	__u32 *cls = bpf_map_lookup_elem(&port_class, &idx);

	return cls ? *cls : 0;
}

/* The first rule of a class: what a packet whose class it is gets. */
static __always_inline struct sipxdp_rule *class_rule(__u32 gen, __u32 cls)
{
	__u32 idx = gen * SIPXDP_MAX_CLASSES + (cls & (SIPXDP_MAX_CLASSES - 1));

	return bpf_map_lookup_elem(&cls_rule, &idx);
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

static __always_inline __u32 addr_class(const struct pkt *p, __u32 gen, __u32 dir)
{
	return lpm_value(p, gen, dir, dir == SIPXDP_DIR_DST);
}

/* The rule the packet's ports, protocol and addresses match first under
 * generation gen, or NULL for the policy's default.
 */
static __always_inline struct sipxdp_rule *lookup_rule(const struct pkt *p, __u32 gen,
						       const struct sipxdp_policy_hdr *hdr)
{
	__u32 table = sipxdp_dport_table(p->family, p->proto), cls;
	struct sipxdp_rule *rule;

	cls = port_lookup(gen, table,
			  sipxdp_dport_key(table, p->proto, bpf_ntohs(p->dport), p->icmp_type));
	/* When the first rule of the class so far matches any source port or
	 * address, it is the answer: the remaining lookups are skipped. A
	 * combination comb does not hold is the class's wild class (abi.h).
	 */
	rule = class_rule(gen, cls);
	if (cls && rule && !(rule->flags & SIPXDP_RULE_NO_SPORT_ADDR) &&
	    (hdr->flags & SIPXDP_HDR_SPORT)) {
		__u32 sport = table <= SIPXDP_PT_UDP ? bpf_ntohs(p->sport) : 0;

		cls = combine(gen, SIPXDP_COMB_PS, cls, port_lookup(gen, SIPXDP_PT_SPORT, sport))
			      ?: rule->wild_sport;
		rule = class_rule(gen, cls);
	}
	if (cls && rule && !(rule->flags & SIPXDP_RULE_NO_ADDR) &&
	    (hdr->flags & (SIPXDP_HDR_SRC | SIPXDP_HDR_DST))) {
		__u32 acls;

		if (!(hdr->flags & SIPXDP_HDR_DST)) {
			acls = addr_class(p, gen, SIPXDP_DIR_SRC);
		} else if (!(hdr->flags & SIPXDP_HDR_SRC)) {
			acls = addr_class(p, gen, SIPXDP_DIR_DST);
		} else {
			__u32 scls = addr_class(p, gen, SIPXDP_DIR_SRC);

			acls = combine(gen, SIPXDP_COMB_AD, scls,
				       addr_class(p, gen, SIPXDP_DIR_DST));
			if (!acls) {
				struct sipxdp_rule *sr = class_rule(gen, scls);

				acls = sr ? sr->wild_dst : 0;
			}
		}
		cls = combine(gen, SIPXDP_COMB_FINAL, cls, acls) ?: rule->wild_addr;
		rule = class_rule(gen, cls);
	}
	return cls ? rule : 0;
}

/* The classify stage of xdp_ingress: the verdict of the first matching
 * rule, or of the policy's default.
 */
static __always_inline void classify(struct judgement *j)
{
	struct sipxdp_rule *rule = lookup_rule(&j->p, j->gen, j->hdr);

	if (rule) {
		j->slot = rule->counter;
		j->action = rule->action;
		j->rule_flags = rule->flags;
	} else {
		j->slot = SIPXDP_CTR_DEFAULT;
		j->action = j->hdr->default_action;
	}
}

#endif /* SIPXDP_LOOKUP_H */
