// Configuration in /etc/sipxdp: one policy per interface (IFACE.json) and
// the global settings file sipxdp.conf (JSON, optional), which says, per
// interface, where its policy is, the XDP mode, and the network namespace it
// lives in. Read by `sipxdp service ...`, which the systemd units run.
#pragma once

#include <map>
#include <string>

#include "sipxdp/datapath.h"
#include "sipxdp/result.h"

namespace sipxdp {

struct InterfaceConfig {
  std::string name;
  std::string policy;  // the policy file (default: CONFIG_DIR/NAME.json)
  XdpMode mode = XdpMode::auto_;
  std::string netns;  // a named network namespace (ip netns), or "" for the host's
};

struct Config {
  std::string dir;   // the configuration directory
  std::string file;  // its sipxdp.conf ("" when there is none)
  XdpMode mode = XdpMode::auto_;
  std::map<std::string, InterfaceConfig> interfaces;  // those sipxdp.conf names
  // The service's journal lines: at most this many drop events a minute per
  // interface (0: none), then one line saying how many were left out.
  unsigned log_events_per_minute = 60;

  // The settings of one interface: sipxdp.conf's, or the defaults.
  InterfaceConfig interface(const std::string& name) const;
};

// The configuration directory: $SIPXDP_CONFIG_DIR, or /etc/sipxdp.
std::string default_config_dir();

// Reads DIR/sipxdp.conf (absent: every default). Errors name the place
// ("sipxdp.conf:3:14: interfaces.eth1: unknown field \"mdoe\"").
Result<Config> load_config(const std::string& dir);

}  // namespace sipxdp
