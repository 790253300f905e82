#include "sipxdp/config.h"

#include <sys/stat.h>

#include <cstdlib>
#include <set>

#include "sipxdp/json_reader.h"
#include "sipxdp/policy.h"

namespace sipxdp {

using json = nlohmann::json;

std::string default_config_dir() {
  const char* env = std::getenv("SIPXDP_CONFIG_DIR");
  return env && *env ? env : "/etc/sipxdp";
}

InterfaceConfig Config::interface(const std::string& name) const {
  auto it = interfaces.find(name);
  if (it != interfaces.end()) return it->second;
  InterfaceConfig ic;
  ic.name = name;
  ic.policy = dir + "/" + name + ".json";
  ic.mode = mode;
  return ic;
}

namespace {

struct ConfigError {
  JsonPath path;
  bool at_key;
  std::string msg;
};

[[noreturn]] void fail(JsonPath path, std::string msg, bool at_key = false) {
  throw ConfigError{std::move(path), at_key, std::move(msg)};
}

void known_fields(const json& obj, const JsonPath& at, const std::set<std::string>& known, const std::string& where) {
  if (!obj.is_object()) fail(at, where + " must be a JSON object");
  for (auto& [k, v] : obj.items()) {
    JsonPath p = at;
    p.push_back(k);
    if (!known.count(k)) fail(p, where + ": unknown field \"" + k + "\"", true);
  }
}

XdpMode mode_of(const json& v, const JsonPath& at) {
  if (v.is_string())
    if (auto m = parse_xdp_mode(v.get<std::string>())) return m.value();
  fail(at, "mode must be \"auto\", \"native\" or \"generic\", not " + json_brief(v));
}

}  // namespace

Result<Config> load_config(const std::string& dir) {
  Config c;
  c.dir = dir;
  std::string path = dir + "/sipxdp.conf";
  struct stat sb {};
  if (stat(path.c_str(), &sb) != 0) return c;
  c.file = path;
  auto text = read_policy_text(path);
  if (!text) return make_error(one_line("cannot read " + path + ": " + text.error().message()));
  auto doc = read_json(text.value(), path);
  if (!doc) return doc.error();
  try {
    const json& root = doc->root;
    known_fields(root, {}, {"mode", "interfaces", "log_events_per_minute"}, "sipxdp.conf");
    if (root.contains("mode")) c.mode = mode_of(root["mode"], {"mode"});
    if (root.contains("log_events_per_minute")) {
      const json& n = root["log_events_per_minute"];
      if (!n.is_number_integer() || n.get<int64_t>() < 0 || n.get<int64_t>() > 100000)
        fail({"log_events_per_minute"}, "log_events_per_minute must be a whole number from 0 to 100000");
      c.log_events_per_minute = static_cast<unsigned>(n.get<int64_t>());
    }
    if (root.contains("interfaces")) {
      const json& ifs = root["interfaces"];
      if (!ifs.is_object()) fail({"interfaces"}, "\"interfaces\" must be an object: {\"eth1\": {...}}");
      for (auto& [name, v] : ifs.items()) {
        JsonPath at = {"interfaces", name};
        std::string where = "interfaces." + name;
        if (name.empty() || name.size() > 15 || name.find_first_of("/: \t") != std::string::npos)
          fail(at, "\"" + name + "\" is not an interface name", true);
        known_fields(v, at, {"policy", "mode", "netns"}, where);
        InterfaceConfig ic;
        ic.name = name;
        ic.policy = dir + "/" + name + ".json";
        ic.mode = c.mode;
        auto sub = [&](const char* k) {
          JsonPath p = at;
          p.push_back(std::string(k));
          return p;
        };
        if (v.contains("policy")) {
          if (!v["policy"].is_string() || v["policy"].get<std::string>().empty())
            fail(sub("policy"), where + ".policy must be a file name");
          std::string p = v["policy"].get<std::string>();
          ic.policy = p[0] == '/' ? p : dir + "/" + p;
        }
        if (v.contains("mode")) ic.mode = mode_of(v["mode"], sub("mode"));
        if (v.contains("netns")) {
          if (!v["netns"].is_string() || v["netns"].get<std::string>().find('/') != std::string::npos)
            fail(sub("netns"), where + ".netns must be the name of a network namespace (ip netns)");
          ic.netns = v["netns"].get<std::string>();
        }
        c.interfaces[name] = ic;
      }
    }
  } catch (const ConfigError& e) {
    size_t off = doc->pos.find(e.path, e.at_key);
    std::string at = path + (off != JsonPositions::npos ? ":" + line_col(text.value(), off) : "");
    return make_error(one_line(at + ": " + e.msg));
  }
  return c;
}

}  // namespace sipxdp
