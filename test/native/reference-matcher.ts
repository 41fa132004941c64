// A deliberately naive MQTT filter matcher: the oracle the native trie is checked against.
// It knows nothing about tries, caches or threads; it just walks two level arrays.

const SHARE = '$share/';

/** Strips `$share/{group}/`; returns the group ('' when not shared) and the real filter. */
export function splitShare(filter: string): { group: string; filter: string } {
  if (!filter.startsWith(SHARE)) return { group: '', filter };
  const rest = filter.slice(SHARE.length);
  const slash = rest.indexOf('/');
  return { group: rest.slice(0, slash), filter: rest.slice(slash + 1) };
}

export function referenceMatches(filterWithShare: string, topic: string): boolean {
  const { filter } = splitShare(filterWithShare);
  const f = filter.split('/');
  const t = topic.split('/');
  // [MQTT-4.7.2-1]: '$' topics never match a filter starting with a wildcard.
  if (topic.startsWith('$') && (f[0] === '+' || f[0] === '#')) return false;
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}
