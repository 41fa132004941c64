// MQTT topic name / filter validation on raw UTF-8 bytes (MQTT 3.1.1 §4.7, 5.0 §4.7–4.8).
// Pure functions with no Node dependency, so the fuzzers and the trie share them.
#pragma once
#include <cstddef>
#include <cstdint>

namespace fleetmq::topic {

// Mirrored in src/trie.ts (TopicError); test/native/validator.test.ts checks both agree.
enum Error : int {
  kOk = 0,
  kEmpty = 1,           // [MQTT-4.7.3-1]
  kTooLong = 2,         // more than kMaxBytes UTF-8 bytes
  kNul = 3,             // U+0000 [MQTT-1.5.3-2]
  kWildcardInName = 4,  // [MQTT-4.7.1-1] (wildcards only in filters)
  kBadWildcard = 5,     // '#' not last/whole level, '+' not whole level [MQTT-4.7.1-2/3]
  kTooManyLevels = 6,   // more than kMaxLevels levels
  kBadShare = 7,        // '$share/{group}/{filter}' malformed [MQTT-4.8.2-1/2]
  kBadUtf8 = 8,         // ill-formed UTF-8 or a surrogate code point [MQTT-1.5.3-1]
};

constexpr size_t kMaxBytes = 65535;
// A filter deeper than this is refused so that trie recursion depth stays bounded.
constexpr size_t kMaxLevels = 128;

// Where the real filter starts inside a '$share/{group}/{filter}' string (0 = not shared).
struct Share {
  size_t group_off = 0, group_len = 0;
  size_t filter_off = 0;  // offset of the real filter; 0 when not a shared subscription
};

int Validate(const uint8_t* p, size_t n, bool is_filter);
// Validate and, for a filter, report the '$share' split.
int ValidateFilter(const uint8_t* p, size_t n, Share* share);
bool IsShared(const uint8_t* p, size_t n);

// Does a valid filter (without '$share/') match a topic name? A direct byte walk, used to
// revalidate cached match results after a change to some other filter.
bool FilterMatches(const uint8_t* f, size_t fn, const uint8_t* t, size_t tn);

}  // namespace fleetmq::topic
