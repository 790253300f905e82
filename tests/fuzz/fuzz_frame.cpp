// libFuzzer target: decode_frame on arbitrary bytes (what an event carries
// is whatever an attacker sent, cut anywhere): it must never read outside
// the bytes (ASan), and what it says must hold: ports only for TCP/UDP,
// addresses that parse back, a SIP method only on a TCP/UDP payload.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "sipxdp/drop_events.h"
#include "sipxdp/policy.h"

using namespace sipxdp;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FrameInfo f = decode_frame(std::string_view(reinterpret_cast<const char*>(data), size));
  if (f.family == 0) {
    if (f.sport != -1 || f.dport != -1 || !f.sip_method.empty()) std::abort();
    return 0;
  }
  if (f.family != 4 && f.family != 6) std::abort();
  if (!parse_cidr(f.src) || !parse_cidr(f.dst)) std::abort();
  bool ports = f.proto == 6 || f.proto == 17;
  if (!ports && (f.sport != -1 || f.dport != -1 || !f.sip_method.empty())) std::abort();
  if (f.sport > 65535 || f.dport > 65535 || f.icmp_type > 255) std::abort();
  if (f.user_agent.size() > size || f.sip_method.size() > size) std::abort();
  return 0;
}
