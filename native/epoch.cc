#include "epoch.h"

#include <atomic>
#include <mutex>
#include <new>
#include <vector>

namespace fleetmq::epoch {
namespace {

constexpr int kMaxSlots = 1024;

// One cache line per reader thread so pinning never contends with another reader.
struct alignas(64) Slot {
  std::atomic<uint64_t> pinned{0};  // 0 = not inside a Guard
  std::atomic<bool> owned{false};
};

Slot g_slots[kMaxSlots];
std::atomic<int> g_high{0};          // slots [0, g_high) have ever been owned
std::atomic<uint64_t> g_epoch{1};
// Threads beyond kMaxSlots share this counter; while any is inside, nothing is freed.
std::atomic<int> g_overflow_readers{0};

struct Retired {
  uint64_t epoch;
  void* p;
  Deleter del;
};
std::mutex g_retired_mu;  // leaf lock: never held while taking another lock
std::vector<Retired> g_retired;

// Released by the thread_local destructor when a worker's OS thread exits.
struct ThreadSlot {
  Slot* slot = nullptr;
  int depth = 0;
  bool overflow = false;
  ~ThreadSlot() {
    if (slot) slot->owned.store(false, std::memory_order_release);
  }
  void Acquire() {
    for (int i = 0; i < kMaxSlots; i++) {
      bool expected = false;
      if (!g_slots[i].owned.load(std::memory_order_relaxed) &&
          g_slots[i].owned.compare_exchange_strong(expected, true)) {
        slot = &g_slots[i];
        int high = g_high.load();
        while (high < i + 1 && !g_high.compare_exchange_weak(high, i + 1)) {
        }
        return;
      }
    }
    overflow = true;
  }
};

thread_local ThreadSlot t_slot;

}  // namespace

Guard::Guard() {
  ThreadSlot& ts = t_slot;
  if (ts.depth++ > 0) return;
  if (!ts.slot && !ts.overflow) ts.Acquire();
  if (ts.overflow) {
    g_overflow_readers.fetch_add(1);
  } else {
    ts.slot->pinned.store(g_epoch.load(), std::memory_order_seq_cst);
  }
  // Pairs with the fence in Collect(): either the writer sees our pin, or we see its unlink.
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

Guard::~Guard() {
  ThreadSlot& ts = t_slot;
  if (--ts.depth > 0) return;
  if (ts.overflow) {
    g_overflow_readers.fetch_sub(1, std::memory_order_release);
  } else {
    ts.slot->pinned.store(0, std::memory_order_release);
  }
}

// Never throws (writers call it after their change is visible): if the list cannot grow, the
// object is leaked, which is safe (a reader may still hold it) and only costs memory.
void Retire(void* p, Deleter del) noexcept {
  std::lock_guard<std::mutex> lock(g_retired_mu);
  try {
    g_retired.push_back({g_epoch.load(), p, del});
  } catch (const std::bad_alloc&) {
  }
}

// Never throws (called after a write succeeded): if the batch to free cannot be allocated, this
// pass frees nothing and a later one does.
void Collect() noexcept {
  std::vector<Retired> ready;
  {
    std::lock_guard<std::mutex> lock(g_retired_mu);
    if (g_retired.empty()) return;
    try {
      ready.reserve(g_retired.size());  // before the compaction below changes g_retired
    } catch (const std::bad_alloc&) {
      return;
    }
    g_epoch.fetch_add(1);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (g_overflow_readers.load() > 0) return;
    uint64_t min_pinned = UINT64_MAX;
    int high = g_high.load();
    for (int i = 0; i < high; i++) {
      uint64_t e = g_slots[i].pinned.load();
      if (e != 0 && e < min_pinned) min_pinned = e;
    }
    size_t keep = 0;
    for (Retired& r : g_retired) {
      if (r.epoch < min_pinned) ready.push_back(r);
      else g_retired[keep++] = r;
    }
    g_retired.resize(keep);
  }
  // Deleters run outside the lock: they may be slow (a whole trie) and must not nest locks.
  for (Retired& r : ready) r.del(r.p);
}

uint64_t Pending() {
  std::lock_guard<std::mutex> lock(g_retired_mu);
  return g_retired.size();
}

}  // namespace fleetmq::epoch
