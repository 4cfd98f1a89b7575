// The registry of one namespace: which process owns the port under a key, and where the
// port's ring lives. One table per namespace, in "/dev/shm/bloccs.<ns>.registry", created by
// whoever needs it first.
//
//   register_port   atomic (writers are serialised); a key held by a live owner is refused,
//                   one left by a dead owner is taken over (its old segment is reported so
//                   that the caller removes it).
//   lookup          never blocks and never returns a half-written entry.
//   unregister      atomic; only the owner that registered (same slot, same generation).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "bloccs/result.hpp"
#include "registry/registry_layout.hpp"
#include "shm/process.hpp"
#include "shm/segment.hpp"

namespace bloccs::registry {

struct PortKey {
  std::string network_id;
  std::string node_id;
  std::string in_port;
  friend bool operator==(const PortKey&, const PortKey&) = default;
};

// Each part 1..31 characters of [A-Za-z0-9_.-]; a clear Errc::bad_name otherwise.
Status validate_key(const PortKey& key);
std::string to_string(const PortKey& key);  // "{network, node, port}"

struct PortEntry {
  PortKey key;
  shm::ProcessId owner;
  std::uint64_t generation = 0;
  std::uint32_t slot = 0;
  std::string segment;  // the ring's segment name, inside the same namespace
  std::uint64_t ring_offset = 0;
};

struct Registration {
  std::uint32_t slot = 0;
  std::uint64_t generation = 0;
  std::optional<PortEntry> taken_over;  // the dead owner's entry this one replaced
};

struct RegistryOptions {
  std::uint32_t slots = kDefaultSlots;  // used only by the process that creates the table
};

class Registry {
 public:
  // Opens the namespace's registry, creating it if it does not exist yet. Two processes that
  // race here end with one table.
  static Result<Registry> open(std::string_view ns, RegistryOptions options = {});

  Result<Registration> register_port(const PortKey& key, std::string_view segment,
                                     std::uint64_t ring_offset);
  Status unregister(std::uint32_t slot, std::uint64_t generation);
  // Errc::not_found if no entry holds `key` (whether its owner is alive is the caller's
  // question: see shm::is_alive).
  Result<PortEntry> lookup(const PortKey& key) const;
  std::uint32_t slot_count() const noexcept { return slot_count_; }

 private:
  Registry(shm::Segment segment, std::uint32_t slot_count)
      : segment_(std::move(segment)), slot_count_(slot_count) {}
  RegistryHeader* header() const noexcept {
    return reinterpret_cast<RegistryHeader*>(segment_.base() + sizeof(shm::SegmentHeader));
  }
  RegistrySlot& slot(std::uint32_t i) const noexcept {
    return reinterpret_cast<RegistrySlot*>(segment_.base() + kSlotsOffset)[i];
  }
  // A consistent copy of slot `i` if it is live (seqlock read), else nullopt.
  std::optional<PortEntry> read_slot(std::uint32_t i) const;

  shm::Segment segment_;
  std::uint32_t slot_count_;
};

}  // namespace bloccs::registry
