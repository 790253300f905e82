#include "sipxdp/presets.h"

#include <map>
#include <nlohmann/json.hpp>

namespace sipxdp {

namespace detail {
const std::map<std::string, std::string>& embedded_presets();
}

std::vector<std::string> preset_names() {
  std::vector<std::string> out;
  for (auto& [name, text] : detail::embedded_presets()) out.push_back(name);
  return out;
}

Result<std::string> preset_policy(const std::string& name, const std::vector<Cidr>& mgmt,
                                  const std::optional<PortRange>& rtp) {
  auto& all = detail::embedded_presets();
  auto it = all.find(name);
  if (it == all.end()) {
    std::string names;
    for (auto& n : preset_names()) names += (names.empty() ? "" : ", ") + n;
    return make_error("no preset \"" + name + "\" (" + names + ")");
  }
  nlohmann::ordered_json p = nlohmann::ordered_json::parse(it->second);
  if (!mgmt.empty()) {
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (auto& c : mgmt) list.push_back(c.str());
    for (auto& r : p["rules"]) {
      std::string n = r["name"].get<std::string>();
      if (n.size() > 5 && n.compare(n.size() - 5, 5, "-mgmt") == 0) r["src"] = list;
    }
    if (p.contains("sip")) p["sip"]["trusted"] = list;
  }
  if (rtp) {
    std::string range = std::to_string(rtp->lo) + "-" + std::to_string(rtp->hi);
    for (auto& r : p["rules"])
      if (r["name"] == "rtp") r["dport"] = range;
    for (auto& d : p["dscp"])
      if (d["name"] == "rtp-ef") d["sport"] = range;
  }
  std::string made = "sipxdp init --preset " + name;
  for (size_t i = 0; i < mgmt.size(); ++i) made += (i ? "," : " --mgmt ") + mgmt[i].str();
  if (rtp) made += " --rtp " + std::to_string(rtp->lo) + "-" + std::to_string(rtp->hi);
  p["description"] = p["description"].get<std::string>() + " Written by: " + made + ".";
  std::string text = p.dump(2) + "\n";
  auto check = parse_policy(text, "preset " + name);
  if (!check) return check.error();
  return text;
}

}  // namespace sipxdp
