// Errors as values: every loader call returns Result<T>; nothing prints or exits.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace sipxdp {

// One failure: what was being done, on what, and the errno when the kernel said no.
struct Error {
  std::string what;    // full sentence fragment, e.g. "policy.json:3:12: rule \"x\": bad port"
  int err = 0;         // positive errno, 0 when not a system error
  std::string detail;  // extra lines (verifier log tail), shown with --verbose

  std::string message() const;  // one line: what, plus strerror(err) when set
};

Error make_error(std::string what, int err = 0);
// Same, with errno taken from a libbpf-style negative return value.
Error sys_error(std::string what, int neg_or_errno);

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Error e) : v_(std::move(e)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const T& value() const& { return std::get<0>(v_); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T& operator*() & { return std::get<0>(v_); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

struct Ok {};
using Status = Result<Ok>;
inline Status ok_status() {
  return Ok{};
}

}  // namespace sipxdp

// Propagate an error from an expression returning Result<...>.
#define SIPXDP_TRY(expr)                              \
  do {                                                \
    auto sipxdp_try_r_ = (expr);                      \
    if (!sipxdp_try_r_) return sipxdp_try_r_.error(); \
  } while (0)
