#include "sipxdp/confirm.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

namespace sipxdp {

namespace {

constexpr const char* kRunDir = "/run/sipxdp";

std::string pending_file(const std::string& dir) {
  return std::string(kRunDir) + "/" + dir.substr(dir.rfind('/') + 1) + ".pending";
}

}  // namespace

bool cancel_pending_rollback(const std::string& dir) {
  std::ifstream in(pending_file(dir));
  pid_t pid = 0;
  if (!(in >> pid) || pid <= 0) return false;
  ::kill(pid, SIGTERM);
  ::unlink(pending_file(dir).c_str());
  return true;
}

Result<ApplySummary> rollback(const std::string& dir) {
  auto dp = Datapath::open_pinned(dir);
  if (!dp) return dp.error();
  auto m = dp->manifest();
  if (!m) return m.error();
  if (m->previous_source.empty())
    return make_error("nothing to roll back to: no earlier policy is stored (none yet, or it was too large to keep)");
  auto p = parse_policy(m->previous_source, m->previous_path);
  if (!p) return p.error();
  return dp->apply(p.value(), m->previous_source, m->previous_path);
}

Status start_confirm_timer(const std::string& dir, unsigned seconds, const std::string& applied_sha256) {
  if (::mkdir(kRunDir, 0700) != 0 && errno != EEXIST) return sys_error(std::string("cannot create ") + kRunDir, errno);
  pid_t pid = fork();
  if (pid < 0) return sys_error("cannot start the confirm timer", errno);
  if (pid != 0) return ok_status();
  setsid();
  if (fork() != 0) _exit(0);
  int null = ::open("/dev/null", O_RDWR);
  dup2(null, 0), dup2(null, 1), dup2(null, 2);
  {
    std::ofstream out(pending_file(dir));
    out << getpid() << "\n";
  }
  sleep(seconds);
  std::ifstream in(pending_file(dir));
  pid_t owner = 0;
  if (!(in >> owner) || owner != getpid()) _exit(0);
  auto dp = Datapath::open_pinned(dir);
  if (dp) {
    auto m = dp->manifest();
    if (m && m->policy_sha256 == applied_sha256) (void)rollback(dir);
  }
  ::unlink(pending_file(dir).c_str());
  _exit(0);
}

}  // namespace sipxdp
