// sxsend: sends COUNT UDP datagrams to DST:PORT at about PPS packets per
// second (0: as fast as it can) with sendmmsg, and prints how many the kernel
// accepted and the rate; SIGTERM or SIGINT stops it early, still printing.
// A traffic source for the netns tests (Python cannot reach 100k pps).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 32

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

static double now(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char** argv) {
  struct sockaddr_in dst = {.sin_family = AF_INET};
  struct mmsghdr msgs[BATCH];
  struct iovec iov;
  char payload[64] = "sipxdp stream";
  long count, sent = 0;
  double pps, start;
  int fd, i;

  if (argc != 5) {
    fprintf(stderr, "usage: sxsend DST PORT COUNT PPS\n");
    return 2;
  }
  if (inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1) {
    fprintf(stderr, "sxsend: bad address %s\n", argv[1]);
    return 2;
  }
  dst.sin_port = htons(atoi(argv[2]));
  count = atol(argv[3]);
  pps = atof(argv[4]);
  fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) {
    perror("sxsend: socket");
    return 1;
  }
  iov.iov_base = payload;
  iov.iov_len = sizeof(payload);
  memset(msgs, 0, sizeof(msgs));
  for (i = 0; i < BATCH; i++) {
    msgs[i].msg_hdr.msg_name = &dst;
    msgs[i].msg_hdr.msg_namelen = sizeof(dst);
    msgs[i].msg_hdr.msg_iov = &iov;
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  start = now();
  while (sent < count && !stop) {
    int n = count - sent < BATCH ? (int)(count - sent) : BATCH, r;

    /* Pace: never ahead of the requested rate. */
    while (pps > 0 && sent > (now() - start) * pps && !stop)
      ;
    r = sendmmsg(fd, msgs, n, 0);
    if (r < 0) {
      perror("sxsend: sendmmsg");
      return 1;
    }
    sent += r;
  }
  printf("%ld %.0f\n", sent, sent / (now() - start));
  return 0;
}
