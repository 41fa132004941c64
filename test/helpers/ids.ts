// Names unique to one test, so tests sharing a broker never see each other's clients or traffic.

let idSeq = 0;
/** A client id unique within this test process (and readable in broker logs). */
export function uid(prefix = 'c'): string {
  idSeq += 1;
  return `${prefix}-${process.pid}-${idSeq}-${Math.random().toString(36).slice(2, 8)}`;
}

/** A topic unique to one test. */
export function utopic(prefix = 't'): string {
  return `${uid(prefix)}/x`.replace(/-/g, '_');
}
