// Non-copyable RAII owner of a bpftool-generated skeleton (T::open/load/destroy).
#pragma once

#include <memory>

namespace sipxdp {

template <typename T>
class Skeleton {
 public:
  Skeleton() = default;
  explicit Skeleton(T* s) : s_(s) {}

  static Skeleton open(const struct bpf_object_open_opts* opts = nullptr) { return Skeleton(T::open(opts)); }
  int load() { return T::load(s_.get()); }

  T* get() const { return s_.get(); }
  T* operator->() const { return s_.get(); }
  explicit operator bool() const { return s_ != nullptr; }

 private:
  struct Deleter {
    void operator()(T* s) const { T::destroy(s); }
  };
  std::unique_ptr<T, Deleter> s_;
};

}  // namespace sipxdp
