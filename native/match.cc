#include "match.h"

#include <cstring>
#include <memory>
#include <string>

#include "hash.h"

namespace fleetmq::match {
namespace {

// Per thread, so a hit costs no shared write at all. An entry is valid only for the trie id
// and generation it was computed at; ids are never reused and generations only move forward.
// Shared-group picks are not cached: the entry keeps Group pointers and picks on every hit.
struct CacheEntry {
  uint32_t trie_id = 0;
  uint64_t generation = 0;
  uint64_t hash = 0;
  std::string key;
  trie::MatchSink result;
};

thread_local std::unique_ptr<CacheEntry[]> t_cache;
thread_local trie::MatchSink t_scratch;

const trie::MatchSink& Resolve(trie::Trie* t, uint64_t generation, const uint8_t* topic,
                               size_t len) {
  if (!t->cache_enabled()) {
    t_scratch.Clear();
    t->Match(topic, len, &t_scratch);
    return t_scratch;
  }
  if (!t_cache) t_cache.reset(new CacheEntry[kCacheEntries]);
  uint64_t h = HashBytes(topic, len);
  CacheEntry& e = t_cache[h & (kCacheEntries - 1)];
  if (e.trie_id == t->id() && e.generation == generation && e.hash == h &&
      e.key.size() == len && std::memcmp(e.key.data(), topic, len) == 0)
    return e.result;
  e.result.Clear();
  t->Match(topic, len, &e.result);
  e.trie_id = t->id();
  e.generation = generation;
  e.hash = h;
  e.key.assign(reinterpret_cast<const char*>(topic), len);
  return e.result;
}

}  // namespace

int64_t MatchBatch(trie::Trie* t, const uint8_t* buf, const uint32_t* spans, uint32_t count,
                   uint32_t* out, size_t cap) {
  // Read once per batch: entries computed during this batch are tagged with it, so a change
  // that lands mid-batch invalidates them for every later batch.
  uint64_t generation = t->Generation();
  size_t w = 0;
  bool overflow = false;
  for (uint32_t i = 0; i < count; i++) {
    const trie::MatchSink& r = Resolve(t, generation, buf + spans[2 * i], spans[2 * i + 1]);
    size_t need = 1 + r.words.size() + 3 * r.groups.size();
    if (overflow || w + need > cap) {
      // Keep counting without picking, so a retry after growing does not skip members.
      overflow = true;
      w += need;
      continue;
    }
    size_t head = w++;
    if (!r.words.empty()) std::memcpy(out + w, r.words.data(), r.words.size() * 4);
    w += r.words.size();
    uint32_t n = static_cast<uint32_t>(r.words.size() / 3);
    for (trie::Group* g : r.groups) {
      if (trie::PickShared(g, out + w)) {
        w += 3;
        n++;
      }
    }
    out[head] = n;
  }
  return overflow ? -static_cast<int64_t>(w) : static_cast<int64_t>(w);
}

}  // namespace fleetmq::match
