// PacketBuilder: Ethernet frames for BPF_PROG_TEST_RUN fixtures.
#pragma once

#include <arpa/inet.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace sipxdp::test {

class PacketBuilder {
 public:
  using Bytes = std::vector<uint8_t>;

  PacketBuilder& vlan(uint16_t id, uint16_t tpid = 0x8100) {
    vlans_.push_back({tpid, id});
    return *this;
  }
  PacketBuilder& ipv4(const char* src, const char* dst) {
    family_ = 4;
    inet_pton(AF_INET, src, src_);
    inet_pton(AF_INET, dst, dst_);
    return *this;
  }
  PacketBuilder& ipv6(const char* src, const char* dst) {
    family_ = 6;
    inet_pton(AF_INET6, src, src_);
    inet_pton(AF_INET6, dst, dst_);
    return *this;
  }
  // IPv6 extension header (hop-by-hop 0, routing 43, destination options 60), 8 bytes.
  PacketBuilder& ext(uint8_t type) {
    exts_.push_back(type);
    return *this;
  }
  // Fragment: offset in bytes (multiple of 8), more-fragments flag, id.
  PacketBuilder& fragment(uint16_t offset, bool more, uint32_t id = 0x1234) {
    frag_ = true;
    frag_off_ = offset;
    frag_more_ = more;
    frag_id_ = id;
    return *this;
  }
  PacketBuilder& udp(uint16_t sport, uint16_t dport) {
    proto_ = 17;
    sport_ = sport;
    dport_ = dport;
    return *this;
  }
  PacketBuilder& tcp(uint16_t sport, uint16_t dport, uint8_t flags = 0x02, uint32_t seq = 1) {
    proto_ = 6;
    sport_ = sport;
    dport_ = dport;
    tcp_flags_ = flags;
    tcp_seq_ = seq;
    return *this;
  }
  // The bytes of an IPv6 address written in full (e.g. IPv4-mapped forms).
  PacketBuilder& ipv6_raw(const uint8_t* src, const uint8_t* dst) {
    family_ = 6;
    std::memcpy(src_, src, 16);
    std::memcpy(dst_, dst, 16);
    return *this;
  }
  PacketBuilder& payload_bytes(const std::vector<uint8_t>& b) {
    payload_ = b;
    return *this;
  }
  PacketBuilder& icmp(uint8_t type, uint8_t code = 0) {
    proto_ = family_ == 6 ? 58 : 1;
    icmp_type_ = type;
    icmp_code_ = code;
    return *this;
  }
  PacketBuilder& proto(uint8_t p) {
    proto_ = p;
    return *this;
  }
  PacketBuilder& payload(const std::string& s) {
    payload_.assign(s.begin(), s.end());
    return *this;
  }
  PacketBuilder& payload(size_t n, uint8_t fill = 'x') {
    payload_.assign(n, fill);
    return *this;
  }
  // IPv4 TOS or IPv6 traffic class (DSCP << 2 | ECN), and the IPv6 flow label.
  PacketBuilder& tos(uint8_t t) {
    tos_ = t;
    return *this;
  }
  PacketBuilder& flow_label(uint32_t f) {
    flow_label_ = f & 0xfffff;
    return *this;
  }
  // ICMP echo identifier (and sequence 1).
  PacketBuilder& echo_id(uint16_t id) {
    echo_id_ = id;
    return *this;
  }
  PacketBuilder& ethertype(uint16_t t) {
    ethertype_ = t;
    return *this;
  }

  Bytes build() const {
    Bytes l4 = build_l4();
    Bytes out = {0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2};  // dst, src MAC
    for (auto& [tpid, id] : vlans_) {
      put16(out, tpid);
      put16(out, id);
    }
    if (ethertype_) {
      put16(out, ethertype_);
      out.insert(out.end(), 46, 0);
      return out;
    }
    put16(out, family_ == 4 ? 0x0800 : 0x86dd);
    if (family_ == 4) {
      size_t start = out.size();
      out.push_back(0x45);
      out.push_back(tos_);
      put16(out, static_cast<uint16_t>(20 + l4.size()));
      put16(out, static_cast<uint16_t>(frag_id_));
      uint16_t fo = frag_ ? static_cast<uint16_t>((frag_off_ / 8) | (frag_more_ ? 0x2000 : 0)) : 0;
      put16(out, fo);
      out.push_back(64);
      out.push_back(proto_);
      put16(out, 0);
      out.insert(out.end(), src_, src_ + 4);
      out.insert(out.end(), dst_, dst_ + 4);
      uint32_t sum = 0;
      for (size_t i = start; i < start + 20; i += 2) sum += (out[i] << 8) | out[i + 1];
      while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
      uint16_t cs = static_cast<uint16_t>(~sum);
      out[start + 10] = cs >> 8;
      out[start + 11] = cs & 0xff;
    } else {
      std::vector<uint8_t> chain = exts_;
      if (frag_) chain.push_back(44);
      size_t ext_len = exts_.size() * 8 + (frag_ ? 8 : 0);
      out.push_back(static_cast<uint8_t>(0x60 | (tos_ >> 4)));
      out.push_back(static_cast<uint8_t>((tos_ << 4) | (flow_label_ >> 16)));
      put16(out, static_cast<uint16_t>(flow_label_ & 0xffff));
      put16(out, static_cast<uint16_t>(ext_len + l4.size()));
      out.push_back(chain.empty() ? proto_ : chain[0]);
      out.push_back(64);
      out.insert(out.end(), src_, src_ + 16);
      out.insert(out.end(), dst_, dst_ + 16);
      for (size_t i = 0; i < chain.size(); ++i) {
        uint8_t next = i + 1 < chain.size() ? chain[i + 1] : proto_;
        if (chain[i] == 44) {
          out.push_back(next);
          out.push_back(0);
          put16(out, static_cast<uint16_t>(frag_off_ | (frag_more_ ? 1 : 0)));
          put32(out, frag_id_);
        } else {
          out.push_back(next);
          out.push_back(0);                           // 8 bytes
          out.insert(out.end(), {1, 4, 0, 0, 0, 0});  // PadN
        }
      }
    }
    out.insert(out.end(), l4.begin(), l4.end());
    return out;
  }

 private:
  static void put16(Bytes& b, uint16_t v) {
    b.push_back(v >> 8);
    b.push_back(v & 0xff);
  }
  static void put32(Bytes& b, uint32_t v) {
    put16(b, v >> 16);
    put16(b, v & 0xffff);
  }

  Bytes build_l4() const {
    Bytes b;
    bool later = frag_ && frag_off_ != 0;
    if (!later) {
      if (proto_ == 17) {
        put16(b, sport_);
        put16(b, dport_);
        put16(b, static_cast<uint16_t>(8 + payload_.size()));
        put16(b, 0);
      } else if (proto_ == 6) {
        put16(b, sport_);
        put16(b, dport_);
        put32(b, tcp_seq_);
        put32(b, 0);
        b.push_back(5 << 4);
        b.push_back(tcp_flags_);
        put16(b, 65535);
        put16(b, 0);
        put16(b, 0);
      } else if (proto_ == 1 || proto_ == 58) {
        b.push_back(icmp_type_);
        b.push_back(icmp_code_);
        put16(b, 0);
        put16(b, echo_id_);
        put16(b, 1);
      }
    }
    b.insert(b.end(), payload_.begin(), payload_.end());
    return b;
  }

  int family_ = 4;
  uint8_t src_[16]{}, dst_[16]{};
  std::vector<std::pair<uint16_t, uint16_t>> vlans_;
  std::vector<uint8_t> exts_;
  bool frag_ = false, frag_more_ = false;
  uint16_t frag_off_ = 0;
  uint32_t frag_id_ = 0x1234;
  uint8_t proto_ = 17;
  uint16_t sport_ = 0, dport_ = 0;
  uint8_t tcp_flags_ = 0x02;
  uint32_t tcp_seq_ = 1;
  uint8_t icmp_type_ = 0, icmp_code_ = 0;
  uint16_t ethertype_ = 0;
  uint8_t tos_ = 0;
  uint32_t flow_label_ = 0;
  uint16_t echo_id_ = 1;
  Bytes payload_;
};

}  // namespace sipxdp::test
