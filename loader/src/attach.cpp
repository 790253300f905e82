// Attaching and detaching: the staging directory renamed into place, the TC
// egress filter and its clsact qdisc, the XDP link; and clean-up of what
// interrupted attaches, deleted namespaces and lost pins leave.
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "datapath_impl.h"

namespace sipxdp {

using namespace detail;

namespace {

std::string hex(uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof(b), "%x", v);
  return b;
}

// A netlink dump of tc objects (qdiscs or filters) of ifindex under `parent`
// (0: any); calls fn for each message. False when the dump failed.
template <typename Fn>
bool tc_dump(uint16_t type, int ifindex, uint32_t parent, Fn&& fn) {
  Fd sock(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!sock.valid()) return false;
  struct {
    nlmsghdr nh;
    tcmsg tc;
  } req{};
  req.nh.nlmsg_len = sizeof(req);
  req.nh.nlmsg_type = type;
  req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.tc.tcm_family = AF_UNSPEC;
  req.tc.tcm_ifindex = ifindex;
  req.tc.tcm_parent = parent;
  if (::send(sock.get(), &req, sizeof(req), 0) < 0) return false;
  for (;;) {
    alignas(nlmsghdr) char buf[16384];
    ssize_t n = ::recv(sock.get(), buf, sizeof(buf), 0);
    if (n <= 0) return false;
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type == NLMSG_DONE) return true;
      if (h->nlmsg_type == NLMSG_ERROR) return false;
      fn(h);
    }
  }
}

// Whether ifindex has a clsact qdisc (-1: cannot tell).
int clsact_exists(int ifindex) {
  int found = 0;
  bool ok = tc_dump(RTM_GETQDISC, ifindex, 0, [&](nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWQDISC) return;
    auto* tc = static_cast<tcmsg*>(NLMSG_DATA(h));
    if (tc->tcm_ifindex != ifindex || tc->tcm_parent != TC_H_CLSACT) return;
    int len = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(sizeof(*tc)));
    for (auto* a = reinterpret_cast<rtattr*>(reinterpret_cast<char*>(tc) + NLMSG_ALIGN(sizeof(*tc))); RTA_OK(a, len);
         a = RTA_NEXT(a, len))
      if (a->rta_type == TCA_KIND && std::strcmp(static_cast<const char*>(RTA_DATA(a)), "clsact") == 0) found = 1;
  });
  return ok ? found : -1;
}

// How many TC filters sit under the clsact qdisc of ifindex (ingress and
// egress); -1 when it cannot be told.
int clsact_filters(int ifindex) {
  int total = 0;
  for (uint32_t minor : {TC_H_MIN_INGRESS, TC_H_MIN_EGRESS})
    if (!tc_dump(RTM_GETTFILTER, ifindex, TC_H_MAKE(TC_H_CLSACT, minor),
                 [&](nlmsghdr* h) { total += h->nlmsg_type == RTM_NEWTFILTER; }))
      return -1;
  return total;
}

// Removes our egress filter if it is still ours (the pinned program), and the
// clsact qdisc if sipxdp created it.
Status detach_tc(int state_fd, const std::string& dir) {
  uint32_t zero = 0;
  sipxdp_state st{};
  if (bpf_map_lookup_elem(state_fd, &zero, &st) != 0) return sys_error("cannot read map state", errno);
  if (!(st.tc_flags & SIPXDP_TC_ATTACHED) || !st.tc_ifindex) return ok_status();
  int ifindex = static_cast<int>(st.tc_ifindex);
  uint32_t ours = 0;
  {
    Fd prog(bpf_obj_get((dir + "/" + kTcPin).c_str()));
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    if (prog.valid() && bpf_obj_get_info_by_fd(prog.get(), &info, &len) == 0) ours = info.id;
  }
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_EGRESS);
  LIBBPF_OPTS(bpf_tc_opts, q, .handle = SIPXDP_TC_HANDLE, .priority = SIPXDP_TC_PRIORITY);
  int err = bpf_tc_query(&hook, &q);
  auto forget = [&] {
    return update_state_fd(state_fd, [](sipxdp_state& s) {
      s.tc_flags = 0;
      s.tc_ifindex = 0;
    });
  };
  if (err == -ENODEV) return forget();  // the interface is gone, and its filters and qdiscs with it
  if (err == 0 && ours && q.prog_id == ours) {
    LIBBPF_OPTS(bpf_tc_opts, d, .handle = SIPXDP_TC_HANDLE, .priority = SIPXDP_TC_PRIORITY);
    err = bpf_tc_detach(&hook, &d);
    if (err && err != -ENOENT && err != -ENODEV) return sys_error("cannot detach the TC egress filter", -err);
  }
  // Our clsact goes with us, unless someone has put filters of their own on
  // it since. (The caller checked that this is the attach's network
  // namespace, where interface indexes are not reused.)
  if ((st.tc_flags & SIPXDP_TC_OWN_CLSACT) && clsact_filters(ifindex) == 0) {
    hook.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
    err = bpf_tc_hook_destroy(&hook);
    if (err && err != -ENOENT && err != -EINVAL && err != -ENODEV)
      return sys_error("cannot remove the clsact qdisc", -err);
  }
  return forget();
}

// Removes a sipxdp egress filter found on an interface of the current
// network namespace (by its handle, priority and program name): one left by
// an instance whose pins are gone.
Result<bool> remove_stray_filter(int ifindex) {
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_EGRESS);
  LIBBPF_OPTS(bpf_tc_opts, q, .handle = SIPXDP_TC_HANDLE, .priority = SIPXDP_TC_PRIORITY);
  if (bpf_tc_query(&hook, &q) != 0 || !q.prog_id) return false;
  Fd prog(bpf_prog_get_fd_by_id(q.prog_id));
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  if (!prog.valid() || bpf_obj_get_info_by_fd(prog.get(), &info, &len) != 0) return false;
  if (std::string(info.name) != "tc_egress") return false;
  LIBBPF_OPTS(bpf_tc_opts, d, .handle = SIPXDP_TC_HANDLE, .priority = SIPXDP_TC_PRIORITY);
  int err = bpf_tc_detach(&hook, &d);
  if (err && err != -ENOENT) return sys_error("cannot remove the sipxdp egress filter", -err);
  return true;
}

}  // namespace

Status Datapath::attach_and_pin(const AttachOptions& o, const Policy& p, const std::string& source,
                                const std::string& path) {
  Impl& I = *impl_;
  if (!I.skel) return make_error("internal: attach needs a freshly loaded program");
  std::string where = o.netns.empty() ? "" : " in network namespace " + o.netns;
  unsigned ifindex = if_nametoindex(o.ifname.c_str());
  if (ifindex == 0) return make_error("no interface " + o.ifname + where);
  if (o.ifname == "lo") return make_error("refusing to attach to the loopback interface");

  SIPXDP_TRY(check_pins_persist());
  SIPXDP_TRY(mkdir_p(pin_root()));
  auto lock = RootLock::take();
  if (!lock) return lock.error();
  // Attaches killed half-way left staging directories; none is being
  // written now (we hold the lock), so undo what they made.
  for (auto& in : list_instances())
    if (in.state == Instance::State::incomplete && in.dir == staging_dir(in.ifname, in.netns))
      SIPXDP_TRY(detach(in.dir));

  std::string dir = pin_dir(o.ifname, o.netns);
  struct stat sb {};
  if (stat(dir.c_str(), &sb) == 0) {
    Instance in = inspect_instance(dir);
    std::string hint = in.state == Instance::State::ok ? "use apply, or detach first" : in.why;
    return make_error(o.ifname + where + " is already attached (pins at " + dir + "); " + hint);
  }
  LIBBPF_OPTS(bpf_xdp_query_opts, q);
  if (bpf_xdp_query(static_cast<int>(ifindex), 0, &q) == 0 && q.prog_id != 0)
    return make_error(o.ifname + where + " already has an XDP program (id " + std::to_string(q.prog_id) +
                      ") that sipxdp did not attach; remove it first");
  {
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = static_cast<int>(ifindex), .attach_point = BPF_TC_EGRESS);
    LIBBPF_OPTS(bpf_tc_opts, tq, .handle = SIPXDP_TC_HANDLE, .priority = SIPXDP_TC_PRIORITY);
    if (bpf_tc_query(&hook, &tq) == 0 && tq.prog_id)
      return make_error(o.ifname + where + " has a TC egress filter at handle 0x" + hex(SIPXDP_TC_HANDLE) +
                        " priority " + std::to_string(SIPXDP_TC_PRIORITY) +
                        " (a sipxdp instance whose pins are gone leaves one: sipxdp detach " + o.ifname +
                        " removes it)");
  }
  auto cookie = current_netns_cookie();
  if (!cookie) return cookie.error();

  // Built under a staging name and renamed into place last: a directory under
  // the final name is always a whole instance.
  std::string staging = staging_dir(o.ifname, o.netns);
  if (::mkdir(staging.c_str(), 0700) != 0) return sys_error("cannot create " + staging, errno);
  I.dir = staging;
  bool tc_on = false;
  auto fail = [&](Error e) -> Status {
    if (tc_on) (void)detach_tc(I.fd(M_state), staging);
    remove_dir(staging);
    I.dir.clear();
    return e;
  };
  if (auto s = I.update_state([&](sipxdp_state& st) { st.netns_cookie = cookie.value(); }); !s) return fail(s.error());
  // Record where this instance lives before any policy write copies it forward.
  {
    Manifest m;
    m.iface = o.ifname;
    m.netns = o.netns;
    m.mode = xdp_mode_name(o.mode);
    auto text = encode_manifest(m, manifest_capacity());
    if (!text) return fail(text.error());
    for (uint32_t gen = 0; gen < SIPXDP_GENS; ++gen)
      if (auto s = I.write_manifest_text(gen, text.value()); !s) return fail(s.error());
  }
  for (int i = 0; i < M_NUM; ++i) {
    std::string at = staging + "/" + kMapNames[i];
    if (bpf_obj_pin(I.fd(static_cast<MapId>(i)), at.c_str()) != 0)
      return fail(sys_error("cannot pin map at " + at, errno));
  }

  // The policy is live before the first packet reaches the program.
  if (auto a = apply(p, source, path); !a) return fail(a.error());

  // TC egress first: recording flows and marking DSCP is harmless on its own,
  // and a failed XDP attach below undoes it.
  std::string tc_path = staging + "/" + kTcPin;
  if (bpf_obj_pin(tc_prog_fd(), tc_path.c_str()) != 0)
    return fail(sys_error("cannot pin program at " + tc_path, errno));
  {
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = static_cast<int>(ifindex), .attach_point = BPF_TC_EGRESS);
    // Recorded before the qdisc and the filter exist, so that a detach after
    // a crash anywhere from here on finds (and removes) what this attach made.
    int had = clsact_exists(static_cast<int>(ifindex));
    if (had < 0) return fail(make_error("cannot list the qdiscs of " + o.ifname + where));
    if (auto s = I.update_state([&](sipxdp_state& st) {
          st.tc_flags = SIPXDP_TC_ATTACHED | (had ? 0u : SIPXDP_TC_OWN_CLSACT);
          st.tc_ifindex = ifindex;
        });
        !s)
      return fail(s.error());
    tc_on = true;
    int err = bpf_tc_hook_create(&hook);
    if (err == -EEXIST && !had) {  // someone else made one meanwhile: it is theirs
      if (auto s = I.update_state([](sipxdp_state& st) { st.tc_flags &= ~SIPXDP_TC_OWN_CLSACT; }); !s)
        return fail(s.error());
    } else if (err && err != -EEXIST) {
      return fail(sys_error("cannot create the clsact qdisc on " + o.ifname + where, -err));
    }
    LIBBPF_OPTS(bpf_tc_opts, to, .prog_fd = tc_prog_fd(), .handle = SIPXDP_TC_HANDLE, .priority = SIPXDP_TC_PRIORITY);
    err = bpf_tc_attach(&hook, &to);
    if (err) {
      Error e = sys_error("cannot attach the TC egress filter on " + o.ifname + where, -err);
      if (err == -EEXIST)
        e.what += " (a filter already holds handle 0x" + hex(SIPXDP_TC_HANDLE) + " priority " +
                  std::to_string(SIPXDP_TC_PRIORITY) + ")";
      return fail(e);
    }
  }

  uint32_t flags = o.mode == XdpMode::native ? XDP_FLAGS_DRV_MODE : o.mode == XdpMode::generic ? XDP_FLAGS_SKB_MODE : 0;
  LIBBPF_OPTS(bpf_link_create_opts, lo, .flags = flags);
  // Until the link is pinned, only this process holds it: if it dies the
  // program detaches with it.
  Fd link(bpf_link_create(xdp_prog_fd(), static_cast<int>(ifindex), BPF_XDP, &lo));
  if (!link.valid()) {
    int e = errno;
    std::string why = "cannot attach XDP to " + o.ifname + where + " in " + xdp_mode_name(o.mode) + " mode";
    if (e == EOPNOTSUPP || e == EINVAL) why += " (the driver may lack native XDP; try --mode generic)";
    Error err = sys_error(why, e);
    err.detail = libbpf_log_tail();
    return fail(err);
  }
  std::string link_path = staging + "/" + kLinkPin;
  if (bpf_obj_pin(link.get(), link_path.c_str()) != 0) return fail(sys_error("cannot pin link at " + link_path, errno));
  if (::rename(staging.c_str(), dir.c_str()) != 0) {
    Error e = sys_error("cannot rename " + staging + " to " + dir, errno);
    (void)bpf_link_detach(link.get());
    return fail(e);
  }
  I.dir = dir;
  return ok_status();
}

Result<Datapath::LinkInfo> Datapath::link_info(const std::string& dir) {
  std::string path = dir + "/" + kLinkPin;
  Fd fd(bpf_obj_get(path.c_str()));
  if (!fd.valid()) return sys_error("cannot open pinned link " + path, errno);
  bpf_link_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) return sys_error("cannot query link " + path, errno);
  LinkInfo li;
  li.prog_id = info.prog_id;
  li.link_id = info.id;
  li.ifindex = info.xdp.ifindex;
  li.alive = info.xdp.ifindex != 0;
  return li;
}

Status Datapath::detach(const std::string& dir) {
  struct stat sb {};
  if (stat(dir.c_str(), &sb) != 0) return sys_error("nothing attached at " + dir, errno);
  Instance in = inspect_instance(dir);
  // The egress filter first, found through the state map: it must go even
  // when the XDP link is already gone. It lives in the instance's network
  // namespace; if that namespace is gone, so is the filter.
  Fd state(bpf_obj_get((dir + "/state").c_str()));
  uint32_t zero = 0;
  sipxdp_state st{};
  if (state.valid() && bpf_map_lookup_elem(state.get(), &zero, &st) == 0 && (st.tc_flags & SIPXDP_TC_ATTACHED) &&
      (in.netns.empty() || netns_exists(in.netns))) {
    auto scope = NetnsScope::enter(in.netns);
    if (!scope) return scope.error();
    auto cookie = current_netns_cookie();
    if (!cookie) return cookie.error();
    if (cookie.value() == st.netns_cookie) SIPXDP_TRY(detach_tc(state.get(), dir));
  }
  std::string link_path = dir + "/" + kLinkPin;
  Fd fd(bpf_obj_get(link_path.c_str()));
  // Detach explicitly: another process holding the link must not keep it attached.
  if (fd.valid() && bpf_link_detach(fd.get()) != 0 && errno != EINVAL && errno != ENOLINK)
    return sys_error("cannot detach link " + link_path, errno);
  remove_dir(dir);
  if (stat(dir.c_str(), &sb) == 0) return make_error("could not remove every pin under " + dir);
  return ok_status();
}

Result<bool> Datapath::detach_stray(const std::string& ifname) {
  unsigned ifindex = if_nametoindex(ifname.c_str());
  if (!ifindex) return false;
  return remove_stray_filter(static_cast<int>(ifindex));
}

}  // namespace sipxdp
