// sxblast: the benchmark rig's traffic source and bare receiver.
//
//   sxblast send IFACE FRAME_FILE COUNT [--random-src] [--batch N]
//     Sends COUNT copies of the Ethernet frame in FRAME_FILE out of IFACE (a
//     veth in the caller's network namespace) as fast as the kernel allows:
//     BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES runs a program that
//     returns XDP_TX, so each frame goes to the peer veth's XDP ring without an
//     skb (what xdp-trafficgen does, with any payload). --random-src gives each
//     IPv4 frame a new source address in 198.18.0.0/15. Prints one JSON line:
//     {"sent": COUNT, "seconds": S, "pps": P}.
//   sxblast drop IFACE    attaches a bare XDP_DROP program (native mode)
//   sxblast undrop IFACE  removes it
#define _GNU_SOURCE
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sxblast.skel.h"

static double now(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int usage(void) {
  fprintf(stderr,
          "usage: sxblast send IFACE FRAME_FILE COUNT [--random-src] [--batch N]\n"
          "       sxblast drop IFACE | undrop IFACE\n");
  return 2;
}

static int send_frames(int argc, char** argv) {
  struct sxblast* skel;
  unsigned char frame[4096];
  unsigned ifindex;
  long count;
  int batch = 64, random_src = 0, i, err;
  size_t len;
  FILE* f;

  if (argc < 5) return usage();
  for (i = 5; i < argc; i++) {
    if (!strcmp(argv[i], "--random-src"))
      random_src = 1;
    else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
      batch = atoi(argv[++i]);
    else
      return usage();
  }
  ifindex = if_nametoindex(argv[2]);
  if (!ifindex) {
    fprintf(stderr, "sxblast: no interface %s in this network namespace\n", argv[2]);
    return 1;
  }
  f = fopen(argv[3], "rb");
  if (!f) {
    perror(argv[3]);
    return 1;
  }
  len = fread(frame, 1, sizeof(frame), f);
  fclose(f);
  count = atol(argv[4]);
  if (len < 14 || count <= 0) return usage();

  skel = sxblast__open();
  if (!skel) {
    fprintf(stderr, "sxblast: cannot open the BPF object\n");
    return 1;
  }
  skel->rodata->random_src = random_src;
  bpf_program__set_autoload(skel->progs.xdp_drop, false);
  err = sxblast__load(skel);
  if (err) {
    fprintf(stderr, "sxblast: cannot load the BPF program: %s\n", strerror(-err));
    sxblast__destroy(skel);
    return 1;
  }

  struct xdp_md ctx = {.data_end = (unsigned)len, .ingress_ifindex = ifindex};
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = (unsigned)len, .ctx_in = &ctx,
              .ctx_size_in = sizeof(ctx), .repeat = (unsigned)count, .flags = BPF_F_TEST_XDP_LIVE_FRAMES,
              .batch_size = (unsigned)batch);
  double t0 = now();
  err = bpf_prog_test_run_opts(bpf_program__fd(skel->progs.xdp_blast), &opts);
  double t1 = now();
  if (err) {
    fprintf(stderr, "sxblast: BPF_PROG_TEST_RUN (live frames): %s\n", strerror(errno));
    sxblast__destroy(skel);
    return 1;
  }
  printf("{\"sent\": %ld, \"seconds\": %.6f, \"pps\": %.0f}\n", count, t1 - t0, count / (t1 - t0));
  sxblast__destroy(skel);
  return 0;
}

static int drop(const char* ifname, int attach) {
  unsigned ifindex = if_nametoindex(ifname);
  struct sxblast* skel;
  int err;

  if (!ifindex) {
    fprintf(stderr, "sxblast: no interface %s in this network namespace\n", ifname);
    return 1;
  }
  if (!attach) return bpf_xdp_detach((int)ifindex, XDP_FLAGS_DRV_MODE, NULL) ? 1 : 0;
  skel = sxblast__open();
  if (!skel) return 1;
  bpf_program__set_autoload(skel->progs.xdp_blast, false);
  err = sxblast__load(skel);
  if (!err) err = bpf_xdp_attach((int)ifindex, bpf_program__fd(skel->progs.xdp_drop), XDP_FLAGS_DRV_MODE, NULL);
  if (err) fprintf(stderr, "sxblast: cannot attach XDP_DROP to %s: %s\n", ifname, strerror(-err));
  sxblast__destroy(skel);
  return err ? 1 : 0;
}

int main(int argc, char** argv) {
  if (argc < 3) return usage();
  if (!strcmp(argv[1], "send")) return send_frames(argc, argv);
  if (!strcmp(argv[1], "drop")) return drop(argv[2], 1);
  if (!strcmp(argv[1], "undrop")) return drop(argv[2], 0);
  return usage();
}
