// What the packet handlers need of the worker, named: each handler is given this, not a
// worker object to reach through.
import type { Connection } from '../net/connection';
import type { Message } from '../protocol/message';
import type { Session } from '../session/session';
import type { BrokerConfig } from '../../src/config';
import type { StoreOp } from '../../src/shared/messages';
import type { IConnectPacket } from 'mqtt-packet';
import type { GateResult } from '../auth/auth-gate';
import type { AclGate } from '../auth/acl-gate';

export interface HandlerDeps {
  readonly config: BrokerConfig;
  count(counter: number, n: number): void;
  /** The publish path (routing/router.ts). */
  readonly router: {
    publish(msg: Message, conn: Connection | null, ack: number, pid: number): void;
    flushBatch(): void;
  };
  /** Claims and online/offline (session/lifecycle.ts). */
  readonly sessions: {
    claim(c: Connection, clientId: string, clean: boolean, expiry: number, done: (present: boolean | null, err: Error | null) => void): void;
    online(c: Connection): void;
  };
  /** session/subscriptions.ts */
  readonly subscriptions: {
    subscribe(s: Session, filter: string, opts: number, subId: number, retainHandling: number): boolean;
    unsubscribe(s: Session, filter: string): boolean;
  };
  /** This worker's store operations; `barrier` runs `done` once what is queued is durable. */
  readonly store: {
    op(o: StoreOp): void;
    barrier(done: (ok: boolean) => void): void;
  };
  /** Credentials of a CONNECT (auth/auth-gate.ts): null when nothing needs checking; a refusal, or an allow with its grant. */
  readonly auth: { gate(c: Connection, p: IConnectPacket): Promise<GateResult> | null };
  /** The ACL (auth/acl-gate.ts): null without --acl-file. */
  readonly acl: AclGate | null;
  /** The banned list (admin/admin.ts): a CONNECT it matches is refused. */
  readonly banned: { match(clientId: string, username: string | null, address: string | undefined): string | null };
  /** The cluster (src/shared/cluster-state.ts): `refusing` while this node is fenced. */
  readonly cluster: { readonly refusing: boolean };
  /** Test builds: a PUBLISH to a hook topic triggers the hook instead of being routed. */
  testHook(c: Connection, topic: Buffer): boolean;
}
