// The subscription trie shared by every thread of the process (native/README.md).
//
// Readers (Match) never lock: they pin an epoch once per batch and follow atomic pointers.
// Writers (Subscribe/Unsubscribe) are serialised per trie by a mutex and publish changes
// with release stores: a literal-children hash table that readers probe lock-free, append-in-
// place subscriber arrays, copy-on-write for everything else. Replaced memory goes to
// epoch::Retire. See native/README.md for the ownership and ordering rules.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace fleetmq::trie {

constexpr uint32_t kSharedPickFlag = 0x80;  // set in options of a shared-group pick

struct Entry {
  uint32_t subscriber;
  uint32_t options;
  uint32_t subscription_id;
};

struct Node;
struct Group;

struct Stats {
  uint64_t subscriptions = 0;
  uint64_t filters = 0;
  uint64_t shared_groups = 0;
};

// What a match collects before it is copied to the caller: plain triples, and the shared
// groups from which one member is picked per call (picks must not be cached).
struct MatchSink {
  std::vector<uint32_t> words;
  std::vector<Group*> groups;
  void Clear() {
    words.clear();
    groups.clear();
  }
};

class Trie {
 public:
  explicit Trie(uint32_t id);
  ~Trie();
  uint32_t id() const { return id_; }

  // Filter is validated here too: returns 1 added, 0 replaced, or -topic::Error.
  int Subscribe(const uint8_t* filter, size_t len, uint32_t sub, uint8_t options, uint32_t sid);
  bool Unsubscribe(const uint8_t* filter, size_t len, uint32_t sub);

  // Caller holds an epoch::Guard for as long as it uses what the sink points to.
  void Match(const uint8_t* topic, size_t len, MatchSink* sink) const;

  uint64_t Generation() const { return generation_.load(std::memory_order_seq_cst); }
  // True if no change in generations (from, to] can affect the result for `topic`, i.e. a
  // result cached at `from` is still exact at `to`. False if unsure (log overwritten, too many
  // changes to check). Caller holds an epoch::Guard.
  bool UnchangedFor(uint64_t from, uint64_t to, const uint8_t* topic, size_t len) const;
  Stats GetStats();
  bool cache_enabled() const { return cache_enabled_.load(std::memory_order_relaxed); }
  void set_cache_enabled(bool on) { cache_enabled_.store(on, std::memory_order_relaxed); }
  // Marks the trie dead so that writers racing with destruction stop touching it.
  void Kill();

 private:
  struct Retiring;
  Node* FindOrCreatePath(const uint8_t* p, size_t n, Retiring* r);
  Node* FindPath(const uint8_t* p, size_t n) const;
  void Prune(Node* node, Retiring* r);
  struct Change;
  // Allocates the change record and reserves the retire list: may throw, before any change.
  std::unique_ptr<Change> Prepare(Retiring* r, const uint8_t* filter, size_t len);
  // Logs the change, moves the generation, retires what was replaced. Allocates nothing.
  void Publish(Retiring* r, std::unique_ptr<Change> change) noexcept;

  // The real filter (no '$share/') behind each of the last kChangeLog generations. Records are
  // immutable; a slot is overwritten by pointer swap and the old record retired.
  struct Change {
    uint64_t generation;
    std::string filter;
  };
  static constexpr size_t kChangeLog = 1024;
  std::atomic<Change*> changes_[kChangeLog] = {};

  const uint32_t id_;
  Node* root_;
  std::mutex write_mu_;  // serialises writers of this trie; readers never take it
  std::atomic<uint64_t> generation_{1};
  std::atomic<bool> cache_enabled_{true};
  bool dead_ = false;  // guarded by write_mu_
  Stats stats_;        // guarded by write_mu_
};

// Emits one round-robin member of a shared group as a triple (bit 0x80 set in options).
// Returns false if the group has no member (only between a writer's publish steps).
bool PickShared(Group* g, uint32_t out[3]);

// Process-wide registry: ids are never reused, so a stale id from JS finds nothing.
uint32_t Create();
bool Destroy(uint32_t id);
// Caller must hold an epoch::Guard while using the returned pointer.
Trie* Lookup(uint32_t id);

}  // namespace fleetmq::trie
