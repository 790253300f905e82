#include "sipxdp/result.h"

#include <cstring>

namespace sipxdp {

std::string Error::message() const {
  if (err == 0) return what;
  return what + ": " + std::strerror(err);
}

Error make_error(std::string what, int err) {
  return Error{std::move(what), err, {}};
}

Error sys_error(std::string what, int neg_or_errno) {
  int e = neg_or_errno < 0 ? -neg_or_errno : neg_or_errno;
  return Error{std::move(what), e, {}};
}

}  // namespace sipxdp
