// Concurrency stress for the trie, epoch reclamation and the match cache, without Node: reader
// threads match in batches while writer threads churn overlapping filters (and a shared group),
// and check that stable subscriptions are always reported and shared groups yield exactly one
// pick. Built under ASAN (a reclamation bug shows up as use-after-free) or TSAN by run.sh.
//   trie_stress SECONDS [READERS] [WRITERS]
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "epoch.h"
#include "match.h"
#include "trie.h"

namespace {

using namespace fleetmq;

constexpr uint32_t kStable = 32;
constexpr uint32_t kStableBase = 1000000;

std::atomic<bool> g_stop{false};
std::atomic<uint64_t> g_matches{0}, g_writes{0};

bool Sub(trie::Trie* t, const std::string& f, uint32_t s) {
  return t->Subscribe(reinterpret_cast<const uint8_t*>(f.data()), f.size(), s, 0, 0) >= 0;
}

void Reader(trie::Trie* t, int idx) {
  std::string buf;
  std::vector<uint32_t> spans;
  for (uint32_t i = 0; i < 64; i++) {
    std::string topic = "s/" + std::to_string(i % kStable) + "/x/" + std::to_string(i);
    spans.push_back(static_cast<uint32_t>(buf.size()));
    spans.push_back(static_cast<uint32_t>(topic.size()));
    buf += topic;
  }
  std::vector<uint32_t> out(1 << 16);
  t->set_cache_enabled(idx % 2 == 0);  // a trie-wide flag: readers race on it on purpose
  while (!g_stop.load(std::memory_order_relaxed)) {
    epoch::Guard guard;
    int64_t n = match::MatchBatch(t, reinterpret_cast<const uint8_t*>(buf.data()), spans.data(), 64,
                                  out.data(), out.size());
    if (n < 0) {
      std::fprintf(stderr, "output too small: %lld\n", static_cast<long long>(n));
      std::abort();
    }
    size_t p = 0;
    for (uint32_t i = 0; i < 64; i++) {
      uint32_t count = out[p++];
      bool stable = false;
      uint32_t picks = 0;
      for (uint32_t k = 0; k < count; k++, p += 3) {
        stable |= out[p] == kStableBase + i % kStable;
        picks += (out[p + 1] & trie::kSharedPickFlag) != 0;
      }
      // The group "$share/keep/s/#" always has member 7 (never removed), so exactly one pick
      // from it; the churned group adds at most one more.
      if (!stable || picks < 1 || picks > 2) {
        std::fprintf(stderr, "topic %u: stable=%d picks=%u\n", i, stable, picks);
        std::abort();
      }
    }
    g_matches.fetch_add(64, std::memory_order_relaxed);
  }
}

void Writer(trie::Trie* t, uint32_t seed) {
  const char* filters[] = {"s/+/x/#", "s/#", "+/+/x/+", "$share/c/s/+/x/#", "s/1/x", "s/2/x/+",
                           "t/a/b", "s/+/+/+"};
  uint32_t x = seed;
  while (!g_stop.load(std::memory_order_relaxed)) {
    x = x * 1664525u + 1013904223u;
    std::string f = filters[(x >> 8) % 8];
    if ((x >> 4) % 3 == 0) f += "/" + std::to_string(x % 500);  // grow and shrink child tables
    if (f.rfind("s/#/", 0) == 0) f = "s/#";                      // keep it valid
    uint32_t s = 2000000 + (x >> 16) % 64;
    Sub(t, f, s);
    t->Unsubscribe(reinterpret_cast<const uint8_t*>(f.data()), f.size(), s);
    g_writes.fetch_add(2, std::memory_order_relaxed);
  }
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = argc > 1 ? std::atof(argv[1]) : 5;
  int readers = argc > 2 ? std::atoi(argv[2]) : 3;
  int writers = argc > 3 ? std::atoi(argv[3]) : 2;
  uint32_t id = trie::Create();
  trie::Trie* t = trie::Lookup(id);
  for (uint32_t k = 0; k < kStable; k++) Sub(t, "s/" + std::to_string(k) + "/#", kStableBase + k);
  Sub(t, "$share/keep/s/#", 7);
  std::vector<std::thread> threads;
  for (int i = 0; i < readers; i++) threads.emplace_back(Reader, t, i);
  for (int i = 0; i < writers; i++) threads.emplace_back(Writer, t, 17u + i);
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  g_stop = true;
  for (auto& th : threads) th.join();
  trie::Stats st = t->GetStats();
  // Writers always unsubscribe what they subscribed: only the stable set remains.
  if (st.subscriptions != kStable + 1 || st.shared_groups != 1) {
    std::fprintf(stderr, "stats after churn: %llu subscriptions, %llu groups\n",
                 static_cast<unsigned long long>(st.subscriptions),
                 static_cast<unsigned long long>(st.shared_groups));
    return 1;
  }
  trie::Destroy(id);
  epoch::Collect();
  std::printf("trie_stress: %llu matches, %llu writes, %llu retired objects left\n",
              static_cast<unsigned long long>(g_matches.load()),
              static_cast<unsigned long long>(g_writes.load()),
              static_cast<unsigned long long>(epoch::Pending()));
  return epoch::Pending() == 0 ? 0 : 1;
}
