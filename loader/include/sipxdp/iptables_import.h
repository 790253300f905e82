// iptables-save output translated into a sipxdp policy (version 1).
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sipxdp/result.h"

namespace sipxdp {

// A line of the input the policy does not say the same way.
struct ImportNote {
  size_t line;                  // 1-based line of the input; 0: the file as a whole
  std::string text;             // "-m limit: not translated (sipxdp has no rate limits)"
  bool translated_differently;  // false: not translated at all; true: translated, with a difference
};

struct ImportResult {
  nlohmann::ordered_json policy;  // parse_policy(policy.dump(2), ...) accepts it
  std::vector<ImportNote> notes;  // in line order
};

// Translates the text of `iptables-save` (or `ip6tables-save`, `-c` included):
// the filter table's INPUT chain becomes the rules, the default action,
// "stateful" and the scanner patterns of its `-m string` drops; the mangle
// table's DSCP targets on OUTPUT and POSTROUTING become "dscp" rules. Every
// other line that matters (other chains and tables, LOG, rate limits,
// negations...) becomes a note. Errors, "origin:LINE: ...", only for text
// that is not iptables-save output.
Result<ImportResult> import_iptables_save(const std::string& text, const std::string& origin);

}  // namespace sipxdp
