// Filter matching for one topic, the plain way: the reference the retained trie
// (src/coordinator/retained.ts) is tested against; the publish path uses the native trie. Rules: `+` one level, `#` this level and below, `$` topics never match a
// leading wildcard [MQTT-4.7.2-1].
export function topicMatches(filter: string, topic: string): boolean {
  if (topic.charCodeAt(0) === 36 /* $ */ && (filter.charCodeAt(0) === 43 || filter.charCodeAt(0) === 35)) return false;
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}
