// The trie (trie.h has the interface and native/README.md the concurrency scheme). One file past
// 300 lines on purpose: node layout, copy-on-write publication, epoch retirement and match share
// invariants that are easier to keep when read together.
#include "trie.h"

#include <cstring>
#include <memory>
#include <new>
#include <unordered_map>

#include "epoch.h"
#include "hash.h"
#include "topic.h"

namespace fleetmq::trie {

static_assert(sizeof(Entry) == 12, "Entry is copied to JS as three uint32 words");

// ---------------------------------------------------------------------------------------------
// Memory objects. Every object a reader can reach is either immutable after publication or
// only grows in a way readers can follow (SubList append, ChildTable slot fill).

namespace {

// Subscribers of one filter (or one shared group). Readers read `count` (acquire) then
// e[0, count); a writer appends in place past `count`, and copies on any other change.
struct SubList {
  std::atomic<uint32_t> count{0};
  uint32_t cap = 0;
  Entry e[1];

  static SubList* Make(uint32_t cap) {
    void* mem = ::operator new(sizeof(SubList) + (cap - 1) * sizeof(Entry));
    SubList* s = new (mem) SubList;
    s->cap = cap;
    return s;
  }
  static void Free(void* p) {
    static_cast<SubList*>(p)->~SubList();
    ::operator delete(p);
  }
};

// Writers collect what they replace and hand it to epoch::Retire only after the generation
// moved, so a cached Group* is never used once its removal is visible (see match.cc).
// Reserved before the first change (Reserve), so Add never allocates: a bad_alloc can then
// only happen while allocating a new object, before it is published.
struct RetireList {
  std::vector<std::pair<void*, epoch::Deleter>> items;
  void Add(void* p, epoch::Deleter d) { items.emplace_back(p, d); }
  // Worst case for a filter of `levels` levels: a pruned node and its child table per level,
  // a subscriber list, a group and its group list, the overwritten change record.
  void Reserve(const uint8_t* filter, size_t len) {
    size_t levels = 1;
    for (size_t i = 0; i < len; i++) levels += filter[i] == '/';
    items.reserve(2 * levels + 4);
  }
};

// Leaves with many subscribers get a writer-side position index so (un)subscribe stays O(1).
constexpr uint32_t kIndexThreshold = 16;

}  // namespace

// The writer-side handle of one subscriber array. `list` is what readers load.
struct SubSet {
  std::atomic<SubList*> list{nullptr};
  std::unordered_map<uint32_t, uint32_t>* index = nullptr;  // writer only

  ~SubSet() {
    delete index;
    if (SubList* l = list.load(std::memory_order_relaxed)) SubList::Free(l);
  }
  bool Empty() const { return list.load(std::memory_order_relaxed) == nullptr; }

  int Find(uint32_t sub) const {
    SubList* l = list.load(std::memory_order_relaxed);
    if (!l) return -1;
    if (index) {
      auto it = index->find(sub);
      return it == index->end() ? -1 : static_cast<int>(it->second);
    }
    uint32_t n = l->count.load(std::memory_order_relaxed);
    for (uint32_t i = 0; i < n; i++)
      if (l->e[i].subscriber == sub) return static_cast<int>(i);
    return -1;
  }

  // Returns true if added, false if an existing entry was replaced.
  bool Upsert(const Entry& en, RetireList* r) {
    SubList* l = list.load(std::memory_order_relaxed);
    int pos = Find(en.subscriber);
    uint32_t n = l ? l->count.load(std::memory_order_relaxed) : 0;
    if (pos >= 0) {
      // Copy so a reader never sees a half-written triple.
      SubList* nl = SubList::Make(l->cap);
      std::memcpy(nl->e, l->e, n * sizeof(Entry));
      nl->e[pos] = en;
      nl->count.store(n, std::memory_order_relaxed);
      list.store(nl, std::memory_order_release);
      r->Add(l, SubList::Free);
      return false;
    }
    if (l && n < l->cap) {
      l->e[n] = en;
      l->count.store(n + 1, std::memory_order_release);
    } else {
      SubList* nl = SubList::Make(l ? l->cap * 2 : 1);
      if (n) std::memcpy(nl->e, l->e, n * sizeof(Entry));
      nl->e[n] = en;
      nl->count.store(n + 1, std::memory_order_relaxed);
      list.store(nl, std::memory_order_release);
      if (l) r->Add(l, SubList::Free);
    }
    IndexAdd(en.subscriber, n);
    return true;
  }

  bool Remove(uint32_t sub, RetireList* r) {
    int pos = Find(sub);
    if (pos < 0) return false;
    SubList* l = list.load(std::memory_order_relaxed);
    uint32_t n = l->count.load(std::memory_order_relaxed);
    if (n == 1) {
      list.store(nullptr, std::memory_order_release);
      r->Add(l, SubList::Free);
      delete index;
      index = nullptr;
      return true;
    }
    // Shrink only well below capacity so alternating (un)subscribes do not thrash.
    // Allocate before anything changes: a bad_alloc here leaves the set as it was.
    uint32_t cap = (n - 1) * 4 <= l->cap ? l->cap / 2 : l->cap;
    SubList* nl = SubList::Make(cap);
    std::memcpy(nl->e, l->e, (n - 1) * sizeof(Entry));
    if (static_cast<uint32_t>(pos) != n - 1) nl->e[pos] = l->e[n - 1];
    nl->count.store(n - 1, std::memory_order_relaxed);
    list.store(nl, std::memory_order_release);
    r->Add(l, SubList::Free);
    if (index) {
      index->erase(sub);
      if (static_cast<uint32_t>(pos) != n - 1) (*index)[nl->e[pos].subscriber] = pos;
    }
    return true;
  }

 private:
  // The index only speeds up Find: if it cannot be grown (bad_alloc) it is dropped, Find scans
  // the list, and a later add rebuilds it. Never left missing an entry.
  void IndexAdd(uint32_t sub, uint32_t pos) {
    try {
      if (index) {
        (*index)[sub] = pos;
        return;
      }
      if (pos + 1 <= kIndexThreshold) return;
      index = new std::unordered_map<uint32_t, uint32_t>();
      SubList* l = list.load(std::memory_order_relaxed);
      for (uint32_t i = 0; i <= pos; i++) (*index)[l->e[i].subscriber] = i;
    } catch (const std::bad_alloc&) {
      delete index;
      index = nullptr;
    }
  }
};

// One '$share/{name}/{filter}' group, hung on the leaf of {filter}. Long-lived so that its
// round-robin cursor survives membership changes.
struct Group {
  std::string name;
  std::atomic<uint32_t> cursor{0};
  SubSet members;

  static void Free(void* p) { delete static_cast<Group*>(p); }
};

namespace {

// Immutable once published: replaced whole when a group is added or removed (rare).
struct GroupList {
  uint32_t count = 0;
  Group* g[1];

  static GroupList* Make(uint32_t n) {
    void* mem = ::operator new(sizeof(GroupList) + (n ? n - 1 : 0) * sizeof(Group*));
    GroupList* l = new (mem) GroupList;
    l->count = n;
    return l;
  }
  static void Free(void* p) {
    static_cast<GroupList*>(p)->~GroupList();
    ::operator delete(p);
  }
};

Node* const kTomb = reinterpret_cast<Node*>(uintptr_t{1});

// Open-addressing table of literal children. Readers probe with acquire loads; a writer
// fills a null or tombstone slot, or builds a bigger table and swaps the pointer. Load
// (including tombstones) stays <= 3/4, so a probe always reaches a null slot.
struct ChildTable {
  uint32_t mask = 0;
  std::atomic<Node*> slot[1];

  static ChildTable* Make(uint32_t cap) {
    void* mem = ::operator new(sizeof(ChildTable) + (cap - 1) * sizeof(std::atomic<Node*>));
    ChildTable* t = new (mem) ChildTable;
    t->mask = cap - 1;
    for (uint32_t i = 0; i < cap; i++) new (&t->slot[i]) std::atomic<Node*>(nullptr);
    return t;
  }
  static void Free(void* p) { ::operator delete(p); }
};

}  // namespace

struct Node {
  enum Kind : uint8_t { kRoot, kLiteral, kPlus, kHash };

  Node(const uint8_t* p, size_t n, Kind k, Node* parent)
      : token(reinterpret_cast<const char*>(p), n), hash(HashBytes(p, n)), kind(k),
        parent(parent) {}
  ~Node() {
    if (ChildTable* t = children.load(std::memory_order_relaxed)) ChildTable::Free(t);
    if (GroupList* gl = groups.load(std::memory_order_relaxed)) GroupList::Free(gl);
  }

  const std::string token;
  const uint64_t hash;
  const Kind kind;
  Node* const parent;  // writer only (pruning)

  std::atomic<ChildTable*> children{nullptr};
  std::atomic<Node*> plus{nullptr};
  std::atomic<Node*> hash_child{nullptr};
  SubSet subs;
  std::atomic<GroupList*> groups{nullptr};
  uint32_t used = 0;  // writer only: filled slots incl. tombstones
  uint32_t live = 0;  // writer only: literal children

  bool Unused() const {
    return live == 0 && !plus.load(std::memory_order_relaxed) &&
           !hash_child.load(std::memory_order_relaxed) && subs.Empty() &&
           !groups.load(std::memory_order_relaxed);
  }
  static void Free(void* p) { delete static_cast<Node*>(p); }
};

namespace {

// Frees a whole subtree; only for a trie no reader can reach any more.
void DeleteTree(Node* n) {
  if (ChildTable* t = n->children.load(std::memory_order_relaxed)) {
    for (uint32_t i = 0; i <= t->mask; i++) {
      Node* c = t->slot[i].load(std::memory_order_relaxed);
      if (c && c != kTomb) DeleteTree(c);
    }
  }
  if (Node* p = n->plus.load(std::memory_order_relaxed)) DeleteTree(p);
  if (Node* h = n->hash_child.load(std::memory_order_relaxed)) DeleteTree(h);
  if (GroupList* gl = n->groups.load(std::memory_order_relaxed)) {
    for (uint32_t i = 0; i < gl->count; i++) Group::Free(gl->g[i]);
  }
  delete n;
}

Node* FindChild(const Node* n, const uint8_t* k, size_t len, uint64_t h) {
  ChildTable* t = n->children.load(std::memory_order_acquire);
  if (!t) return nullptr;
  for (uint32_t i = static_cast<uint32_t>(h) & t->mask;; i = (i + 1) & t->mask) {
    Node* c = t->slot[i].load(std::memory_order_acquire);
    if (!c) return nullptr;
    if (c != kTomb && c->hash == h && c->token.size() == len &&
        std::memcmp(c->token.data(), k, len) == 0)
      return c;
  }
}

void PlaceChild(ChildTable* t, Node* c, bool* took_null) {
  for (uint32_t i = static_cast<uint32_t>(c->hash) & t->mask;; i = (i + 1) & t->mask) {
    Node* s = t->slot[i].load(std::memory_order_relaxed);
    if (!s || s == kTomb) {
      *took_null = !s;
      t->slot[i].store(c, std::memory_order_release);
      return;
    }
  }
}

void InsertChild(Node* parent, Node* child, RetireList* r) {
  ChildTable* t = parent->children.load(std::memory_order_relaxed);
  uint32_t cap = t ? t->mask + 1 : 0;
  if (!t || (parent->used + 1) * 4 > cap * 3) {
    uint32_t ncap = 4;
    while (ncap < (parent->live + 1) * 2) ncap *= 2;
    ChildTable* nt = ChildTable::Make(ncap);
    bool took_null;
    if (t) {
      for (uint32_t i = 0; i < cap; i++) {
        Node* c = t->slot[i].load(std::memory_order_relaxed);
        if (c && c != kTomb) PlaceChild(nt, c, &took_null);
      }
      r->Add(t, ChildTable::Free);
    }
    parent->used = parent->live;
    parent->children.store(nt, std::memory_order_release);
    t = nt;
  }
  bool took_null = false;
  PlaceChild(t, child, &took_null);
  if (took_null) parent->used++;
  parent->live++;
}

void RemoveChild(Node* parent, Node* child, RetireList* r) {
  ChildTable* t = parent->children.load(std::memory_order_relaxed);
  for (uint32_t i = static_cast<uint32_t>(child->hash) & t->mask;; i = (i + 1) & t->mask) {
    if (t->slot[i].load(std::memory_order_relaxed) == child) {
      t->slot[i].store(kTomb, std::memory_order_release);
      break;
    }
  }
  if (--parent->live == 0) {
    parent->children.store(nullptr, std::memory_order_release);
    parent->used = 0;
    r->Add(t, ChildTable::Free);
  }
}

// Calls fn(level_ptr, level_len) for each '/'-separated level, including empty ones.
template <typename Fn>
void ForEachLevel(const uint8_t* p, size_t n, Fn fn) {
  size_t start = 0;
  for (size_t i = 0; i <= n; i++) {
    if (i == n || p[i] == '/') {
      fn(p + start, i - start);
      start = i + 1;
    }
  }
}

Group* FindGroup(const Node* leaf, const uint8_t* name, size_t len) {
  GroupList* gl = leaf->groups.load(std::memory_order_relaxed);
  if (!gl) return nullptr;
  for (uint32_t i = 0; i < gl->count; i++) {
    const std::string& g = gl->g[i]->name;
    if (g.size() == len && std::memcmp(g.data(), name, len) == 0) return gl->g[i];
  }
  return nullptr;
}

void AddGroup(Node* leaf, Group* g, RetireList* r) {
  GroupList* old = leaf->groups.load(std::memory_order_relaxed);
  uint32_t n = old ? old->count : 0;
  GroupList* gl = GroupList::Make(n + 1);
  for (uint32_t i = 0; i < n; i++) gl->g[i] = old->g[i];
  gl->g[n] = g;
  leaf->groups.store(gl, std::memory_order_release);
  if (old) r->Add(old, GroupList::Free);
}

void RemoveGroup(Node* leaf, Group* g, RetireList* r) {
  GroupList* old = leaf->groups.load(std::memory_order_relaxed);
  GroupList* gl = nullptr;
  if (old->count > 1) {
    gl = GroupList::Make(old->count - 1);
    uint32_t j = 0;
    for (uint32_t i = 0; i < old->count; i++)
      if (old->g[i] != g) gl->g[j++] = old->g[i];
  }
  leaf->groups.store(gl, std::memory_order_release);
  r->Add(old, GroupList::Free);
  r->Add(g, Group::Free);
}

// --- reader side ---

struct Level {
  const uint8_t* p;
  uint32_t len;
  uint64_t hash;
};

void EmitSubs(const SubSet& s, MatchSink* sink) {
  SubList* l = s.list.load(std::memory_order_acquire);
  if (!l) return;
  uint32_t n = l->count.load(std::memory_order_acquire);
  const uint32_t* w = reinterpret_cast<const uint32_t*>(l->e);
  sink->words.insert(sink->words.end(), w, w + 3 * n);
}

void EmitNode(const Node* node, MatchSink* sink) {
  EmitSubs(node->subs, sink);
  if (GroupList* gl = node->groups.load(std::memory_order_acquire)) {
    sink->groups.insert(sink->groups.end(), gl->g, gl->g + gl->count);
  }
}

// `wild` is false only at the root of a '$' topic [MQTT-4.7.2-1].
void MatchFrom(const Node* node, const Level* lv, size_t i, size_t nl, bool wild,
               MatchSink* sink) {
  if (wild) {
    // '#' also matches the parent level itself ("sport/#" matches "sport") [MQTT-4.7.1-2].
    if (const Node* h = node->hash_child.load(std::memory_order_acquire)) EmitNode(h, sink);
  }
  if (i == nl) {
    EmitNode(node, sink);
    return;
  }
  if (wild) {
    if (const Node* p = node->plus.load(std::memory_order_acquire))
      MatchFrom(p, lv, i + 1, nl, true, sink);
  }
  if (const Node* c = FindChild(node, lv[i].p, lv[i].len, lv[i].hash))
    MatchFrom(c, lv, i + 1, nl, true, sink);
}

}  // namespace

bool PickShared(Group* g, uint32_t out[3]) {
  SubList* l = g->members.list.load(std::memory_order_acquire);
  if (!l) return false;
  uint32_t n = l->count.load(std::memory_order_acquire);
  if (n == 0) return false;
  const Entry& e = l->e[g->cursor.fetch_add(1, std::memory_order_relaxed) % n];
  out[0] = e.subscriber;
  out[1] = e.options | kSharedPickFlag;
  out[2] = e.subscription_id;
  return true;
}

// ---------------------------------------------------------------------------------------------

struct Trie::Retiring : RetireList {};

static const uint8_t kEmpty[1] = {0};
Trie::Trie(uint32_t id) : id_(id), root_(new Node(kEmpty, 0, Node::kRoot, nullptr)) {}

Trie::~Trie() {
  DeleteTree(root_);
  for (auto& c : changes_) delete c.load(std::memory_order_relaxed);
}

void Trie::Kill() {
  std::lock_guard<std::mutex> lock(write_mu_);
  dead_ = true;
}

Node* Trie::FindOrCreatePath(const uint8_t* p, size_t n, Retiring* r) {
  Node* node = root_;
  ForEachLevel(p, n, [&](const uint8_t* lp, size_t ll) {
    bool plus = ll == 1 && lp[0] == '+';
    bool hash = ll == 1 && lp[0] == '#';
    if (plus || hash) {
      std::atomic<Node*>& slot = plus ? node->plus : node->hash_child;
      Node* c = slot.load(std::memory_order_relaxed);
      if (!c) {
        c = new Node(lp, ll, plus ? Node::kPlus : Node::kHash, node);
        slot.store(c, std::memory_order_release);
      }
      node = c;
      return;
    }
    Node* c = FindChild(node, lp, ll, HashBytes(lp, ll));
    if (!c) {
      std::unique_ptr<Node> fresh(new Node(lp, ll, Node::kLiteral, node));
      InsertChild(node, fresh.get(), r);  // may throw before placing it
      c = fresh.release();
    }
    node = c;
  });
  return node;
}

Node* Trie::FindPath(const uint8_t* p, size_t n) const {
  Node* node = root_;
  ForEachLevel(p, n, [&](const uint8_t* lp, size_t ll) {
    if (!node) return;
    if (ll == 1 && lp[0] == '+') node = node->plus.load(std::memory_order_relaxed);
    else if (ll == 1 && lp[0] == '#') node = node->hash_child.load(std::memory_order_relaxed);
    else node = FindChild(node, lp, ll, HashBytes(lp, ll));
  });
  return node;
}

void Trie::Prune(Node* node, Retiring* r) {
  while (node != root_ && node->Unused()) {
    Node* parent = node->parent;
    switch (node->kind) {
      case Node::kPlus: parent->plus.store(nullptr, std::memory_order_release); break;
      case Node::kHash: parent->hash_child.store(nullptr, std::memory_order_release); break;
      default: RemoveChild(parent, node, r); break;
    }
    r->Add(node, Node::Free);
    node = parent;
  }
}

std::unique_ptr<Trie::Change> Trie::Prepare(Retiring* r, const uint8_t* filter, size_t len) {
  r->Reserve(filter, len);
  return std::unique_ptr<Change>(new Change{0, std::string(reinterpret_cast<const char*>(filter), len)});
}

void Trie::Publish(Retiring* r, std::unique_ptr<Change> change) noexcept {
  // Log the change before the generation makes it visible: a reader that sees the new
  // generation finds its record (or a newer one, and then knows the log no longer covers it).
  uint64_t next = generation_.load(std::memory_order_relaxed) + 1;
  Change* rec = change.release();
  rec->generation = next;
  Change* old = changes_[next % kChangeLog].exchange(rec, std::memory_order_acq_rel);
  if (old) r->Add(old, [](void* p) { delete static_cast<Change*>(p); });
  // Generation before retiring: a reader that still finds a cached entry for the old
  // generation is pinned in an epoch that keeps everything it references alive.
  generation_.fetch_add(1, std::memory_order_seq_cst);
  for (auto& it : r->items) epoch::Retire(it.first, it.second);
}

bool Trie::UnchangedFor(uint64_t from, uint64_t to, const uint8_t* topic, size_t len) const {
  // Beyond a few changes a fresh walk is cheaper than checking each one.
  constexpr uint64_t kMaxChecks = 16;
  if (to < from || to - from > kMaxChecks) return false;
  for (uint64_t g = from + 1; g <= to; g++) {
    const Change* c = changes_[g % kChangeLog].load(std::memory_order_acquire);
    if (!c || c->generation != g) return false;
    if (topic::FilterMatches(reinterpret_cast<const uint8_t*>(c->filter.data()), c->filter.size(),
                             topic, len))
      return false;
  }
  return true;
}

int Trie::Subscribe(const uint8_t* f, size_t n, uint32_t sub, uint8_t options, uint32_t sid) {
  topic::Share share;
  int rc = topic::ValidateFilter(f, n, &share);
  if (rc != topic::kOk) return -rc;
  Retiring r;
  const uint8_t* fp = f + share.filter_off;
  // Everything Publish needs is allocated before the first change (a bad_alloc here changes
  // nothing); after it, a bad_alloc still publishes what was changed (see the catch).
  std::unique_ptr<Change> change = Prepare(&r, fp, n - share.filter_off);
  bool added;
  {
    std::lock_guard<std::mutex> lock(write_mu_);
    if (dead_) return 0;
    try {
      Node* leaf = FindOrCreatePath(fp, n - share.filter_off, &r);
      bool was_empty = leaf->subs.Empty() && !leaf->groups.load(std::memory_order_relaxed);
      Entry en{sub, options, sid};
      if (share.filter_off == 0) {
        added = leaf->subs.Upsert(en, &r);
      } else {
        const uint8_t* gname = f + share.group_off;
        Group* g = FindGroup(leaf, gname, share.group_len);
        if (!g) {
          std::unique_ptr<Group> fresh(new Group());
          fresh->name.assign(reinterpret_cast<const char*>(gname), share.group_len);
          fresh->members.Upsert(en, &r);  // a reader must never see a memberless group
          AddGroup(leaf, fresh.get(), &r);
          g = fresh.release();
          stats_.shared_groups++;
          added = true;
        } else {
          added = g->members.Upsert(en, &r);
        }
      }
      if (added) stats_.subscriptions++;
      if (was_empty) stats_.filters++;
    } catch (...) {
      // Only new objects failed to allocate; what is already linked (empty path nodes, a grown
      // child table) is consistent. Move the generation anyway so no cached result outlives
      // it, and retire what was replaced.
      Publish(&r, std::move(change));
      throw;
    }
    Publish(&r, std::move(change));
  }
  epoch::Collect();
  return added ? 1 : 0;
}

bool Trie::Unsubscribe(const uint8_t* f, size_t n, uint32_t sub) {
  topic::Share share;
  if (topic::ValidateFilter(f, n, &share) != topic::kOk) return false;
  Retiring r;
  std::unique_ptr<Change> change = Prepare(&r, f + share.filter_off, n - share.filter_off);
  {
    std::lock_guard<std::mutex> lock(write_mu_);
    if (dead_) return false;
    Node* leaf = FindPath(f + share.filter_off, n - share.filter_off);
    if (!leaf) return false;
    try {
      if (share.filter_off == 0) {
        if (!leaf->subs.Remove(sub, &r)) return false;
        stats_.subscriptions--;
      } else {
        Group* g = FindGroup(leaf, f + share.group_off, share.group_len);
        if (!g || !g->members.Remove(sub, &r)) return false;
        stats_.subscriptions--;
        if (g->members.Empty()) {
          RemoveGroup(leaf, g, &r);
          stats_.shared_groups--;
        }
      }
      if (leaf->subs.Empty() && !leaf->groups.load(std::memory_order_relaxed)) {
        stats_.filters--;
        Prune(leaf, &r);
      }
    } catch (...) {
      // The member is gone; a memberless group may stay listed (picks skip it, a later
      // subscribe reuses it). Publish what changed, as in Subscribe.
      Publish(&r, std::move(change));
      throw;
    }
    Publish(&r, std::move(change));
  }
  epoch::Collect();
  return true;
}

void Trie::Match(const uint8_t* t, size_t n, MatchSink* sink) const {
  thread_local std::vector<Level> levels;
  levels.clear();
  ForEachLevel(t, n, [&](const uint8_t* lp, size_t ll) {
    levels.push_back({lp, static_cast<uint32_t>(ll), HashBytes(lp, ll)});
  });
  bool dollar = n > 0 && t[0] == '$';
  MatchFrom(root_, levels.data(), 0, levels.size(), !dollar, sink);
}

Stats Trie::GetStats() {
  std::lock_guard<std::mutex> lock(write_mu_);
  return stats_;
}

// --- registry ---------------------------------------------------------------------------------

namespace {

constexpr uint32_t kSlotBits = 12;
constexpr uint32_t kMaxTries = 1u << kSlotBits;

std::atomic<Trie*> g_tries[kMaxTries];
std::mutex g_registry_mu;               // taken before a trie's write_mu_, never after
uint32_t g_slot_generation[kMaxTries];  // guarded by g_registry_mu

void DeleteTrie(void* p) { delete static_cast<Trie*>(p); }

}  // namespace

uint32_t Create() {
  std::lock_guard<std::mutex> lock(g_registry_mu);
  for (uint32_t i = 0; i < kMaxTries; i++) {
    if (g_tries[i].load(std::memory_order_relaxed)) continue;
    // The id carries a per-slot generation so an id is never handed out twice.
    uint32_t gen = (++g_slot_generation[i]) & ((1u << (32 - kSlotBits)) - 1);
    if (gen == 0) gen = g_slot_generation[i] = 1;
    uint32_t id = (gen << kSlotBits) | i;
    g_tries[i].store(new Trie(id), std::memory_order_release);
    return id;
  }
  return 0;
}

Trie* Lookup(uint32_t id) {
  Trie* t = g_tries[id & (kMaxTries - 1)].load(std::memory_order_acquire);
  return t && t->id() == id ? t : nullptr;
}

bool Destroy(uint32_t id) {
  Trie* t;
  {
    std::lock_guard<std::mutex> lock(g_registry_mu);
    t = Lookup(id);
    if (!t) return false;
    g_tries[id & (kMaxTries - 1)].store(nullptr, std::memory_order_release);
    t->Kill();
  }
  epoch::Retire(t, DeleteTrie);
  epoch::Collect();
  return true;
}

}  // namespace fleetmq::trie
