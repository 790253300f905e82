// A pcapng writer (the format tshark and Wireshark read by default) for
// `sipxdp capture`: one interface block per sipxdp instance, and each packet
// with its verdict in the packet block's comment. libpcap writes only the
// older pcap format, which has no per-packet comments, hence this.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "sipxdp/result.h"

namespace sipxdp {

class PcapngWriter {
 public:
  // "-" writes to standard output.
  static Result<PcapngWriter> create(const std::string& path, const std::string& application);
  PcapngWriter(PcapngWriter&&) noexcept;
  PcapngWriter& operator=(PcapngWriter&&) = delete;
  ~PcapngWriter();

  // An Ethernet interface; returns its id for write_packet.
  Result<uint32_t> add_interface(const std::string& name, const std::string& description, uint32_t snaplen);
  // One packet: time in Unix nanoseconds, the captured bytes, the length it had.
  Status write_packet(uint32_t interface_id, uint64_t time_ns, const std::string& bytes, uint32_t original_len,
                      const std::string& comment);
  Status flush();

 private:
  PcapngWriter() = default;
  Status write_block(uint32_t type, const std::string& body);
  FILE* f_ = nullptr;
  bool own_ = false;
  std::string path_;
  uint32_t interfaces_ = 0;
};

}  // namespace sipxdp
