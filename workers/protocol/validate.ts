// Topic checks done at decode time on raw bytes, so the hot path never builds a string to
// validate and nothing deeper (the trie) ever sees a bad topic (STYLE.md: Aedes' lesson).

export const MAX_TOPIC_LEVELS = 128;

/**
 * A PUBLISH topic name: non-empty (unless an alias supplies it), well-formed UTF-8 without
 * U+0000 [MQTT-1.5.4-1, MQTT-1.5.4-2], no wildcards [MQTT-3.3.2-2], bounded level count.
 */
export function validTopicName(buf: Uint8Array, start: number, end: number): boolean {
  if (end <= start) return false;
  let levels = 1;
  for (let i = start; i < end; i++) {
    const b = buf[i];
    if (b < 0x80) {
      if (b === 0 || b === 0x2b || b === 0x23) return false;
      if (b === 0x2f && ++levels > MAX_TOPIC_LEVELS) return false;
      continue;
    }
    const n = utf8SeqLen(buf, i, end);
    if (n === 0) return false;
    i += n - 1;
  }
  return true;
}

/** Length of the well-formed UTF-8 sequence at i (2-4), or 0 if it is not one (RFC 3629). */
export function utf8SeqLen(buf: Uint8Array, i: number, end: number): number {
  const b = buf[i];
  let n: number, min: number, cp: number;
  if (b >= 0xc2 && b <= 0xdf) { n = 2; min = 0x80; cp = b & 0x1f; }
  else if (b >= 0xe0 && b <= 0xef) { n = 3; min = 0x800; cp = b & 0x0f; }
  else if (b >= 0xf0 && b <= 0xf4) { n = 4; min = 0x10000; cp = b & 0x07; }
  else return 0;
  if (i + n > end) return 0;
  for (let k = 1; k < n; k++) {
    const c = buf[i + k];
    if ((c & 0xc0) !== 0x80) return 0;
    cp = (cp << 6) | (c & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

/** Well-formed UTF-8 without U+0000 [MQTT-1.5.4-1, MQTT-1.5.4-2]. */
export function goodString(buf: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const b = buf[i];
    if (b === 0) return false;
    if (b < 0x80) continue;
    const n = utf8SeqLen(buf, i, end);
    if (n === 0) return false;
    i += n - 1;
  }
  return true;
}

/** A SUBSCRIBE/UNSUBSCRIBE filter string (already decoded as UTF-8 by mqtt-packet). */
export function validTopicFilter(filter: string): boolean {
  if (filter.length === 0 || filter.length > 65535 || filter.includes('\u0000')) return false;
  const levels = filter.split('/');
  if (levels.length > MAX_TOPIC_LEVELS) return false;
  for (let i = 0; i < levels.length; i++) {
    const l = levels[i];
    if (l === '#') { if (i !== levels.length - 1) return false; continue; }
    if (l === '+') continue;
    if (l.includes('+') || l.includes('#')) return false;
  }
  return true;
}

/**
 * mqtt-packet decodes filters with replacement characters, hiding ill-formed UTF-8, so the
 * raw SUBSCRIBE / UNSUBSCRIBE payload is checked here [MQTT-1.5.4-1]. Returns false if any
 * filter's bytes are not well-formed UTF-8 or contain U+0000 (the packet is then malformed).
 */
export function rawFiltersWellFormed(buf: Uint8Array, start: number, end: number, withOptions: boolean): boolean {
  let pos = start;
  while (pos + 2 <= end) {
    const len = (buf[pos] << 8) | buf[pos + 1];
    pos += 2;
    if (pos + len > end) return false;
    for (let i = pos; i < pos + len; i++) {
      if (buf[i] === 0) return false; // U+0000: close the connection [MQTT-1.5.4-2]
      if (buf[i] < 0x80) continue;
      const n = utf8SeqLen(buf, i, pos + len);
      if (n === 0) return false;
      i += n - 1;
    }
    pos += len + (withOptions ? 1 : 0);
  }
  return true;
}

/** `$share/{group}/{filter}`: group non-empty without wildcards or '/', filter valid [MQTT-4.8.2-1, 4.8.2-2]. */
export function parseSharedFilter(filter: string): { group: string; filter: string } | null | 'invalid' {
  if (!filter.startsWith('$share/')) return null;
  const slash = filter.indexOf('/', 7);
  if (slash < 0) return 'invalid';
  const group = filter.slice(7, slash);
  const rest = filter.slice(slash + 1);
  if (group.length === 0 || group.includes('+') || group.includes('#')) return 'invalid';
  if (!validTopicFilter(rest)) return 'invalid';
  return { group, filter: rest };
}

/**
 * mqtt-packet turns a repeated property into an array; only User Property may repeat in
 * CONNECT, SUBSCRIBE, UNSUBSCRIBE and DISCONNECT [MQTT-2.2.2-2 / §2.2.2.2].
 */
export function hasRepeatedProperty(props: object | undefined): boolean {
  if (!props) return false;
  for (const [k, v] of Object.entries(props)) if (k !== 'userProperties' && Array.isArray(v)) return true;
  return false;
}
