// The version of this build and the git commit it was built from.
#pragma once

namespace sipxdp {

const char* version();     // "0.2.0"
const char* git_commit();  // "1a2b3c4d5e6f", "...-dirty", or "unknown" outside a git checkout

}  // namespace sipxdp
