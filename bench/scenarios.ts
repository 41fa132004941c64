// The named load presets. Each builds a plain plan; the same plan runs unchanged
// against every broker, so the only variable in a comparison is the broker.
import type { ChurnPlan, IdlePlan, LoadPlan, PubSubPlan, PublisherSpec, SubscriberSpec } from './load/plan';
import type { MqttVersion } from './load/protocol';

export interface ScenarioOptions {
  version: MqttVersion;
  payload: number;
  /** Overrides the scenario's rate: total msg/s offered, 0 = closed loop. */
  rate?: number;
  /** Overrides the scenario's QoS (publish and subscribe). */
  qos?: 0 | 1 | 2;
  window: number;
  inflight: number;
  idleCount: number;
  /** Extra silent connections added to the pub/sub scenarios. */
  extraIdle: number;
}

export interface Scenario {
  name: string;
  /** What the headline counts: delivered messages, or accepted connections. */
  unit: 'msg' | 'conn';
  describe: string;
  build(o: ScenarioOptions): LoadPlan;
}

const pad = (n: number, width: number) => String(n).padStart(width, '0');

function pubsub(o: ScenarioOptions, qos: 0 | 1 | 2, fanout: number, rate: number, publishers: PublisherSpec[], subscribers: SubscriberSpec[]): PubSubPlan {
  return {
    kind: 'pubsub', version: o.version, qos: o.qos ?? qos, payload: o.payload, inflight: o.inflight, rate: o.rate ?? rate,
    window: o.window, fanout, publishers, subscribers, idle: o.extraIdle,
  };
}

function pubs(n: number, topics: (p: number) => string[]): PublisherSpec[] {
  return Array.from({ length: n }, (_, p) => ({ index: p, clientId: `bench-pub-${pad(p, 3)}`, topics: topics(p) }));
}

function subs(n: number, filters: (s: number) => string[]): SubscriberSpec[] {
  return Array.from({ length: n }, (_, s) => ({ clientId: `bench-sub-${pad(s, 3)}`, filters: filters(s) }));
}

function pairs(o: ScenarioOptions, qos: 0 | 1, rate: number): PubSubPlan {
  return pubsub(o, qos, 1, rate, pubs(16, (p) => [`bench/pair/${pad(p, 2)}`]), subs(16, (s) => [`bench/pair/${pad(s, 2)}`]));
}

// 16 publishers × 625 topics = 10,000 topics; subscriber p matches publisher p's topics with one
// `+` filter and carries 250 filters that share its prefix but can never match.
function wildcard(o: ScenarioOptions): PubSubPlan {
  const topics = (p: number) => Array.from({ length: 625 }, (_, k) => `bench/wc/${pad(p, 2)}/${pad(k, 4)}`);
  const filters = (s: number) => [
    `bench/wc/${pad(s, 2)}/+`,
    ...Array.from({ length: 125 }, (_, j) => `bench/wc/${pad(s, 2)}/+/n${j}`),
    ...Array.from({ length: 125 }, (_, j) => `bench/wc/${pad(s, 2)}x/${j}/+`),
  ];
  return pubsub(o, 0, 1, 0, pubs(16, topics), subs(16, filters));
}

export const FIXED_RATE = 40000;
/** fan-in-1k: messages each publisher may have unseen (the many-small-publishers shape: a few each). */
export const MANY_WINDOW = 5;

export const SCENARIOS: Scenario[] = [
  {
    name: 'fan-in', unit: 'msg', describe: '16 publishers → 1 subscriber on bench/in/+, QoS 0, closed loop',
    build: (o) => pubsub(o, 0, 1, 0, pubs(16, (p) => [`bench/in/${pad(p, 2)}`]), subs(1, () => ['bench/in/+'])),
  },
  {
    // Many small publishers: every broker read carries a few messages of one connection, so
    // what is per read (wake-up, syscall, batch, match call) is what gets measured.
    name: 'fan-in-1k', unit: 'msg', describe: `1,000 publishers (one topic each, ≤ ${MANY_WINDOW} unseen messages each) → 1 subscriber on bench/fi/+, QoS 0, closed loop`,
    build: (o) => ({ ...pubsub(o, 0, 1, 0, pubs(1000, (p) => [`bench/fi/${pad(p, 4)}`]), subs(1, () => ['bench/fi/+'])), window: MANY_WINDOW }),
  },
  {
    name: 'fan-out', unit: 'msg', describe: '1 publisher → 16 subscribers of one topic, QoS 0, closed loop',
    build: (o) => pubsub(o, 0, 16, 0, pubs(1, () => ['bench/out/t']), subs(16, () => ['bench/out/t'])),
  },
  { name: 'pairs', unit: 'msg', describe: '16 publisher → subscriber pairs, one topic each, QoS 0, closed loop', build: (o) => pairs(o, 0, 0) },
  { name: 'qos1-pairs', unit: 'msg', describe: '16 pairs, QoS 1 both ways (PUBACK from broker and subscriber), closed loop', build: (o) => pairs(o, 1, 0) },
  {
    // With fleetmq's --durability process|fsync every message is stored before its PUBACK:
    // run with --fleetmq-args "--durability process --data-dir DIR" to measure what that costs.
    name: 'qos1-persistent', unit: 'msg', describe: '16 pairs, QoS 1, subscribers with Clean Session 0 (persistent sessions), closed loop',
    build: (o) => pubsub(o, 1, 1, 0, pubs(16, (p) => [`bench/pp/${pad(p, 2)}`]),
      subs(16, (s) => [`bench/pp/${pad(s, 2)}`]).map((s) => ({ ...s, persistent: true }))),
  },
  {
    name: 'wildcard', unit: 'msg', describe: '10K topics, 16 publishers, 16 subscribers each with 1 matching + filter and 250 non-matching',
    build: wildcard,
  },
  {
    name: 'pairs-fixed', unit: 'msg', describe: `16 pairs, QoS 0, fixed ${FIXED_RATE / 1000}K msg/s total: CPU per message below saturation`,
    build: (o) => pairs(o, 0, FIXED_RATE),
  },
  {
    name: 'idle', unit: 'conn', describe: 'N idle connections (CONNECT, then silence): connect rate and broker RSS per connection',
    build: (o): IdlePlan => ({ kind: 'idle', version: o.version, count: o.idleCount, concurrency: 64 }),
  },
  {
    name: 'churn', unit: 'conn', describe: 'connect → CONNACK → DISCONNECT in a loop, 16 lanes per load thread, clean sessions: connects/s',
    build: (o): ChurnPlan => ({ kind: 'churn', version: o.version, concurrency: 16 }),
  },
  {
    name: 'churn-v5', unit: 'conn', describe: 'churn with MQTT 5 clean starts (whatever --protocol says)',
    build: (): ChurnPlan => ({ kind: 'churn', version: 5, concurrency: 16 }),
  },
  {
    name: 'churn-persistent', unit: 'conn', describe: 'churn, each lane reconnecting under one client id with Clean Session 0 (MQTT 3.1.1): the session is present every time',
    build: (): ChurnPlan => ({ kind: 'churn', version: 4, concurrency: 16, persistent: true }),
  },
  {
    name: 'churn-persistent-v5', unit: 'conn', describe: 'the same with MQTT 5: Clean Start 0, Session Expiry Interval 1 h',
    build: (): ChurnPlan => ({ kind: 'churn', version: 5, concurrency: 16, persistent: true }),
  },
];

export function findScenarios(spec: string): Scenario[] {
  if (spec === 'all') return SCENARIOS;
  return spec.split(',').map((name) => {
    const s = SCENARIOS.find((x) => x.name === name.trim());
    if (!s) throw new Error(`unknown scenario '${name}'; known: all, ${SCENARIOS.map((x) => x.name).join(', ')}`);
    return s;
  });
}
