// The batched match behind trieMatch: a per-thread result cache in front of Trie::Match.
#pragma once
#include <cstddef>
#include <cstdint>

#include "trie.h"

namespace fleetmq::match {

// Matches `count` topics given as (offset, length) pairs into `buf`. Writes, per topic,
// n then n triples (subscriber, options, subscription id) into out[0, cap). Returns words
// written, or -(words needed) if cap is too small. The caller holds an epoch::Guard and has
// bounds-checked the spans.
int64_t MatchBatch(trie::Trie* t, const uint8_t* buf, const uint32_t* spans, uint32_t count,
                   uint32_t* out, size_t cap);

// Entries in each thread's direct-mapped cache (power of two).
constexpr size_t kCacheEntries = 8192;

}  // namespace fleetmq::match
