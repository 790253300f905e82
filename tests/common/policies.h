// Policy helpers shared by the unit tests.
#pragma once

#include <doctest/doctest.h>

#include <string>

#include "sipxdp/policy.h"

namespace sipxdp::test {

// Parses policy text that must be valid.
inline Policy parse_ok(const std::string& text) {
  auto r = parse_policy(text, "t.json");
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().what));
  return r.value();
}

// Parses policy text that must be refused; returns the one-line error ("p.json:...").
inline std::string parse_err(const std::string& text) {
  auto r = parse_policy(text, "p.json");
  REQUIRE_MESSAGE(!r.ok(), "expected an error for: " << text);
  return r.error().what;
}

}  // namespace sipxdp::test
