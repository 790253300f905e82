// Datapath tests run in a private network namespace of their own (it dies
// with the process), with a veth device as the packets' ingress interface.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <net/if.h>
#include <sched.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

unsigned g_test_ifindex = 0;

int main(int argc, char** argv) {
  if (geteuid() != 0) {
    std::fprintf(stderr, "datapath tests: must run as root (they load BPF programs into the kernel)\n");
    return 1;
  }
  if (unshare(CLONE_NEWNET) != 0) {
    std::perror("datapath tests: unshare(CLONE_NEWNET)");
    return 1;
  }
  if (std::system(
          "ip link add sxdtest0 type veth peer name sxdtest1 && ip link set sxdtest0 up && ip link set sxdtest1 up") !=
      0) {
    std::fprintf(stderr, "datapath tests: cannot create a veth pair (ip link add ... type veth)\n");
    return 1;
  }
  g_test_ifindex = if_nametoindex("sxdtest0");
  doctest::Context ctx;
  ctx.applyCommandLine(argc, argv);
  return ctx.run();
}
