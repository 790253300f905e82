// pcapng blocks (draft-ietf-opsawg-pcapng): section header, interface
// description, enhanced packet; little-endian as written by this host.
#include "sipxdp/pcapng.h"

#include <cerrno>
#include <cstring>
#include <utility>

namespace sipxdp {

namespace {

constexpr uint32_t kSectionHeader = 0x0A0D0D0A;
constexpr uint32_t kInterfaceDescription = 1;
constexpr uint32_t kEnhancedPacket = 6;
constexpr uint16_t kOptEnd = 0, kOptComment = 1;
constexpr uint16_t kShbUserAppl = 4;
constexpr uint16_t kIfName = 2, kIfDescription = 3, kIfTsresol = 9;
constexpr uint16_t kLinktypeEthernet = 1;

template <typename T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

void pad4(std::string& out) {
  while (out.size() % 4) out.push_back('\0');
}

void option(std::string& out, uint16_t code, const std::string& value) {
  put<uint16_t>(out, code);
  put<uint16_t>(out, static_cast<uint16_t>(value.size()));
  out += value;
  pad4(out);
}

void end_options(std::string& out) {
  put<uint16_t>(out, kOptEnd);
  put<uint16_t>(out, 0);
}

}  // namespace

Result<PcapngWriter> PcapngWriter::create(const std::string& path, const std::string& application) {
  PcapngWriter w;
  w.path_ = path;
  if (path == "-") {
    w.f_ = stdout;
  } else {
    w.f_ = std::fopen(path.c_str(), "wb");
    if (!w.f_) return sys_error("cannot create " + path, errno);
    w.own_ = true;
  }
  std::string shb;
  put<uint32_t>(shb, 0x1A2B3C4D);  // byte-order magic
  put<uint16_t>(shb, 1);           // version 1.0
  put<uint16_t>(shb, 0);
  put<int64_t>(shb, -1);  // section length: not given
  option(shb, kShbUserAppl, application);
  end_options(shb);
  SIPXDP_TRY(w.write_block(kSectionHeader, shb));
  return w;
}

PcapngWriter::PcapngWriter(PcapngWriter&& o) noexcept
    : f_(std::exchange(o.f_, nullptr)), own_(o.own_), path_(std::move(o.path_)), interfaces_(o.interfaces_) {}

PcapngWriter::~PcapngWriter() {
  if (f_) {
    std::fflush(f_);
    if (own_) std::fclose(f_);
  }
}

Status PcapngWriter::write_block(uint32_t type, const std::string& body) {
  std::string block;
  uint32_t total = static_cast<uint32_t>(12 + body.size());
  put<uint32_t>(block, type);
  put<uint32_t>(block, total);
  block += body;
  put<uint32_t>(block, total);
  if (std::fwrite(block.data(), 1, block.size(), f_) != block.size())
    return sys_error("cannot write " + (path_ == "-" ? std::string("standard output") : path_), errno);
  return ok_status();
}

Result<uint32_t> PcapngWriter::add_interface(const std::string& name, const std::string& description,
                                             uint32_t snaplen) {
  std::string idb;
  put<uint16_t>(idb, kLinktypeEthernet);
  put<uint16_t>(idb, 0);
  put<uint32_t>(idb, snaplen);
  option(idb, kIfName, name);
  if (!description.empty()) option(idb, kIfDescription, description);
  option(idb, kIfTsresol, std::string(1, '\x09'));  // nanoseconds
  end_options(idb);
  SIPXDP_TRY(write_block(kInterfaceDescription, idb));
  return interfaces_++;
}

Status PcapngWriter::write_packet(uint32_t interface_id, uint64_t time_ns, const std::string& bytes,
                                  uint32_t original_len, const std::string& comment) {
  std::string epb;
  put<uint32_t>(epb, interface_id);
  put<uint32_t>(epb, static_cast<uint32_t>(time_ns >> 32));
  put<uint32_t>(epb, static_cast<uint32_t>(time_ns));
  put<uint32_t>(epb, static_cast<uint32_t>(bytes.size()));
  put<uint32_t>(epb, original_len);
  epb += bytes;
  pad4(epb);
  if (!comment.empty()) option(epb, kOptComment, comment.substr(0, 65535));
  end_options(epb);
  return write_block(kEnhancedPacket, epb);
}

Status PcapngWriter::flush() {
  if (std::fflush(f_) != 0) return sys_error("cannot write " + path_, errno);
  return ok_status();
}

}  // namespace sipxdp
