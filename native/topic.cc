#include "topic.h"

#include <cstring>

namespace fleetmq::topic {
namespace {

constexpr char kSharePrefix[] = "$share/";
constexpr size_t kSharePrefixLen = sizeof(kSharePrefix) - 1;

// Returns the length of the UTF-8 sequence at p, or 0 if ill-formed (overlong, surrogate,
// beyond U+10FFFF, truncated).
size_t Utf8SeqLen(const uint8_t* p, size_t left) {
  uint8_t c = p[0];
  if (c < 0x80) return 1;
  size_t len;
  uint32_t cp;
  if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
  else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
  else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
  else return 0;
  if (left < len) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3F);
  }
  static const uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

// One pass over the bytes: encoding, NUL, and wildcard placement per level.
int CheckLevels(const uint8_t* p, size_t n, bool is_filter) {
  size_t levels = 1;
  size_t level_start = 0;
  for (size_t i = 0; i < n;) {
    uint8_t c = p[i];
    if (c >= 0x80) {
      size_t len = Utf8SeqLen(p + i, n - i);
      if (len == 0) return kBadUtf8;
      i += len;
      continue;
    }
    if (c == 0) return kNul;
    if (c == '/') {
      if (++levels > kMaxLevels) return kTooManyLevels;
      level_start = i + 1;
    } else if (c == '+' || c == '#') {
      if (!is_filter) return kWildcardInName;
      bool alone_start = i == level_start;
      bool alone_end = i + 1 == n || p[i + 1] == '/';
      if (!alone_start || !alone_end) return kBadWildcard;
      if (c == '#' && i + 1 != n) return kBadWildcard;
    }
    i++;
  }
  return kOk;
}

}  // namespace

bool IsShared(const uint8_t* p, size_t n) {
  return n >= kSharePrefixLen && std::memcmp(p, kSharePrefix, kSharePrefixLen) == 0;
}

int ValidateFilter(const uint8_t* p, size_t n, Share* share) {
  if (n == 0) return kEmpty;
  if (n > kMaxBytes) return kTooLong;
  if (!IsShared(p, n)) return CheckLevels(p, n, true);
  size_t g = kSharePrefixLen;
  size_t slash = g;
  while (slash < n && p[slash] != '/') {
    if (p[slash] == '+' || p[slash] == '#') return kBadShare;
    slash++;
  }
  // Group must be non-empty and followed by a non-empty real filter.
  if (slash == g || slash >= n - 1) return kBadShare;
  // The group name itself must still be well-formed UTF-8 without NUL.
  int rc = CheckLevels(p + g, slash - g, false);
  if (rc != kOk) return rc == kWildcardInName ? kBadShare : rc;
  rc = CheckLevels(p + slash + 1, n - slash - 1, true);
  if (rc != kOk) return rc;
  if (share) {
    share->group_off = g;
    share->group_len = slash - g;
    share->filter_off = slash + 1;
  }
  return kOk;
}

bool FilterMatches(const uint8_t* f, size_t fn, const uint8_t* t, size_t tn) {
  // [MQTT-4.7.2-1]: a '$' topic never matches a filter starting with a wildcard level.
  if (tn > 0 && t[0] == '$' && fn > 0 && (f[0] == '+' || f[0] == '#')) return false;
  size_t fi = 0, ti = 0;
  for (;;) {
    size_t fe = fi, te = ti;
    while (fe < fn && f[fe] != '/') fe++;
    while (te < tn && t[te] != '/') te++;
    if (fe - fi == 1 && f[fi] == '#') return true;
    bool plus = fe - fi == 1 && f[fi] == '+';
    if (!plus && (fe - fi != te - ti || std::memcmp(f + fi, t + ti, fe - fi) != 0)) return false;
    bool f_last = fe == fn, t_last = te == tn;
    if (f_last) return t_last;
    if (t_last) return fn - (fe + 1) == 1 && f[fe + 1] == '#';  // "sport/#" matches "sport"
    fi = fe + 1;
    ti = te + 1;
  }
}

int Validate(const uint8_t* p, size_t n, bool is_filter) {
  if (is_filter) return ValidateFilter(p, n, nullptr);
  if (n == 0) return kEmpty;
  if (n > kMaxBytes) return kTooLong;
  return CheckLevels(p, n, false);
}

}  // namespace fleetmq::topic
