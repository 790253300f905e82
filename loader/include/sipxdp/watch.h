// Waiting for a file to change, however it is changed: written in place,
// replaced by a rename (as editors save), or swapped through a symlink (as
// Kubernetes updates a mounted ConfigMap: the ..data link is replaced).
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "sipxdp/fd.h"
#include "sipxdp/result.h"

namespace sipxdp {

class FileWatch {
 public:
  static Result<FileWatch> open(const std::string& path);

  // Returns once the file may have changed and writes have settled for
  // `settle_ms`, or when `stop` is set (checked every 200 ms). A wake-up is a
  // hint: callers compare the content.
  Status wait(const std::atomic<bool>& stop, int settle_ms = 200);

 private:
  // Watches the directory of the path, and of every symlink it goes through.
  Status rewatch();

  std::string path_;
  Fd fd_;
  std::vector<int> wds_;
};

}  // namespace sipxdp
