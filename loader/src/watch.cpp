#include "sipxdp/watch.h"

#include <limits.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <set>

namespace sipxdp {

namespace {

std::string dir_of(const std::string& p) {
  auto slash = p.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : p.substr(0, slash);
}

constexpr uint32_t kEvents =
    IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ATTRIB | IN_MODIFY | IN_DELETE_SELF;

}  // namespace

Result<FileWatch> FileWatch::open(const std::string& path) {
  FileWatch w;
  w.path_ = path;
  w.fd_.reset(inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  if (!w.fd_.valid()) return sys_error("cannot watch " + path, errno);
  SIPXDP_TRY(w.rewatch());
  return w;
}

Status FileWatch::rewatch() {
  for (int wd : wds_) inotify_rm_watch(fd_.get(), wd);
  wds_.clear();
  std::set<std::string> dirs;
  std::string p = path_;
  for (int depth = 0; depth < 8; ++depth) {
    dirs.insert(dir_of(p));
    char target[PATH_MAX];
    ssize_t n = readlink(p.c_str(), target, sizeof(target) - 1);
    if (n <= 0) break;
    std::string t(target, size_t(n));
    p = t[0] == '/' ? t : dir_of(p) + "/" + t;
  }
  // The file's real directory too: a link through a linked directory (..data/x).
  char real[PATH_MAX];
  if (realpath(path_.c_str(), real)) dirs.insert(dir_of(real));
  for (auto& d : dirs) {
    int wd = inotify_add_watch(fd_.get(), d.c_str(), kEvents);
    if (wd >= 0) wds_.push_back(wd);
  }
  if (wds_.empty()) return sys_error("cannot watch the directory of " + path_, errno);
  return ok_status();
}

Status FileWatch::wait(const std::atomic<bool>& stop, int settle_ms) {
  alignas(inotify_event) char buf[16384];
  for (;;) {
    if (stop) return ok_status();
    pollfd pfd{fd_.get(), POLLIN, 0};
    int r = poll(&pfd, 1, 200);
    if (r < 0 && errno != EINTR) return sys_error("cannot wait for " + path_, errno);
    if (r <= 0) continue;
    // Something moved: drain until quiet, then watch afresh (links may point elsewhere now).
    for (;;) {
      while (::read(fd_.get(), buf, sizeof(buf)) > 0) {
      }
      pollfd more{fd_.get(), POLLIN, 0};
      if (poll(&more, 1, settle_ms) <= 0 || stop) break;
    }
    return rewatch();
  }
}

}  // namespace sipxdp
