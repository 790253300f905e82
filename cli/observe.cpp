// Watching it: `events` (who was dropped and why), `capture` (the dropped
// packets as pcapng), `exporter` (Prometheus), and the service's journal lines.
#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <deque>
#include <iostream>
#include <thread>

#include "cli.h"
#include "sipxdp/drop_events.h"
#include "sipxdp/metrics.h"
#include "sipxdp/pcapng.h"
#include "sipxdp/version.h"

namespace sipxdp::cli {

namespace {

// The instances a command about events covers: IFACE (of --netns), or every
// attached one of that namespace.
std::vector<Instance> chosen(const std::string& iface, const Global& g) {
  if (!iface.empty()) {
    std::string dir = pin_dir(iface, g.netns);
    if (!exists(dir)) fail(make_error(iface + g.where() + " is not attached"));
    return {inspect_instance(dir)};
  }
  auto all = instances(g);
  if (all.empty()) fail(make_error("no interface is attached" + g.where()));
  return all;
}

EventFilter make_filter(const std::vector<std::string>& reasons, const std::vector<std::string>& srcs) {
  EventFilter f;
  f.reasons = reasons;
  for (auto& s : srcs) {
    auto c = parse_cidr(s);
    if (!c) fail(make_error("--src: " + c.error().what));
    f.sources.push_back(c.value());
  }
  return f;
}

// Refuses an instance whose policy makes no events: following it would show
// nothing, which reads as "nothing was dropped".
void require_events_on(const Instance& in) {
  auto dp = must(Datapath::open_pinned(in.dir));
  auto m = must(dp.manifest());
  auto it = m.settings.find("events.drops");
  if (it != m.settings.end() && !it->second.empty() && it->second[0] == "off")
    fail(make_error(instance_name(in) + ": the policy makes no drop events (\"events\": {\"drops\": false})"));
}

using Clock = std::chrono::steady_clock;

class Events : public Command {
  std::string iface_;
  bool follow_ = false, json_ = false;
  std::vector<std::string> reasons_, srcs_;
  size_t count_ = 0;
  double seconds_ = 0;

 public:
  const char* name() const override { return "events"; }
  const char* help() const override { return "show drop events: who was dropped, by what rule, pattern or check"; }
  void define(CLI::App& app) override {
    app.add_option("iface", iface_, "interface (default: every attached one)");
    app.add_flag("-f,--follow", follow_, "wait for new events and print them as they come");
    app.add_flag("--json", json_, "one JSON object per line");
    app.add_option("--reason", reasons_, "only these reasons (rule name, scanner:PATTERN, default...; * ? globs)");
    app.add_option("--src", srcs_, "only sources in these prefixes");
    app.add_option("-n,--count", count_, "at most N events (recent: the last N, default 20; --follow: stop after N)");
    app.add_option("--seconds", seconds_, "with --follow: stop after this long")->check(CLI::PositiveNumber);
  }
  void print(const Event& e) const {
    if (json_)
      std::cout << to_json(e).dump() << "\n";
    else
      std::cout << event_line(e) << "\n";
  }
  void run(const Global& g) override {
    EventFilter filter = make_filter(reasons_, srcs_);
    auto ins = chosen(iface_, g);
    for (auto& in : ins) require_events_on(in);
    if (!follow_) {
      std::vector<Event> all;
      int64_t offset = monotonic_to_unix_ns();
      for (auto& in : ins) {
        auto dp = must(Datapath::open_pinned(in.dir));
        SlotNames names(must(dp.manifest()));
        for (auto& raw : must(dp.recent_events())) {
          Event e = make_event(raw, names, in.ifname, in.netns, offset);
          if (filter.matches(e)) all.push_back(std::move(e));
        }
      }
      std::stable_sort(all.begin(), all.end(), [](const Event& a, const Event& b) { return a.time_ns < b.time_ns; });
      size_t n = count_ ? count_ : 20;
      for (size_t i = all.size() > n ? all.size() - n : 0; i < all.size(); ++i) print(all[i]);
      return;
    }
    catch_stop_signals();
    EventStream stream;
    for (auto& in : ins) must(stream.add(in.dir, in.ifname, in.netns));
    std::cout << std::flush;
    size_t shown = 0;
    auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds_));
    while (!stop_requested() && (!count_ || shown < count_) && (!seconds_ || Clock::now() < deadline)) {
      must(stream.poll(200, [&](const Event& e) {
        if ((count_ && shown >= count_) || !filter.matches(e)) return;
        print(e);
        ++shown;
      }));
      std::cout << std::flush;
    }
  }
};

class Capture : public Command {
  std::string iface_, file_;
  std::vector<std::string> reasons_, srcs_;
  size_t count_ = 0;
  unsigned snaplen_ = 256;
  double seconds_ = 0;

 public:
  const char* name() const override { return "capture"; }
  const char* help() const override { return "write dropped packets to a pcapng file, each with its verdict"; }
  void define(CLI::App& app) override {
    app.add_option("iface", iface_, "interface (default: every attached one)");
    app.add_option("-w,--write", file_, "pcapng file to write (- for standard output)")->required();
    app.add_option("--reason", reasons_, "only these reasons (rule name, scanner:PATTERN, default...; globs)");
    app.add_option("--src", srcs_, "only sources in these prefixes");
    app.add_option("-c,--count", count_, "stop after N packets");
    app.add_option("-s,--snaplen", snaplen_, "bytes of each packet (at most the policy's events.snaplen)")
        ->check(CLI::Range(14u, unsigned(SIPXDP_EVENT_SNAP_MAX)));
    app.add_option("--seconds", seconds_, "stop after this long")->check(CLI::PositiveNumber);
  }
  void run(const Global& g) override {
    EventFilter filter = make_filter(reasons_, srcs_);
    auto ins = chosen(iface_, g);
    for (auto& in : ins) require_events_on(in);
    catch_stop_signals();
    EventStream stream;
    for (auto& in : ins) must(stream.add(in.dir, in.ifname, in.netns));
    auto w = must(PcapngWriter::create(file_, std::string("sipxdp ") + version()));
    std::map<std::string, uint32_t> ifid;
    for (auto& in : ins)
      ifid[instance_name(in)] =
          must(w.add_interface(instance_name(in), "sipxdp drops on " + instance_name(in), snaplen_));
    std::ostream& info = file_ == "-" ? std::cerr : std::cout;
    info << "capturing drops on";
    for (auto& in : ins) info << " " << instance_name(in);
    info << " to " << file_ << std::endl;
    size_t n = 0;
    auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds_));
    while (!stop_requested() && (!count_ || n < count_) && (!seconds_ || Clock::now() < deadline)) {
      must(stream.poll(200, [&](const Event& e) {
        if ((count_ && n >= count_) || !filter.matches(e)) return;
        std::string name = e.iface + (e.netns.empty() ? "" : "@" + e.netns);
        std::string comment = "sipxdp: drop reason=" + e.reason + " iface=" + name;
        if (!e.info.sip_method.empty()) comment += " sip=" + escape_bytes(e.info.sip_method);
        if (!e.info.user_agent.empty()) comment += " ua=\"" + escape_bytes(e.info.user_agent) + "\"";
        must(w.write_packet(ifid[name], e.time_ns, e.frame.substr(0, snaplen_), e.pkt_len, comment));
        ++n;
      }));
      must(w.flush());
    }
    info << "captured " << n << " dropped packets to " << file_ << std::endl;
  }
};

// Scrapes read the kernel's maps at that moment: nothing is cached.
class Collector : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override { return collect_metrics(list_instances()); }
};

class Exporter : public Command {
  std::string listen_ = "127.0.0.1:9778";

 public:
  const char* name() const override { return "exporter"; }
  const char* help() const override { return "serve Prometheus metrics of every instance over HTTP (/metrics)"; }
  void define(CLI::App& app) override {
    app.add_option("--listen", listen_, "ADDR:PORT to listen on (default 127.0.0.1:9778; [::1]:PORT for IPv6)");
  }
  void run(const Global&) override {
    size_t colon = listen_.rfind(':');
    if (colon == std::string::npos || colon + 1 == listen_.size() ||
        listen_.find_first_not_of("0123456789", colon + 1) != std::string::npos)
      fail(make_error("--listen: \"" + listen_ + "\" is not ADDR:PORT"));
    catch_stop_signals();
    std::unique_ptr<prometheus::Exposer> exposer;
    try {
      exposer = std::make_unique<prometheus::Exposer>(listen_, 2);
    } catch (const std::exception& e) {
      fail(make_error("cannot listen on " + listen_ + ": " + e.what()));
    }
    auto collector = std::make_shared<Collector>();
    exposer->RegisterCollectable(collector);
    auto ports = exposer->GetListeningPorts();
    std::string host = listen_.substr(0, colon);
    std::cout << "serving metrics on http://" << host << ":" << (ports.empty() ? 0 : ports[0]) << "/metrics"
              << std::endl;
    sd_notify(0, "READY=1");
    while (!stop_requested()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    sd_notify(0, "STOPPING=1");
  }
};

}  // namespace

void log_events(const std::string& dir, const std::string& iface, const std::string& netns, unsigned per_minute) {
  EventStream stream;
  if (auto st = stream.add(dir, iface, netns); !st) {
    std::cout << "sipxdp: cannot follow drop events: " << one_line(st.error().message())
              << "; the firewall stays as it is" << std::endl;
    while (!stop_requested() && exists(dir)) std::this_thread::sleep_for(std::chrono::milliseconds(500));
    return;
  }
  std::deque<Clock::time_point> logged;
  uint64_t left_out = 0;
  auto window_start = Clock::now();
  while (!stop_requested()) {
    must(stream.poll(500, [&](const Event& e) {
      auto now = Clock::now();
      while (!logged.empty() && now - logged.front() > std::chrono::minutes(1)) logged.pop_front();
      if (logged.size() >= per_minute) {
        ++left_out;
        return;
      }
      logged.push_back(now);
      std::cout << event_line(e) << "\n";
    }));
    if (left_out && Clock::now() - window_start > std::chrono::minutes(1)) {
      std::cout << "sipxdp: " << left_out << " more drop events in the last minute not logged (at most " << per_minute
                << " a minute; sipxdp events shows them)"
                << "\n";
      left_out = 0;
      window_start = Clock::now();
    }
    std::cout << std::flush;
    if (!exists(dir)) {
      std::cout << "sipxdp: " << iface << (netns.empty() ? "" : "@" + netns)
                << " was detached outside this service; stopping" << std::endl;
      return;
    }
  }
}

std::vector<std::unique_ptr<Command>> observe_commands() {
  std::vector<std::unique_ptr<Command>> v;
  v.push_back(std::make_unique<Events>());
  v.push_back(std::make_unique<Capture>());
  v.push_back(std::make_unique<Exporter>());
  return v;
}

}  // namespace sipxdp::cli
