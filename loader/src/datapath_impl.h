// The inside of Datapath, shared by the files that implement it (datapath,
// generation, attach, bans). Not installed.
#pragma once

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <functional>
#include <string>
#include <utility>

#include "pinned_maps.h"
#include "sipxdp/datapath.h"
#include "sipxdp/skeleton.h"
#include "sipxdp_bpf.skel.h"

namespace sipxdp {

namespace detail {

constexpr const char* kLinkPin = "xdp_link";
constexpr const char* kTcPin = "tc_egress";  // the egress program, to recognise our filter

// The skeleton's map of each pinned id, from the same list.
using SkelMaps = decltype(sipxdp_bpf::maps);
inline constexpr bpf_map* SkelMaps::*kSkelMaps[] = {
#define SIPXDP_X_MEMBER(name) &SkelMaps::name,
    SIPXDP_PINNED_MAPS(SIPXDP_X_MEMBER)
#undef SIPXDP_X_MEMBER
};
inline constexpr size_t kUnpinned = 0
#define SIPXDP_X_COUNT(name) +(sizeof(&SkelMaps::name) > 0)
    SIPXDP_UNPINNED_MAPS(SIPXDP_X_COUNT)
#undef SIPXDP_X_COUNT
    ;
static_assert(sizeof(SkelMaps) == (M_NUM + kUnpinned) * sizeof(bpf_map*),
              "a map of the BPF object is in neither SIPXDP_PINNED_MAPS nor SIPXDP_UNPINNED_MAPS");

// An advisory lock on an instance directory: policy writers (apply, bans)
// never see each other half-way.
class DirLock {
 public:
  static Result<DirLock> take(const std::string& dir) {
    DirLock l;
    l.fd_.reset(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!l.fd_.valid()) return sys_error("cannot open " + dir, errno);
    if (::flock(l.fd_.get(), LOCK_EX) != 0) return sys_error("cannot lock " + dir, errno);
    return l;
  }

 private:
  Fd fd_;
};

// Calls fn(key) for every key of a hash or LPM map.
template <typename Key, typename Fn>
void for_each_key(int fd, Fn&& fn) {
  Key cur{}, next{};
  void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    cur = next;
    prev = &cur;
    fn(cur);
  }
}

// A writable view of a BPF_F_MMAPABLE array map.
class Mapping {
 public:
  static Result<Mapping> map(int fd, size_t bytes, const char* name) {
    long page = sysconf(_SC_PAGESIZE);
    size_t len = (bytes + page - 1) / page * page;
    void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return sys_error(std::string("cannot mmap map ") + name, errno);
    Mapping m;
    m.p_ = static_cast<uint8_t*>(p);
    m.len_ = len;
    return m;
  }
  Mapping() = default;
  Mapping(Mapping&& o) noexcept : p_(std::exchange(o.p_, nullptr)), len_(o.len_) {}
  ~Mapping() {
    if (p_) munmap(p_, len_);
  }
  uint8_t* data() const { return p_; }

 private:
  uint8_t* p_ = nullptr;
  size_t len_ = 0;
};

// An array map's values are laid out every round_up(value_size, 8) bytes.
inline size_t array_stride(size_t value_size) {
  return (value_size + 7) & ~size_t(7);
}

int ncpus();
// Reads the state map at `fd`, lets `edit` change it, writes it back.
Status update_state_fd(int fd, const std::function<void(sipxdp_state&)>& edit);
// CLOCK_MONOTONIC_COARSE: the clock of bpf_ktime_get_coarse_ns().
uint64_t monotonic_ns();
Status mkdir_p(const std::string& path);
void remove_dir(const std::string& dir);

}  // namespace detail

struct Datapath::Impl {
  Skeleton<sipxdp_bpf> skel;
  Fd maps[detail::M_NUM];
  std::string dir;  // pin directory, when opened from pins or attached

  int fd(detail::MapId m) const { return maps[m].get(); }

  Result<sipxdp_state> read_state() const;
  // The one writer of the state map: reads it, lets `edit` change it, writes it back.
  Status update_state(const std::function<void(sipxdp_state&)>& edit) const;

  Result<std::string> read_manifest_text(uint32_t gen) const;
  Status write_manifest_text(uint32_t gen, const std::string& text) const;

  // Deletes every key of generation `gen` from a hash or LPM map.
  template <typename Key>
  Status clear_gen(detail::MapId m, uint8_t gen) const {
    std::vector<Key> doomed;
    detail::for_each_key<Key>(fd(m), [&](const Key& k) {
      if (k.gen == gen) doomed.push_back(k);
    });
    for (auto& d : doomed)
      if (bpf_map_delete_elem(fd(m), &d) != 0 && errno != ENOENT)
        return sys_error(std::string("cannot clear map ") + detail::kMapNames[m], errno);
    return ok_status();
  }

  // Returns once no packet can still be judged by a generation older than now.
  Status wait_for_readers() const;

  // The instance lock, when this Datapath lives in a pin directory.
  Result<std::optional<detail::DirLock>> lock() const;
};

}  // namespace sipxdp
