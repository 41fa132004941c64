#include "slab.h"

#include <atomic>
#include <mutex>

namespace fleetmq::slab {
namespace {

// Process-wide: which buffer is attached. Word operations go through std::atomic<int32_t>
// over the shared memory, which interoperates with JS Atomics (src/README.md, "Measured").
std::mutex g_attach_mu;  // leaf lock, only for Attach/Detach
std::atomic<int32_t*> g_words{nullptr};
int g_attached = 0;       // guarded by g_attach_mu
int g_next_holder = 0;    // guarded by g_attach_mu: rotate so an index is not reused at once

std::atomic<int32_t>& W(int32_t* words, size_t i) {
  return *reinterpret_cast<std::atomic<int32_t>*>(words + i);
}

struct Class {
  uint32_t size, count, first, bitmap, data;
  size_t table;
};

Class ClassAt(int32_t* w, int c) {
  size_t t = kClassTableWord + c * kClassWords;
  return {static_cast<uint32_t>(w[t + kClsSize]), static_cast<uint32_t>(w[t + kClsCount]),
          static_cast<uint32_t>(w[t + kClsFirstSlot]), static_cast<uint32_t>(w[t + kClsBitmapWord]),
          static_cast<uint32_t>(w[t + kClsDataOffset]), t};
}

int ClassOfSlot(int32_t* w, uint32_t slot) {
  int n = w[kHdrClassCount];
  for (int c = 0; c < n; c++) {
    Class k = ClassAt(w, c);
    if (slot < k.first + k.count) return c;
  }
  return -1;
}

bool ValidHeader(int32_t* w, size_t bytes) {
  if (bytes < kSlotsWord * 4 || w[kHdrMagic] != kMagic || w[kHdrVersion] != kVersion) return false;
  int n = w[kHdrClassCount];
  if (n < 1 || n > kMaxClasses || static_cast<size_t>(w[kHdrTotalBytes]) != bytes) return false;
  uint64_t slots = 0;
  for (int c = 0; c < n; c++) {
    Class k = ClassAt(w, c);
    if (k.first != slots) return false;
    slots += k.count;
    if (static_cast<uint64_t>(k.data) + static_cast<uint64_t>(k.size) * k.count > bytes) return false;
    if ((k.bitmap + (k.count + 31) / 32) * 4ull > bytes) return false;
  }
  return slots == static_cast<uint64_t>(w[kHdrSlotCount]) && slots <= kHandleSlotMask + 1 &&
         (kSlotsWord + slots * kSlotWords) * 4 <= bytes;
}

uint64_t Registered(int32_t* w) {
  return static_cast<uint32_t>(W(w, kHdrHoldersLo).load()) |
         (static_cast<uint64_t>(static_cast<uint32_t>(W(w, kHdrHoldersHi).load())) << 32);
}

std::atomic<int32_t>& HolderWord(int32_t* w, uint32_t slot, int holder) {
  return W(w, kSlotsWord + slot * kSlotWords + (holder < 32 ? kSlotHoldersLo : kSlotHoldersHi));
}

void FreeSlot(int32_t* w, uint32_t slot) {
  Class k = ClassAt(w, ClassOfSlot(w, slot));
  uint32_t i = slot - k.first;
  W(w, k.bitmap + i / 32).fetch_and(~static_cast<int32_t>(1u << (i % 32)));
}

// Claims a zero bit in the class bitmap; returns the slot or -1 when the class is full.
int64_t ClaimSlot(int32_t* w, const Class& k) {
  uint32_t nwords = (k.count + 31) / 32;
  uint32_t hint = static_cast<uint32_t>(W(w, k.table + kClsHint).load(std::memory_order_relaxed));
  for (uint32_t n = 0; n < nwords; n++) {
    uint32_t wi = (hint + n) % nwords;
    uint32_t valid = wi + 1 < nwords || k.count % 32 == 0 ? 0xFFFFFFFFu : (1u << (k.count % 32)) - 1;
    std::atomic<int32_t>& word = W(w, k.bitmap + wi);
    int32_t v = word.load(std::memory_order_relaxed);
    while ((~static_cast<uint32_t>(v) & valid) != 0) {
      int b = __builtin_ctz(~static_cast<uint32_t>(v) & valid);
      if (word.compare_exchange_weak(v, v | static_cast<int32_t>(1u << b))) {
        W(w, k.table + kClsHint).store(static_cast<int32_t>(wi), std::memory_order_relaxed);
        return k.first + wi * 32 + b;
      }
    }
  }
  return -1;
}

bool ReleaseWith(int32_t* w, uint32_t slot, uint32_t gen, int holder) {
  std::atomic<int32_t>& state = W(w, kSlotsWord + slot * kSlotWords + kSlotState);
  uint32_t s = static_cast<uint32_t>(state.load());
  if (((s >> kStateGenShift) & kGenMask) != gen || (s & kStateRefsMask) == 0) return false;
  int32_t bit = static_cast<int32_t>(1u << (holder % 32));
  // The bit is the proof of holding: only the holder that clears it may drop a ref.
  if ((HolderWord(w, slot, holder).fetch_and(~bit) & bit) == 0) return false;
  if ((static_cast<uint32_t>(state.fetch_sub(1)) & kStateRefsMask) == 1) FreeSlot(w, slot);
  return true;
}

}  // namespace

int Attach(uint8_t* base, size_t bytes) {
  std::lock_guard<std::mutex> lock(g_attach_mu);
  int32_t* w = reinterpret_cast<int32_t*>(base);
  int32_t* cur = g_words.load();
  if (cur && cur != w) return kOtherSlabAttached;
  if (!cur && !ValidHeader(w, bytes)) return kBadHeader;
  uint64_t reg = Registered(w);
  for (int n = 0; n < kMaxHolders; n++) {
    int h = (g_next_holder + n) % kMaxHolders;
    if (reg & (1ull << h)) continue;
    W(w, h < 32 ? kHdrHoldersLo : kHdrHoldersHi).fetch_or(static_cast<int32_t>(1u << (h % 32)));
    g_next_holder = (h + 1) % kMaxHolders;
    g_words.store(w);
    g_attached++;
    return h;
  }
  return kNoFreeHolder;
}

void Detach(int holder) {
  std::lock_guard<std::mutex> lock(g_attach_mu);
  int32_t* w = g_words.load();
  if (!w || holder < 0 || holder >= kMaxHolders) return;
  // Unregister first, then sweep: an Alloc racing with us either sees the holder gone (and
  // releases for it) or published its bit before our sweep reads it.
  W(w, holder < 32 ? kHdrHoldersLo : kHdrHoldersHi).fetch_and(~static_cast<int32_t>(1u << (holder % 32)));
  std::atomic_thread_fence(std::memory_order_seq_cst);
  uint32_t slots = static_cast<uint32_t>(w[kHdrSlotCount]);
  int32_t bit = static_cast<int32_t>(1u << (holder % 32));
  for (uint32_t s = 0; s < slots; s++) {
    if ((HolderWord(w, s, holder).load() & bit) == 0) continue;
    uint32_t state = static_cast<uint32_t>(W(w, kSlotsWord + s * kSlotWords + kSlotState).load());
    ReleaseWith(w, s, (state >> kStateGenShift) & kGenMask, holder);
  }
  if (--g_attached == 0) {
    g_words.store(nullptr);
  }
}

uint32_t Alloc(uint32_t size, uint64_t holders, uint32_t* byte_offset) {
  int32_t* w = g_words.load(std::memory_order_acquire);
  if (!w || holders == 0 || (holders & ~Registered(w)) != 0) return 0;
  int n = w[kHdrClassCount];
  for (int c = 0; c < n; c++) {
    Class k = ClassAt(w, c);
    if (size > k.size) continue;
    int64_t slot = ClaimSlot(w, k);
    if (slot < 0) continue;  // class full: spill into the next larger class
    size_t base = kSlotsWord + slot * kSlotWords;
    uint32_t old = static_cast<uint32_t>(W(w, base + kSlotState).load());
    uint32_t gen = (((old >> kStateGenShift) & kGenMask) + 1) & kGenMask;
    if (gen == 0) gen = 1;
    W(w, base + kSlotHoldersLo).store(static_cast<int32_t>(static_cast<uint32_t>(holders)));
    W(w, base + kSlotHoldersHi).store(static_cast<int32_t>(static_cast<uint32_t>(holders >> 32)));
    W(w, base + kSlotLength).store(static_cast<int32_t>(size));
    uint32_t refs = static_cast<uint32_t>(__builtin_popcountll(holders));
    W(w, base + kSlotState).store(static_cast<int32_t>((gen << kStateGenShift) | refs));
    uint32_t handle = (gen << kHandleSlotBits) | static_cast<uint32_t>(slot);
    // A holder that detached meanwhile will never release: do it for it (see Detach).
    uint64_t gone = holders & ~Registered(w);
    for (int h = 0; gone; h++, gone >>= 1)
      if (gone & 1) ReleaseWith(w, static_cast<uint32_t>(slot), gen, h);
    uint32_t now = static_cast<uint32_t>(W(w, base + kSlotState).load());
    if (((now >> kStateGenShift) & kGenMask) != gen || (now & kStateRefsMask) == 0) return 0;
    *byte_offset = k.data + (static_cast<uint32_t>(slot) - k.first) * k.size;
    return handle;
  }
  return 0;
}

bool Release(uint32_t handle, int holder) {
  int32_t* w = g_words.load(std::memory_order_acquire);
  uint32_t slot = handle & kHandleSlotMask;
  if (!w || holder < 0 || holder >= kMaxHolders || slot >= static_cast<uint32_t>(w[kHdrSlotCount]))
    return false;
  return ReleaseWith(w, slot, handle >> kHandleSlotBits, holder);
}

bool AddHolder(uint32_t handle, int holder) {
  int32_t* w = g_words.load(std::memory_order_acquire);
  uint32_t slot = handle & kHandleSlotMask;
  if (!w || holder < 0 || holder >= kMaxHolders || slot >= static_cast<uint32_t>(w[kHdrSlotCount]) ||
      (Registered(w) & (1ull << holder)) == 0)
    return false;
  std::atomic<int32_t>& state = W(w, kSlotsWord + slot * kSlotWords + kSlotState);
  uint32_t s = static_cast<uint32_t>(state.load());
  if (((s >> kStateGenShift) & kGenMask) != (handle >> kHandleSlotBits) || (s & kStateRefsMask) == 0)
    return false;
  // Count first, so the refs never reach zero while the new bit is set (the caller holds one).
  state.fetch_add(1);
  int32_t bit = static_cast<int32_t>(1u << (holder % 32));
  if (HolderWord(w, slot, holder).fetch_or(bit) & bit) {
    state.fetch_sub(1);
    return false;
  }
  return true;
}

int ClassCount() {
  int32_t* w = g_words.load();
  return w ? w[kHdrClassCount] : 0;
}

uint32_t InUse(int cls) {
  int32_t* w = g_words.load();
  if (!w || cls < 0 || cls >= w[kHdrClassCount]) return 0;
  Class k = ClassAt(w, cls);
  uint32_t n = 0;
  for (uint32_t i = 0; i < (k.count + 31) / 32; i++)
    n += __builtin_popcount(static_cast<uint32_t>(W(w, k.bitmap + i).load()));
  return n;
}

int Holders() {
  int32_t* w = g_words.load();
  return w ? __builtin_popcountll(Registered(w)) : 0;
}

}  // namespace fleetmq::slab
