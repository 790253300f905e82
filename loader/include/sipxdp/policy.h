// The JSON policy (version 1): parsed and validated, not yet compiled.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sipxdp/abi.h"
#include "sipxdp/result.h"

namespace sipxdp {

struct PortRange {
  uint16_t lo = 0;
  uint16_t hi = 65535;
  bool operator==(const PortRange&) const = default;
};

// "5060,16384-32768" (with sep ","): ranges as policies and stats write them.
std::string ranges_text(const std::vector<PortRange>& rs, const char* sep = ",");

struct Cidr {
  int family = 4;                  // 4 or 6
  std::array<uint8_t, 16> addr{};  // network order; IPv4 uses the first 4 bytes
  uint8_t plen = 0;
  bool operator==(const Cidr&) const = default;
  std::string str() const;
};

// The protocols with a port (or type) dimension: each is the port table the
// kernel looks it up in (abi.h's enum sipxdp_port_table).
enum class ProtoKind : uint8_t {
  tcp = SIPXDP_PT_TCP,
  udp = SIPXDP_PT_UDP,
  icmp = SIPXDP_PT_ICMP,
  icmpv6 = SIPXDP_PT_ICMP6,
};

// IP protocol numbers by the names policies use ("tcp", "gre", ...) and back.
std::optional<uint8_t> protocol_number(const std::string& name);
std::string protocol_name(uint8_t number);  // "tcp", or the number
// The kind of a protocol number with a port or type dimension, if it has one.
std::optional<ProtoKind> proto_kind(uint8_t number);
uint8_t protocol_of(ProtoKind k);

enum class Action : uint8_t { drop = 0, allow = 1 };

struct Rule {
  std::string name;
  // Protocols matched; empty means any. `other_protos` holds IP protocol
  // numbers outside tcp/udp/icmp/icmpv6.
  std::vector<ProtoKind> protos;
  std::vector<uint8_t> other_protos;
  std::vector<PortRange> dport;      // empty: any (tcp/udp only)
  std::vector<PortRange> sport;      // empty: any (tcp/udp only)
  std::vector<PortRange> icmp_type;  // empty: any (icmp/icmpv6 only), 0-255
  std::vector<Cidr> src;             // empty: any address of either family
  std::vector<Cidr> dst;
  Action action = Action::drop;
  bool inspect_sip = false;  // search the payload for scanner patterns first
  std::string comment;

  // "udp dport 5060,5080 src 198.18.0.0/24"; prefix lists cut after `max_prefixes`.
  std::string match_text(size_t max_prefixes = 3) const;
  std::string signature() const;  // a hash of everything the rule matches and does
};

// Where scanner patterns are searched for.
enum class SipMatch : uint8_t {
  payload,  // every byte of the UDP/TCP payload, as iptables -m string does
  headers,  // only the User-Agent, From, To and Contact header lines
};

// Fragmented datagrams that a rule with "inspect_sip" lets in.
enum class SipFragments : uint8_t {
  inspect,  // every fragment is searched, and the bytes around each boundary
  drop,     // dropped unless the source is trusted (the conservative choice)
};

// One "sip.rate_limits" entry: at most `requests` SIP requests of `methods`
// per `per_seconds` from one source (IPv4 address, IPv6 prefix of
// sip.ipv6_prefix bits), counted on packets of rules with "inspect_sip".
struct RateLimit {
  std::string name;
  uint32_t methods = 0;                   // 1 << enum sipxdp_sip_method
  std::vector<std::string> method_names;  // as written ("*" for all)
  uint32_t requests = 0;
  uint32_t per_seconds = 0;
  uint32_t ban_seconds = 0;  // 0: drop over the limit, never ban

  std::string text() const;  // "REGISTER 16/2s ban 300s"
};

// "sip.auth_failures": bans from the server's own 401/403/407 responses (egress).
struct AuthFailures {
  bool enabled = false;  // on when the block is given (unless "enabled": false)
  uint32_t max = 10;
  uint32_t window_seconds = 60;
  uint32_t ban_seconds = 600;
  bool escalate = true;              // each repeat ban doubles, up to max_ban_seconds
  uint32_t max_ban_seconds = 86400;  // also how long strikes are remembered after a ban ends
  std::vector<uint16_t> responses = {401, 403, 407};
};

// "sip.learned_trust": a 2xx to a REGISTER trusts the phone's flow.
struct LearnedTrust {
  bool enabled = true;
  uint32_t max_seconds = 3600;
};

// The "sip" block: scanner patterns for rules with "inspect_sip".
struct SipConfig {
  std::vector<std::string> patterns;  // the defaults unless given
  bool ignore_case = false;
  uint32_t ban_seconds = 600;  // 0: drop only, never ban
  std::vector<Cidr> trusted;   // never scanned, never banned
  SipMatch match = SipMatch::payload;
  SipFragments fragments = SipFragments::inspect;
  std::vector<RateLimit> rate_limits;
  std::optional<uint32_t> rate_limit_sources;  // rl_state entries; fixed when attached
  uint32_t ipv6_prefix = 64;                   // bits of an IPv6 source that make one source
  AuthFailures auth_failures;
  LearnedTrust learned_trust;

  static const std::vector<std::string>& default_patterns();
};

// One "dscp" entry: outbound packets it matches leave with its DSCP class.
struct DscpRule {
  std::string name;
  uint8_t proto = 0;             // IP protocol; 0 means any
  std::vector<PortRange> sport;  // empty: any (tcp/udp only)
  std::vector<PortRange> dport;  // empty: any (tcp/udp only)
  std::vector<Cidr> dst;         // empty: any destination
  uint8_t dscp = 0;              // 0-63
  std::string class_name;        // as written: "cs3", "ef", "46"
  std::string comment;

  std::string match_text(size_t max_prefixes = 3) const;  // "udp sport 5060,5080 dst 198.18.0.0/24"
  std::string signature() const;                          // a hash of its whole match and class
};

// Stateful replies: what the egress program records and how long replies pass.
struct FlowConfig {
  bool stateful = true;
  // Seconds, indexed by enum sipxdp_flow_kind (tcp, udp, icmp echo).
  std::array<uint32_t, SIPXDP_FLOW_KINDS> timeout_s = {600, 60, 30};
  std::optional<uint32_t> table_size;  // flow table entries; fixed when attached
};

// Drop events (`sipxdp events`, `capture`, the service's journal lines): made
// in the kernel, at most `rate` a second and `burst` at once per reason
// (rule, pattern or built-in) on each CPU; the rest are counted as suppressed.
struct EventsConfig {
  bool drops = true;
  uint32_t rate = 10;                            // events per second per reason, per CPU
  uint32_t burst = 50;                           // events at once per reason, per CPU
  uint32_t snaplen = SIPXDP_EVENT_SNAP_DEFAULT;  // frame bytes each event carries
};

struct Policy {
  int version = 1;
  Action default_action = Action::drop;
  std::string description;
  std::vector<Rule> rules;
  SipConfig sip;
  std::vector<DscpRule> dscp;
  FlowConfig flows;
  EventsConfig events;
  // "file:line:col: ..." lines about valid but doubtful settings.
  std::vector<std::string> warnings;
};

// The largest policy file read (a bound for /dev/zero and mistakes alike).
inline constexpr size_t kMaxPolicyBytes = 8u << 20;

std::string sha256_hex(const std::string& data);

// "tcp 600 udp 60 icmp 30"
std::string flow_timeouts_text(const FlowConfig& f);

// DSCP class names: cs0-cs7, af11-af43, ef, va, le; or a number 0-63.
std::optional<uint8_t> parse_dscp_class(const std::string& s);

// Parses and validates policy text. `origin` names the file in errors, which
// read "origin:line:col: rule "name": what is wrong".
Result<Policy> parse_policy(const std::string& text, const std::string& origin);
Result<Policy> load_policy_file(const std::string& path, std::string* text_out = nullptr);
// The text of a policy file, at most kMaxPolicyBytes; a directory is an error.
Result<std::string> read_policy_text(const std::string& path);

// Bytes as a printable one-line string: \r \n \t \\ \" and \xNN for the rest.
std::string escape_bytes(const std::string& s);
// Text with its control characters escaped (\n, \xNN), everything else kept:
// error messages quoting what a user wrote stay one line.
std::string one_line(const std::string& s);

// The IPv4 prefix inside an IPv4-mapped (::ffff:a.b.c.d) or IPv4-compatible
// (::a.b.c.d) IPv6 prefix of length 96 or more.
std::optional<Cidr> embedded_ipv4(const Cidr& c);

// Parses "198.18.0.0/24", "2001:db8::1", ... (no host bits may be set).
Result<Cidr> parse_cidr(const std::string& s);

// Whether learned trust works under `p`: on, and something it exempts from
// (rate limits, auth-failure bans, pattern bans) on a rule that inspects SIP.
bool learned_trust_active(const Policy& p);

// "INVITE", ..., "OTHER" for a bit of enum sipxdp_sip_method; nullptr past them.
const char* sip_method_name(uint32_t bit);

const char* action_name(Action a);
const char* proto_kind_name(ProtoKind k);

}  // namespace sipxdp
