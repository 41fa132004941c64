// libFuzzer target: topic::Validate against an independent reference validator, plus the
// trie's own acceptance of whatever the validator accepts.
// Input: byte 0 bit 0 = isFilter, the rest is the topic.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "epoch.h"
#include "match.h"
#include "topic.h"
#include "trie.h"

namespace {

namespace topic = fleetmq::topic;

// Well-formed UTF-8 per Unicode Table 3-7, written as byte-range rows rather than by
// decoding code points as topic.cc does. Returns the sequence length or 0.
size_t RefSeq(const uint8_t* p, size_t left) {
  struct Row { uint8_t lo0, hi0, lo1, hi1; int len; };
  static const Row kRows[] = {
      {0x00, 0x7F, 0, 0, 1},       {0xC2, 0xDF, 0x80, 0xBF, 2}, {0xE0, 0xE0, 0xA0, 0xBF, 3},
      {0xE1, 0xEC, 0x80, 0xBF, 3}, {0xED, 0xED, 0x80, 0x9F, 3}, {0xEE, 0xEF, 0x80, 0xBF, 3},
      {0xF0, 0xF0, 0x90, 0xBF, 4}, {0xF1, 0xF3, 0x80, 0xBF, 4}, {0xF4, 0xF4, 0x80, 0x8F, 4},
  };
  for (const Row& r : kRows) {
    if (p[0] < r.lo0 || p[0] > r.hi0) continue;
    if (left < static_cast<size_t>(r.len)) return 0;
    if (r.len == 1) return 1;
    if (p[1] < r.lo1 || p[1] > r.hi1) return 0;
    for (int i = 2; i < r.len; i++)
      if (p[i] < 0x80 || p[i] > 0xBF) return 0;
    return r.len;
  }
  return 0;
}

// Level-by-level reference; errors are reported at the first offending byte, like topic.cc.
int RefLevels(const std::string& s, bool filter) {
  std::vector<std::string> levels(1);
  for (size_t i = 0; i < s.size();) {
    size_t n = RefSeq(reinterpret_cast<const uint8_t*>(s.data()) + i, s.size() - i);
    if (n == 0) return topic::kBadUtf8;
    char c = s[i];
    if (n == 1 && c == 0) return topic::kNul;
    if (n == 1 && c == '/') {
      levels.emplace_back();
      if (levels.size() > topic::kMaxLevels) return topic::kTooManyLevels;
    } else if (n == 1 && (c == '+' || c == '#')) {
      if (!filter) return topic::kWildcardInName;
      // Whole level, and '#' only as the last level: look ahead to the end of this level.
      bool starts = levels.back().empty();
      bool ends = i + 1 == s.size() || s[i + 1] == '/';
      if (!starts || !ends || (c == '#' && i + 1 != s.size())) return topic::kBadWildcard;
      levels.back() += c;
    } else {
      levels.back().append(s, i, n);
    }
    i += n;
  }
  return topic::kOk;
}

int RefValidate(const std::string& s, bool filter) {
  if (s.empty()) return topic::kEmpty;
  if (s.size() > topic::kMaxBytes) return topic::kTooLong;
  const std::string share = "$share/";
  if (!filter || s.compare(0, share.size(), share) != 0) return RefLevels(s, filter);
  std::string rest = s.substr(share.size());
  size_t slash = rest.find('/');
  std::string group = rest.substr(0, slash);
  if (group.find_first_of("+#") != std::string::npos) return topic::kBadShare;
  if (slash == std::string::npos || group.empty() || slash + 1 == rest.size()) return topic::kBadShare;
  int rc = RefLevels(group, false);
  if (rc != topic::kOk) return rc;
  return RefLevels(rest.substr(slash + 1), true);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  bool filter = data[0] & 1;
  const uint8_t* p = data + 1;
  size_t n = size - 1;
  int rc = topic::Validate(p, n, filter);
  int ref = RefValidate(std::string(reinterpret_cast<const char*>(p), n), filter);
  if (rc != ref) {
    std::fprintf(stderr, "validator %d vs reference %d (filter=%d)\n", rc, ref, filter);
    std::abort();
  }
  if (rc != topic::kOk) return 0;
  // Whatever the validator accepts, the trie must accept and be able to match.
  // The trie is never destroyed, so writers need no guard; without one pinned, every
  // Collect() frees all retired memory and LeakSanitizer sees a balanced run.
  static uint32_t id = fleetmq::trie::Create();
  fleetmq::trie::Trie* t = fleetmq::trie::Lookup(id);
  if (filter) {
    if (t->Subscribe(p, n, 1, 0, 0) != 1 || !t->Unsubscribe(p, n, 1)) std::abort();
  } else {
    uint32_t spans[2] = {0, static_cast<uint32_t>(n)};
    uint32_t out[16];
    fleetmq::epoch::Guard guard;
    if (fleetmq::match::MatchBatch(t, p, spans, 1, out, 16) != 1 || out[0] != 0) std::abort();
  }
  return 0;
}
