// libFuzzer target: a sequence of subscribe / unsubscribe / batched match operations on one
// trie, checked after every step against a naive reference kept in the fuzzer.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "epoch.h"
#include "match.h"
#include "topic.h"
#include "trie.h"

namespace {

namespace trie = fleetmq::trie;

const char* const kWords[] = {"a", "b", "", "$SYS", "+", "#", "$share", "g", "sport", "\xc3\xa9"};
constexpr size_t kNames = 4;  // kWords[0..3] and the last ones are valid in topic names

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out(1);
  for (char c : s) {
    if (c == '/') out.emplace_back();
    else out.back() += c;
  }
  return out;
}

bool RefMatch(const std::string& filter, const std::string& topic) {
  std::vector<std::string> f = Split(filter), t = Split(topic);
  if (!topic.empty() && topic[0] == '$' && (f[0] == "+" || f[0] == "#")) return false;
  for (size_t i = 0; i < f.size(); i++) {
    if (f[i] == "#") return true;
    if (i >= t.size() || (f[i] != "+" && f[i] != t[i])) return false;
  }
  return f.size() == t.size();
}

struct Sub {
  std::string group;  // empty = not shared
  std::string filter;
  uint32_t subscriber;
  bool operator<(const Sub& o) const {
    return std::tie(group, filter, subscriber) < std::tie(o.group, o.filter, o.subscriber);
  }
};

std::string Join(FuzzedDataProvider& in, bool name) {
  size_t levels = in.ConsumeIntegralInRange<size_t>(1, 4);
  std::string s;
  for (size_t i = 0; i < levels; i++) {
    if (i) s += '/';
    size_t w = in.ConsumeIntegralInRange<size_t>(0, std::size(kWords) - 1);
    if (name && (w == 4 || w == 5)) w = 0;
    s += kWords[w];
  }
  return s;
}

Sub Parse(const std::string& f, uint32_t sub) {
  if (f.rfind("$share/", 0) != 0) return {"", f, sub};
  std::string rest = f.substr(7);
  size_t slash = rest.find('/');
  return {rest.substr(0, slash), rest.substr(slash + 1), sub};
}

void Fail(const char* what, const std::string& a, const std::string& b) {
  std::fprintf(stderr, "%s: '%s' '%s'\n", what, a.c_str(), b.c_str());
  std::abort();
}

void CheckMatch(trie::Trie* t, const std::map<Sub, uint32_t>& ref, const std::vector<std::string>& topics) {
  std::string buf;
  std::vector<uint32_t> spans;
  for (const std::string& s : topics) {
    spans.push_back(static_cast<uint32_t>(buf.size()));
    spans.push_back(static_cast<uint32_t>(s.size()));
    buf += s;
  }
  std::vector<uint32_t> out(4);
  int64_t n;
  fleetmq::epoch::Guard guard;
  while ((n = fleetmq::match::MatchBatch(t, reinterpret_cast<const uint8_t*>(buf.data()), spans.data(),
                                         static_cast<uint32_t>(topics.size()), out.data(), out.size())) < 0)
    out.resize(static_cast<size_t>(-n));
  size_t p = 0;
  for (const std::string& topic : topics) {
    std::multiset<std::pair<uint32_t, uint32_t>> plain, want_plain;
    std::map<std::pair<std::string, std::string>, std::set<uint32_t>> groups;
    for (const auto& [s, opts] : ref) {
      bool fast = fleetmq::topic::FilterMatches(reinterpret_cast<const uint8_t*>(s.filter.data()), s.filter.size(),
                                                reinterpret_cast<const uint8_t*>(topic.data()), topic.size());
      if (fast != RefMatch(s.filter, topic)) Fail("FilterMatches differs", s.filter, topic);
      if (!RefMatch(s.filter, topic)) continue;
      if (s.group.empty()) want_plain.insert({s.subscriber, opts});
      else groups[{s.group, s.filter}].insert(s.subscriber);
    }
    uint32_t count = out[p++];
    size_t picks = 0;
    for (uint32_t i = 0; i < count; i++, p += 3) {
      if (out[p + 1] & trie::kSharedPickFlag) {
        picks++;
        bool member = false;
        for (const auto& [k, members] : groups) member |= members.count(out[p]) > 0;
        if (!member) Fail("pick is no member", topic, std::to_string(out[p]));
      } else {
        plain.insert({out[p], out[p + 1]});
      }
    }
    if (plain != want_plain) Fail("plain subscribers differ", topic, std::to_string(plain.size()));
    if (picks != groups.size()) Fail("one pick per group", topic, std::to_string(picks));
  }
  if (p != static_cast<size_t>(n)) Fail("word count", "", "");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  uint32_t id = trie::Create();
  trie::Trie* t;
  {
    fleetmq::epoch::Guard guard;
    t = trie::Lookup(id);
  }
  std::map<Sub, uint32_t> ref;  // subscription -> options
  while (in.remaining_bytes() > 0) {
    int op = in.ConsumeIntegralInRange(0, 3);
    if (op == 0 || op == 1) {
      std::string f = Join(in, false);
      uint32_t sub = in.ConsumeIntegralInRange<uint32_t>(0, 5);
      const uint8_t* fp = reinterpret_cast<const uint8_t*>(f.data());
      bool valid = fleetmq::topic::Validate(fp, f.size(), true) == 0;
      Sub key = valid ? Parse(f, sub) : Sub{};
      if (op == 0) {
        uint8_t opts = in.ConsumeIntegral<uint8_t>() & 0x7F;
        int rc = t->Subscribe(fp, f.size(), sub, opts, 0);
        int want = !valid ? -fleetmq::topic::Validate(fp, f.size(), true) : ref.count(key) ? 0 : 1;
        if (rc != want) Fail("subscribe rc", f, std::to_string(rc));
        if (valid) ref[key] = opts;
      } else {
        bool ok = t->Unsubscribe(fp, f.size(), sub);
        if (ok != (valid && ref.erase(key) == 1)) Fail("unsubscribe", f, std::to_string(ok));
      }
    } else if (op == 2) {
      std::vector<std::string> topics(in.ConsumeIntegralInRange<size_t>(1, 3));
      for (std::string& s : topics) s = Join(in, true);
      CheckMatch(t, ref, topics);
    } else {
      t->set_cache_enabled(in.ConsumeBool());
    }
  }
  trie::Stats st = t->GetStats();
  if (st.subscriptions != ref.size()) Fail("stats", "", std::to_string(st.subscriptions));
  trie::Destroy(id);
  return 0;
}
