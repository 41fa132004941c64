// Payload slab over one SharedArrayBuffer (native/README.md, "Slab"). The layout is defined in
// src/slab-layout.ts (ASCII diagram there) and mirrored here; test/native/slab.test.ts checks
// that both agree. No Node dependency, so the fuzzers and sanitizer builds can drive it.
#pragma once
#include <cstddef>
#include <cstdint>

namespace fleetmq::slab {

// --- mirror of src/slab-layout.ts ---
constexpr int32_t kMagic = 0x46514d53;
constexpr int32_t kVersion = 1;
constexpr int kHdrMagic = 0, kHdrVersion = 1, kHdrClassCount = 2, kHdrSlotCount = 3,
              kHdrHoldersLo = 4, kHdrHoldersHi = 5, kHdrTotalBytes = 6, kHeaderWords = 16;
constexpr int kMaxClasses = 8, kClassTableWord = kHeaderWords, kClassWords = 8;
constexpr int kClsSize = 0, kClsCount = 1, kClsFirstSlot = 2, kClsBitmapWord = 3,
              kClsDataOffset = 4, kClsHint = 5;
constexpr int kSlotsWord = kClassTableWord + kMaxClasses * kClassWords;
constexpr int kSlotWords = 4;
constexpr int kSlotState = 0, kSlotHoldersLo = 1, kSlotHoldersHi = 2, kSlotLength = 3;
constexpr uint32_t kStateRefsMask = 0xFFFF;
constexpr int kStateGenShift = 16;
constexpr uint32_t kGenMask = 0xFFF;
constexpr int kHandleSlotBits = 20;
constexpr uint32_t kHandleSlotMask = (1u << kHandleSlotBits) - 1;
constexpr int kMaxHolders = 64;

enum AttachError : int { kBadHeader = -1, kOtherSlabAttached = -2, kNoFreeHolder = -3 };

// Attaches the process to the slab at `base` (the same memory in every thread) and registers
// a new holder. Returns the holder index (0..63) or an AttachError.
int Attach(uint8_t* base, size_t bytes);
// Releases everything `holder` still holds and unregisters it; the last detach forgets the
// slab so a later Attach may use another buffer. Safe from an env cleanup hook.
void Detach(int holder);

// Allocates `size` bytes held by every holder in `holders` (bit per holder, all registered).
// Returns the handle (0 = no slot / bad request) and the payload's byte offset in the buffer.
uint32_t Alloc(uint32_t size, uint64_t holders, uint32_t* byte_offset);
// Drops `holder`'s reference. False if the handle is stale or not held by `holder`.
bool Release(uint32_t handle, int holder);
// A current holder makes `holder` hold it too (refs + 1). False if stale or already held.
bool AddHolder(uint32_t handle, int holder);

int ClassCount();
uint32_t InUse(int cls);
int Holders();

}  // namespace fleetmq::slab
