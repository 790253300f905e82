/* SPDX-License-Identifier: GPL-2.0 */
/*
 * SIP responses the server sends (TC egress), for fail2ban without logs and
 * for learned trust:
 *   401/403/407 (sip.auth_failures.responses) to an address count as its
 *     authentication failures; `max` of them within `window_seconds` ban it
 *     (IPv6 per sip.ipv6_prefix) for ban_seconds, doubled at each repeat ban
 *     with `escalate`, up to max_ban_seconds; strikes are forgotten once
 *     max_ban_seconds passed since the last ban ended. While the address is
 *     banned its failures count no further. Failures sent to a registered
 *     phone's flow count on the flow's trust instead: at `max` the trust
 *     ends.
 *   a 2xx whose CSeq method is REGISTER forgives the failure the phone's own
 *     challenge counted and, with learned trust, trusts the phone's flow
 *     (trust.h) for the registration's lifetime: the least `expires`
 *     parameter of the Contacts listed (a registrar lists every binding of
 *     the address-of-record: the least is never longer than the phone's
 *     own), else the Expires header, else 3600 s; 0 removes it.
 * Only the first SIPXDP_RESPONSE_SCAN bytes of a response are read; headers
 * past them are not seen.
 */
#ifndef SIPXDP_RESPONSES_H
#define SIPXDP_RESPONSES_H

#include "sipxdp/bans.h"
#include "sipxdp/counters.h"
#include "sipxdp/trust.h"

#define DEFAULT_REGISTER_EXPIRES 3600 /* RFC 3261 10.2.1.1 */

static __always_inline struct resp_scratch *resp_buf(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&resp_scratch, &zero);
}

static __always_inline __u8 lc(__u8 c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static __always_inline __u8 at(const struct resp_scratch *s, __u32 i)
{
	return s->buf[i & RESP_MASK];
}

/* Whether the bytes at i are `name` (lowercase), case ignored. */
static __always_inline int is_word(const struct resp_scratch *s, __u32 i, const char *name, int n)
{
	int same = 1;

	for (int k = 0; k < n; k++)
		same &= lc(at(s, i + k)) == (__u8)name[k];
	return same;
}

static __always_inline __u32 skip_spaces(const struct resp_scratch *s, __u32 i)
{
	for (int k = 0; k < 8; k++)
		if (at(s, i) == ' ' || at(s, i) == '\t')
			i++;
	return i;
}

/* A decimal number of up to 9 digits at i; -1 when none. */
static __always_inline __s64 number(const struct resp_scratch *s, __u32 i)
{
	__s64 v = -1;

	for (int k = 0; k < 9; k++) {
		__u8 c = at(s, i + k);

		if (c < '0' || c > '9')
			break;
		v = (v < 0 ? 0 : v * 10) + (c - '0');
	}
	return v;
}

/* A header line starting at i: CSeq, Expires, Contact (or its compact m).
 * Global functions, verified once: the walk calls them at line starts only.
 */
__noinline int sipxdp_resp_header(__u32 i)
{
	struct resp_scratch *s = resp_buf();
	__u32 j;

	if (!s)
		return 0;
	i &= RESP_MASK / 2;
	if (is_word(s, i, "cseq:", 5)) {
		j = skip_spaces(s, i + 5);
		for (int k = 0; k < 10; k++)
			if (at(s, j) >= '0' && at(s, j) <= '9')
				j++;
		j = skip_spaces(s, j);
		s->cseq_register = is_word(s, j, "register", 8) &&
				   (at(s, j + 8) == '\r' || at(s, j + 8) == '\n' ||
				    at(s, j + 8) == ' ' || at(s, j + 8) == '\t');
	} else if (is_word(s, i, "expires:", 8)) {
		s->expires_hdr = number(s, skip_spaces(s, i + 8));
	} else if (is_word(s, i, "contact:", 8) || is_word(s, i, "m:", 2)) {
		s->in_contact = 1;
		s->in_angle = 0;
	}
	return 0;
}

/* ";expires=N", a Contact's header parameter: the least of them is kept. */
__noinline int sipxdp_resp_param(__u32 i)
{
	struct resp_scratch *s = resp_buf();

	if (!s)
		return 0;
	i &= RESP_MASK / 2;
	__s64 v;

	if (!is_word(s, i, "expires=", 8))
		return 0;
	v = number(s, i + 8);
	if (v >= 0 && (s->contact_expires < 0 || v < s->contact_expires))
		s->contact_expires = v;
	return 0;
}

static long resp_step(__u64 idx, void *data)
{
	struct resp_scratch *s = resp_buf();
	__u32 i;
	__u8 c;

	if (!s)
		return 1;
	i = s->pos;
	if (i >= s->n)
		return 1;
	/* Outside a Contact header only line ends matter: eight bytes at a
	 * time while none is a '\n'. */
	if (!s->in_contact) {
		__u64 w, x;

		__builtin_memcpy(&w, &s->buf[i & (RESP_MASK / 2)], 8);
		x = w ^ 0x0a0a0a0a0a0a0a0aull;
		if (!((x - 0x0101010101010101ull) & ~x & 0x8080808080808080ull)) {
			s->pos = i + 8;
			return 0;
		}
	}
	s->pos = i + 1;
	c = at(s, i);
	if (c == '\n') {
		s->in_contact = 0;
		/* an empty line ends the headers */
		if (at(s, i + 1) == '\r' || at(s, i + 1) == '\n')
			return 1;
		sipxdp_resp_header(i + 1);
	} else if (s->in_contact) {
		if (c == '<')
			s->in_angle = 1;
		else if (c == '>')
			s->in_angle = 0;
		else if (c == ';' && !s->in_angle)
			sipxdp_resp_param(i + 1);
	}
	return 0;
}

/* An authentication failure sent to the packet's destination. */
static __always_inline void auth_failure(const struct pkt *p, const struct sipxdp_sip_cfg *cfg,
					 __u32 gen)
{
	struct sipxdp_addr_key k = {.family = p->family};
	struct sipxdp_auth_state fresh = {}, *st;
	__u64 now = bpf_ktime_get_coarse_ns(), ban_ns;

	struct sipxdp_trust_key tk;
	struct sipxdp_trust *t;

	count(SIPXDP_CTR_AUTH_FAILURE, p->len);
	if (lpm_value(p, gen, SIPXDP_DIR_TRUSTED, 1)) /* sip.trusted: never banned */
		return;
	/* A registered phone's flow: its own count (a re-registration's
	 * challenge is one 401, then a 2xx resets it); at `max` the trust ends,
	 * and its failures count for its address again.
	 */
	trust_key(&tk, p, 1);
	t = bpf_map_lookup_elem(&trust_learned, &tk);
	if (t && trust_live(t, cfg, now)) {
		if (++t->fails < cfg->auth_max)
			return;
		bpf_map_delete_elem(&trust_learned, &tk);
	}
	/* Already banned: replies to requests that were on their way count
	 * no further (nor escalate). */
	if (auto_ban(p, 1, gen))
		return;
	source_addr(k.addr, p, 1, cfg->v6_prefix);
	st = bpf_map_lookup_elem(&auth_fails, &k);
	if (!st) {
		fresh.window_start_ns = now;
		bpf_map_update_elem(&auth_fails, &k, &fresh, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&auth_fails, &k);
		if (!st)
			return;
	}
	if (now - st->window_start_ns > cfg->auth_window_ns) {
		st->window_start_ns = now;
		st->count = 0;
	}
	if (++st->count < cfg->auth_max)
		return;
	/* The ban: doubled for each earlier one still remembered. */
	if (st->last_ban_end_ns && now > st->last_ban_end_ns + cfg->auth_ban_max_ns)
		st->strikes = 0;
	ban_ns = cfg->auth_ban_ns;
	if ((cfg->flags & SIPXDP_SIP_AUTH_ESCALATE) && st->strikes) {
		__u32 shift = st->strikes < 40 ? st->strikes : 40;

		ban_ns = (ban_ns << shift) >> shift == ban_ns ? ban_ns << shift
							      : cfg->auth_ban_max_ns;
		if (ban_ns > cfg->auth_ban_max_ns)
			ban_ns = cfg->auth_ban_max_ns;
	}
	st->strikes++;
	st->count = 0;
	st->window_start_ns = now;
	st->last_ban_end_ns = now + ban_ns;
	if (ban_addr(p, 1, gen, ban_ns, SIPXDP_CTR_AUTH_BAN))
		count(SIPXDP_CTR_AUTH_BAN, p->len);
}

/* A 2xx sent to the packet's destination: a REGISTER's clears its failures
 * and teaches trust.
 */
static __always_inline void success(struct __sk_buff *skb, const struct pkt *p, __u32 off,
				    __u32 len, const struct sipxdp_sip_cfg *cfg)
{
	struct sipxdp_addr_key k = {.family = p->family};
	struct resp_scratch *s = resp_buf();
	struct sipxdp_auth_state *st;
	__u32 n = len;
	__s64 expires;

	if (!s)
		return;
	if (n > SIPXDP_RESPONSE_SCAN)
		n = SIPXDP_RESPONSE_SCAN;
	if (n < 12 || bpf_skb_load_bytes(skb, off, s->buf, n) < 0)
		return;
	/* Zeroes after the copy: a header cut there reads as ended. */
	__builtin_memset(&s->buf[SIPXDP_RESPONSE_SCAN], 0, 64);
	if (n < SIPXDP_RESPONSE_SCAN)
		s->buf[n & (SIPXDP_RESPONSE_SCAN - 1)] = 0;
	s->n = n;
	s->pos = 0;
	s->in_contact = 0;
	s->in_angle = 0;
	s->cseq_register = 0;
	s->expires_hdr = -1;
	s->contact_expires = -1;
	bpf_loop(SIPXDP_RESPONSE_SCAN, resp_step, NULL, 0);
	if (!s->cseq_register)
		return;
	source_addr(k.addr, p, 1, cfg->v6_prefix);
	/* The phone proved its password: the failure its own challenge
	 * counted is forgiven, not the address's whole count (a neighbour
	 * behind the same address may be guessing).
	 */
	st = bpf_map_lookup_elem(&auth_fails, &k);
	if (st && st->count)
		st->count--;
	if (!(cfg->flags & SIPXDP_SIP_TRUST))
		return;
	expires = s->contact_expires >= 0 ? s->contact_expires
		  : s->expires_hdr >= 0	  ? s->expires_hdr
					  : DEFAULT_REGISTER_EXPIRES;
	learn_trust(p, (__u32)expires, cfg->trust_max_ns);
}

/*
 * Reads an outbound packet whose L4 payload starts at frame offset `off`
 * when it is a SIP response (UDP or TCP). A global function, verified once
 * on its own.
 */
__noinline int sipxdp_sip_response(struct __sk_buff *skb, const struct pkt *p, __u32 off, __u32 gen)
{
	struct sipxdp_sip_cfg *cfg;
	__u32 code, end, len;
	__u8 head[12];

	gen &= 1;
	cfg = bpf_map_lookup_elem(&sip_cfg, &gen);
	if (!p || !cfg || p->frag_later || (p->proto != IPPROTO_UDP && p->proto != IPPROTO_TCP))
		return 0;
	/* GSO packets may carry no IP length. */
	end = p->ip_len ? p->l3_off + p->ip_len : skb->len;
	if (end > skb->len)
		end = skb->len;
	if (end < off + 12)
		return 0;
	len = end - off;
	if (bpf_skb_load_bytes(skb, off, head, 12) < 0)
		return 0;
	/* "SIP/2.0 NNN " */
	if (head[0] != 'S' || head[1] != 'I' || head[2] != 'P' || head[3] != '/' ||
	    head[4] != '2' || head[5] != '.' || head[6] != '0' || head[7] != ' ' || head[11] != ' ')
		return 0;
	if (head[8] < '1' || head[8] > '6' || head[9] < '0' || head[9] > '9' || head[10] < '0' ||
	    head[10] > '9')
		return 0;
	code = (head[8] - '0') * 100 + (head[9] - '0') * 10 + (head[10] - '0');
	if (cfg->flags & SIPXDP_SIP_AUTH_BANS) {
		for (int i = 0; i < SIPXDP_MAX_AUTH_CODES; i++)
			if (cfg->auth_codes[i] && cfg->auth_codes[i] == code) {
				auth_failure(p, cfg, gen);
				return 1;
			}
	}
	if (code >= 200 && code < 300 && (cfg->flags & (SIPXDP_SIP_AUTH_BANS | SIPXDP_SIP_TRUST)))
		success(skb, p, off, len, cfg);
	return 1;
}

#endif /* SIPXDP_RESPONSES_H */
