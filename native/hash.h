// One byte-string hash shared by the trie's child tables and the per-thread match cache.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace fleetmq {

// Word-at-a-time multiply/xorshift: topic levels are short, so speed beats quality here;
// distribution only has to be good enough for open addressing with linear probing.
inline uint64_t HashBytes(const uint8_t* p, size_t n) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    h = (h ^ v) * 0xBF58476D1CE4E5B9ull;
    h ^= h >> 31;
    p += 8;
    n -= 8;
  }
  uint64_t v = 0;
  if (n) std::memcpy(&v, p, n);  // p may be null for the root's empty token
  h = (h ^ v) * 0x94D049BB133111EBull;
  return h ^ (h >> 29);
}

}  // namespace fleetmq
