// What the controller hands each load worker thread: plain data, so it crosses postMessage.
import type { MqttVersion } from './protocol';

export interface PublisherSpec {
  /** Dense index 0..P-1: names the publisher in payload stamps and shared counters. */
  index: number;
  clientId: string;
  /** Cycled in order; all the same byte length so one template layout serves every topic. */
  topics: string[];
}

export interface SubscriberSpec {
  clientId: string;
  filters: string[];
  /** Connect with Clean Session 0 (MQTT 3.1.1): the broker keeps (and may persist) the session. */
  persistent?: boolean;
}

export interface PubSubPlan {
  kind: 'pubsub';
  version: MqttVersion;
  qos: 0 | 1 | 2;
  payload: number;
  /** QoS 1/2: unacknowledged PUBLISHes per publisher (capped by the broker's receive maximum). */
  inflight: number;
  /** Total msg/s over all publishers; 0 = closed loop bounded by `window`. */
  rate: number;
  /** Closed loop: messages a publisher may have sent that its subscribers have not yet seen. */
  window: number;
  /** Deliveries each published message must produce (subscribers matching its topic). */
  fanout: number;
  publishers: PublisherSpec[];
  subscribers: SubscriberSpec[];
  /** Extra connections that connect and then stay silent during the run. */
  idle: number;
}

export interface IdlePlan {
  kind: 'idle';
  version: MqttVersion;
  count: number;
  /** CONNECTs outstanding at once per load thread. */
  concurrency: number;
}

export interface ChurnPlan {
  kind: 'churn';
  version: MqttVersion;
  /** Connect/disconnect loops running at once per load thread. */
  concurrency: number;
  /**
   * Each loop reconnects under one client id with a session the broker keeps (Clean Session 0,
   * v5 Session Expiry 1 h): every CONNACK after the first finds the session present.
   */
  persistent?: boolean;
}

export type LoadPlan = PubSubPlan | IdlePlan | ChurnPlan;

export interface WorkerInit {
  thread: number;
  threads: number;
  host: string;
  port: number;
  plan: LoadPlan;
  publishers: PublisherSpec[];
  subscribers: SubscriberSpec[];
  idle: number;
  shared: SharedArrayBuffer;
  publisherCount: number;
}
