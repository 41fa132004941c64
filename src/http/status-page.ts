// GET / (a small status page, no framework: one HTML file with its script inline) and GET
// /status.json (what the page shows, refreshed every second). Both unauthenticated, like
// /metrics: the HTTP listener is on loopback by default, and neither shows a client id, a
// username or an address — only totals, per-worker load and the cluster's member ids. The page
// works out message rates from two successive readings.
import * as K from '../shared/counters';
import { readHeartbeat, coordinatorSlot, monotonicMs } from '../shared/heartbeats';

export interface StatusSources {
  readonly version: string;
  readonly counters: SharedArrayBuffer;
  readonly workers: number;
  readonly heartbeats: SharedArrayBuffer;
  readonly startedAt: number;
  restarts(): number;
  cluster(): { incarnation: string; members: string[]; fenced: boolean } | null;
  readonly nodeId: string | null;
  /** Each member's figures as last asked (MemberFigures), null on a single node. */
  memberFigures?(): MemberRow[] | null;
}

/** One cluster member's line on the page: null figures when it did not answer the last time. */
export interface MemberRow { node: string; clients: number | null; received: number | null; sent: number | null; at: number | null }

/**
 * The members' figures for the status page, asked of the whole cluster (the admin service) at
 * most once per EVERY_MS and only while the page is polled: /status.json answers with the last
 * figures at once and starts the next asking in the background, so a page left open costs one
 * small call per member every two seconds and a closed one nothing.
 */
export class MemberFigures {
  static readonly EVERY_MS = 2000;
  private rows: MemberRow[] = [];
  private askedAt = -Infinity;
  private asking = false;

  constructor(private readonly ask: () => Promise<{ members: string[]; stats: Record<string, Record<string, unknown>> }>) {}

  current(members: string[]): MemberRow[] {
    const now = Date.now();
    if (!this.asking && now - this.askedAt >= MemberFigures.EVERY_MS) {
      this.asking = true;
      this.askedAt = now;
      this.ask().then((r) => {
        const at = Date.now();
        const num = (x: unknown) => (typeof x === 'number' ? x : null);
        this.rows = r.members.map((node) => {
          const s = r.stats[node];
          return s ? { node, clients: num(s['clients/connected']), received: num(s['messages/received']), sent: num(s['messages/sent']), at } : { node, clients: null, received: null, sent: null, at: null };
        });
      }, () => undefined).finally(() => { this.asking = false; });
    }
    // The view may have changed since: every member now, with what is known of it.
    return members.map((node) => this.rows.find((r) => r.node === node) ?? { node, clients: null, received: null, sent: null, at: null });
  }
}

export function statusJson(src: StatusSources): object {
  const all = new Float64Array(src.counters);
  const n = src.workers;
  const sum = (c: number) => K.sumCounter(all, n, c);
  const now = monotonicMs();
  const workers = Array.from({ length: n }, (_, w) => {
    const b = readHeartbeat(src.heartbeats, w, now);
    const row = w * K.COUNTERS_PER_WORKER;
    return {
      worker: w,
      connections: all[row + K.C_CONNECTIONS_OPEN],
      clients: all[row + K.C_CLIENTS_CONNECTED],
      messagesReceived: all[row + K.C_MSGS_RECEIVED],
      messagesSent: all[row + K.C_MSGS_SENT],
      utilization: b.ageMs === null ? null : b.utilization,
      eventLoopDelayP99Ms: b.ageMs === null ? null : b.delayP99Ms,
      heartbeatAgeMs: b.ageMs,
    };
  });
  const coord = readHeartbeat(src.heartbeats, coordinatorSlot(n), now);
  const cluster = src.cluster();
  return {
    version: src.version,
    at: Date.now(),
    uptimeSeconds: Math.round((Date.now() - src.startedAt) / 1000),
    connections: sum(K.C_CONNECTIONS_OPEN),
    clients: sum(K.C_CLIENTS_CONNECTED),
    sessions: sum(K.C_SESSIONS),
    subscriptions: sum(K.C_SUBSCRIPTIONS),
    messages: { received: sum(K.C_MSGS_RECEIVED), sent: sum(K.C_MSGS_SENT) },
    bytes: { received: sum(K.C_BYTES_RECEIVED), sent: sum(K.C_BYTES_SENT) },
    dropped: {
      slowConsumer: sum(K.C_DROPPED_SLOW_QOS0), queueFull: sum(K.C_DROPPED_QUEUE_FULL), expired: sum(K.C_DROPPED_EXPIRED),
      tooLarge: sum(K.C_DROPPED_TOO_LARGE), notAuthorised: sum(K.C_DROPPED_NOT_AUTHORISED),
    },
    refused: { auth: sum(K.C_AUTH_REFUSED), busy: sum(K.C_AUTH_BUSY), banned: sum(K.C_BANNED_REFUSED), fenced: sum(K.C_CLUSTER_REFUSED) },
    workerRestarts: src.restarts(),
    workers,
    coordinator: { utilization: coord.ageMs === null ? null : coord.utilization, heartbeatAgeMs: coord.ageMs },
    cluster: cluster ? { node: src.nodeId, incarnation: cluster.incarnation, members: cluster.members, fenced: cluster.fenced, nodes: src.memberFigures?.() ?? [] } : null,
  };
}

export const STATUS_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>fleetmq status</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
  h1 { font-size: 1.3em; margin: 0 0 .2em; }
  .muted { color: #777; }
  .cards { display: flex; flex-wrap: wrap; gap: .8em; margin: 1em 0; }
  .card { border: 1px solid #ddd; border-radius: 6px; padding: .6em .9em; min-width: 9em; }
  .card b { display: block; font-size: 1.6em; font-variant-numeric: tabular-nums; }
  table { border-collapse: collapse; margin: .5em 0 1.2em; }
  th, td { border-bottom: 1px solid #eee; padding: .25em .8em; text-align: right; font-variant-numeric: tabular-nums; }
  th:first-child, td:first-child { text-align: left; }
  .bar { display: inline-block; height: .7em; background: #4a8; vertical-align: middle; }
  #error { color: #b00; }
</style>
</head>
<body>
<h1>fleetmq <span id="version" class="muted"></span></h1>
<div class="muted">up <span id="uptime">-</span>, refreshed every second · <span id="error"></span></div>
<div class="cards">
  <div class="card">connections<b id="connections">-</b></div>
  <div class="card">MQTT clients<b id="clients">-</b></div>
  <div class="card">sessions<b id="sessions">-</b></div>
  <div class="card">subscriptions<b id="subscriptions">-</b></div>
  <div class="card">messages in /s<b id="rate-in">-</b></div>
  <div class="card">messages out /s<b id="rate-out">-</b></div>
  <div class="card">dropped /s<b id="rate-dropped">-</b></div>
</div>
<h2>Drops and refusals (total)</h2>
<table id="drops"><tbody></tbody></table>
<h2>Workers</h2>
<table id="workers"><thead><tr><th>worker</th><th>connections</th><th>clients</th><th>msg in /s</th><th>msg out /s</th><th>event loop busy</th><th>delay p99 ms</th></tr></thead><tbody></tbody></table>
<h2>Cluster</h2>
<div id="cluster">-</div>
<table id="members" hidden><thead><tr><th>member</th><th>MQTT clients</th><th>msg in /s</th><th>msg out /s</th></tr></thead><tbody></tbody></table>
<script>
"use strict";
let last = null;
const memberSeen = {};
const $ = (id) => document.getElementById(id);
const fmt = (n) => (n === null || n === undefined) ? "-" : (Math.round(n * 10) / 10).toLocaleString("en");
const dropSum = (s) => Object.values(s.dropped).reduce((a, b) => a + b, 0);
function rate(now, before, get) {
  if (!before) return null;
  const dt = (now.at - before.at) / 1000;
  return dt > 0 ? Math.max(0, (get(now) - get(before)) / dt) : null;
}
function rows(tbody, list) {
  tbody.replaceChildren(...list.map((cells) => {
    const tr = document.createElement("tr");
    for (const c of cells) {
      const td = document.createElement("td");
      if (c instanceof Node) td.append(c); else td.textContent = c;
      tr.append(td);
    }
    return tr;
  }));
}
function render(s) {
  $("version").textContent = s.version;
  $("uptime").textContent = s.uptimeSeconds + " s";
  $("connections").textContent = fmt(s.connections);
  $("clients").textContent = fmt(s.clients);
  $("sessions").textContent = fmt(s.sessions);
  $("subscriptions").textContent = fmt(s.subscriptions);
  $("rate-in").textContent = fmt(rate(s, last, (x) => x.messages.received));
  $("rate-out").textContent = fmt(rate(s, last, (x) => x.messages.sent));
  $("rate-dropped").textContent = fmt(rate(s, last, dropSum));
  const drops = Object.entries(s.dropped).map(([k, v]) => ["dropped: " + k, fmt(v)])
    .concat(Object.entries(s.refused).map(([k, v]) => ["refused: " + k, fmt(v)]), [["worker restarts", fmt(s.workerRestarts)]]);
  rows($("drops").tBodies[0], drops);
  rows($("workers").tBodies[0], s.workers.map((w, i) => {
    const before = last && last.workers[i];
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = Math.round((w.utilization || 0) * 100) + "px";
    const busy = document.createElement("span");
    busy.append(bar, " " + (w.utilization === null ? "-" : Math.round(w.utilization * 100) + "%"));
    return [String(w.worker), fmt(w.connections), fmt(w.clients),
      fmt(before ? rate({ at: s.at, v: w.messagesReceived }, { at: last.at, v: before.messagesReceived }, (x) => x.v) : null),
      fmt(before ? rate({ at: s.at, v: w.messagesSent }, { at: last.at, v: before.messagesSent }, (x) => x.v) : null),
      busy, fmt(w.eventLoopDelayP99Ms)];
  }));
  $("cluster").textContent = s.cluster
    ? "node " + s.cluster.node + (s.cluster.fenced ? " (FENCED)" : "") + ", members: " + s.cluster.members.join(", ")
    : "single node (no --etcd)";
  const members = $("members");
  members.hidden = !s.cluster;
  if (s.cluster) {
    rows(members.tBodies[0], s.cluster.nodes.map((m) => {
      // Rates from two successive answers of that member (they come every 2 s, not every refresh).
      let seen = memberSeen[m.node];
      if (m.at !== null && (!seen || seen.at !== m.at)) {
        const rate = (k) => (seen && seen[k] !== null && m[k] !== null && m.at > seen.at) ? Math.max(0, (m[k] - seen[k]) / ((m.at - seen.at) / 1000)) : null;
        seen = memberSeen[m.node] = { at: m.at, received: m.received, sent: m.sent, inRate: rate("received"), outRate: rate("sent") };
      }
      return [m.node + (m.node === s.cluster.node ? " (this node)" : ""), m.at === null ? "no answer" : fmt(m.clients),
        fmt(seen ? seen.inRate : null), fmt(seen ? seen.outRate : null)];
    }));
  }
  last = s;
}
async function refresh() {
  try {
    const r = await fetch("/status.json", { cache: "no-store" });
    if (!r.ok) throw new Error("/status.json: HTTP " + r.status);
    render(await r.json());
    $("error").textContent = "";
  } catch (err) {
    $("error").textContent = "not refreshed: " + err.message;
  } finally {
    setTimeout(refresh, 1000);
  }
}
refresh();
</script>
</body>
</html>
`;
