// The verifier's budget: how many instructions it processed for each
// program, printed on every run; a program past 800k leaves too little
// headroom under the kernel's 1M for the next feature, and fails here.
#include <bpf/bpf.h>
#include <doctest/doctest.h>

#include <cstdio>

#include "harness.h"

using namespace sipxdp;

namespace {

uint32_t verified_insns(int prog_fd) {
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  REQUIRE(bpf_obj_get_info_by_fd(prog_fd, &info, &len) == 0);
  return info.verified_insns;
}

}  // namespace

TEST_CASE("verifier: instructions processed per program") {
  auto dp = Datapath::load();
  REQUIRE_MESSAGE(dp.ok(), (dp.ok() ? "" : dp.error().message()));
  uint32_t xdp = verified_insns(dp->xdp_prog_fd()), tc = verified_insns(dp->tc_prog_fd());
  std::printf("verifier: xdp_ingress %u insns processed, tc_egress %u (limit 1000000)\n", xdp, tc);
  CHECK(xdp > 0);
  CHECK(xdp <= 800000);
  CHECK(tc <= 800000);
}
