// Epoch-based reclamation shared by every trie in the process (see native/README.md).
// Readers pin the current epoch for the length of one batch call (no lock, no shared write
// except their own cache-line slot); writers unlink, then Retire(); memory is freed once no
// reader pinned at or before the retire epoch is still inside a Guard.
#pragma once
#include <cstdint>

namespace fleetmq::epoch {

class Guard {
 public:
  Guard();
  ~Guard();
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;
};

using Deleter = void (*)(void*);

// Call after the object is unreachable for new readers. Thread-safe.
void Retire(void* p, Deleter del) noexcept;
// Frees what no reader can still see. Called by writers after each operation.
void Collect() noexcept;
// Retired objects not yet freed (tests use it to prove memory is reclaimed).
uint64_t Pending();

}  // namespace fleetmq::epoch
