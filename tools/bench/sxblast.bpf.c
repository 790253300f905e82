// SPDX-License-Identifier: GPL-2.0
/*
 * The benchmark rig's programs, not part of sipxdp:
 * - xdp_blast: the traffic source. BPF_PROG_TEST_RUN in live-frames mode runs
 *   it on a prepared frame and XDP_TX sends the frame out of the sender's veth.
 *   With `random_src` it first gives the IPv4 frame a random source address.
 * - xdp_drop: the bare receiver, the rig's limit.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

const volatile __u32 random_src = 0;

/* One of 130,816 sources: 198.18.0.0/15 without 198.18.0.0/24, where the
 * rig's own addresses live, drawn at random for each frame.
 */
static __always_inline __u32 random_source(void) {
  __u32 a = bpf_get_prandom_u32() & 0x1ffff;

  if (a < 256) a += 256 + (a << 8);
  return 0xc6120000u | a;
}

SEC("xdp")
int xdp_blast(struct xdp_md* ctx) {
  void *data = (void*)(long)ctx->data, *end = (void*)(long)ctx->data_end;
  struct ethhdr* eth = data;
  struct iphdr* ip = data + sizeof(*eth);
  __u16* w = (__u16*)ip;
  __u32 sum = 0;
  int i;

  if (!random_src) return XDP_TX;
  if ((void*)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5) return XDP_TX;
  ip->saddr = bpf_htonl(random_source());
  /* The whole header is summed again: live-frame pages keep what the last
   * run wrote, so an incremental update would need the old value.
   */
  ip->check = 0;
  for (i = 0; i < 10; i++) sum += w[i];
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  ip->check = ~sum;
  return XDP_TX;
}

SEC("xdp")
int xdp_drop(struct xdp_md* ctx) {
  return XDP_DROP;
}

char _license[] SEC("license") = "GPL";
