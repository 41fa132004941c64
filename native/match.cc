#include "match.h"

#include <cstring>
#include <memory>

#include "hash.h"

namespace fleetmq::match {
namespace {

// Per thread, so a hit costs no shared write at all. An entry is valid only for the trie id
// and generation it was computed at; ids are never reused and generations only move forward.
// Shared-group picks are not cached: the entry keeps Group pointers and picks on every hit.
//
// Entries are flat (key and result inline) so a hit touches one contiguous block: measured
// with heap-held key/result vectors, a hit cost ~110 ns, mostly cache misses. Results or
// topics that do not fit are simply not cached; a long result list costs more to copy than
// the walk that found it.
constexpr size_t kKeyBytes = 48;
constexpr size_t kWords = 18;  // six triples
constexpr size_t kGroups = 2;

struct CacheEntry {
  uint64_t hash = 0;
  uint64_t generation = 0;
  uint32_t trie_id = 0;  // 0 = empty (ids are never 0)
  uint16_t key_len = 0;
  uint8_t nwords = 0;
  uint8_t ngroups = 0;
  uint8_t key[kKeyBytes];
  uint32_t words[kWords];
  trie::Group* groups[kGroups];
};

// 4-way set associative: direct-mapped, 4096 hot topics in 8192 entries collided ~22% of the
// time and every collision thrashed (measured: 110 ns per "hit" instead of ~20).
constexpr size_t kWays = 4;
constexpr size_t kSets = kCacheEntries / kWays;

thread_local std::unique_ptr<CacheEntry[]> t_cache;
thread_local trie::MatchSink t_scratch;
thread_local uint32_t t_victim = 0;

bool Hit(const CacheEntry& e, uint64_t h, uint32_t id, uint64_t generation, const uint8_t* topic,
         size_t len) {
  return e.hash == h && e.trie_id == id && e.generation == generation && e.key_len == len &&
         (len == 0 || std::memcmp(e.key, topic, len) == 0);
}

// Prefer an entry that can never hit again (other generation or trie), else rotate.
CacheEntry& Victim(CacheEntry* set, uint32_t id, uint64_t generation) {
  for (size_t w = 0; w < kWays; w++)
    if (set[w].trie_id != id || set[w].generation != generation) return set[w];
  return set[t_victim++ % kWays];
}

struct View {
  const uint32_t* words;
  size_t nwords;
  trie::Group* const* groups;
  size_t ngroups;
};

View FromSink(const trie::MatchSink& s) {
  return {s.words.data(), s.words.size(), s.groups.data(), s.groups.size()};
}

View Resolve(trie::Trie* t, CacheEntry* cache, uint64_t generation, const uint8_t* topic,
             size_t len) {
  if (cache) {
    uint64_t h = HashBytes(topic, len);
    CacheEntry* set = cache + (h & (kSets - 1)) * kWays;
    for (size_t w = 0; w < kWays; w++) {
      CacheEntry& e = set[w];
      if (Hit(e, h, t->id(), e.generation, topic, len) &&
          (e.generation == generation || t->UnchangedFor(e.generation, generation, topic, len))) {
        // Still exact: every change since touched filters that cannot match this topic.
        e.generation = generation;
        return {e.words, e.nwords, e.groups, e.ngroups};
      }
    }
    t_scratch.Clear();
    t->Match(topic, len, &t_scratch);
    if (len <= kKeyBytes && t_scratch.words.size() <= kWords && t_scratch.groups.size() <= kGroups) {
      CacheEntry& e = Victim(set, t->id(), generation);
      e.hash = h;
      e.generation = generation;
      e.trie_id = t->id();
      e.key_len = static_cast<uint16_t>(len);
      e.nwords = static_cast<uint8_t>(t_scratch.words.size());
      e.ngroups = static_cast<uint8_t>(t_scratch.groups.size());
      if (len) std::memcpy(e.key, topic, len);
      // Guarded: an empty vector's data() may be null, which memcpy must not be given.
      if (e.nwords) std::memcpy(e.words, t_scratch.words.data(), e.nwords * 4);
      if (e.ngroups) std::memcpy(e.groups, t_scratch.groups.data(), e.ngroups * sizeof(trie::Group*));
    }
    return FromSink(t_scratch);
  }
  t_scratch.Clear();
  t->Match(topic, len, &t_scratch);
  return FromSink(t_scratch);
}

}  // namespace

int64_t MatchBatch(trie::Trie* t, const uint8_t* buf, const uint32_t* spans, uint32_t count,
                   uint32_t* out, size_t cap) {
  // Read once per batch: entries computed during this batch are tagged with it, so a change
  // that lands mid-batch invalidates them for every later batch.
  uint64_t generation = t->Generation();
  CacheEntry* cache = nullptr;
  if (t->cache_enabled()) {
    if (!t_cache) t_cache.reset(new CacheEntry[kCacheEntries]);
    cache = t_cache.get();
  }
  size_t w = 0;
  bool overflow = false;
  for (uint32_t i = 0; i < count; i++) {
    View r = Resolve(t, cache, generation, buf + spans[2 * i], spans[2 * i + 1]);
    size_t need = 1 + r.nwords + 3 * r.ngroups;
    if (overflow || w + need > cap) {
      // Keep counting without picking, so a retry after growing does not skip members.
      overflow = true;
      w += need;
      continue;
    }
    size_t head = w++;
    if (r.nwords) std::memcpy(out + w, r.words, r.nwords * 4);
    w += r.nwords;
    uint32_t n = static_cast<uint32_t>(r.nwords / 3);
    for (size_t g = 0; g < r.ngroups; g++) {
      if (trie::PickShared(r.groups[g], out + w)) {
        w += 3;
        n++;
      }
    }
    out[head] = n;
  }
  return overflow ? -static_cast<int64_t>(w) : static_cast<int64_t>(w);
}

}  // namespace fleetmq::match
