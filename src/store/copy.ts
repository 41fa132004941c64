// Value copies handed across the Store boundary, so neither side can alter the other's state
// through a shared object or buffer.
import type { MessageProperties, NewMessage, StoredSession, StoredSubscription } from './types';

export function copyProps(p: MessageProperties): MessageProperties {
  const out: MessageProperties = { ...p };
  if (p.correlationData) out.correlationData = Buffer.from(p.correlationData);
  if (p.userProperties) out.userProperties = p.userProperties.map(([k, v]) => [k, v]);
  return out;
}

export function copyMessage<M extends NewMessage>(m: M): M {
  return { ...m, payload: Buffer.from(m.payload), properties: copyProps(m.properties) };
}

export function copySession(s: StoredSession): StoredSession {
  return { ...s, will: s.will && { ...s.will, payload: Buffer.from(s.will.payload), properties: copyProps(s.will.properties) } };
}

export function copySub(s: StoredSubscription): StoredSubscription {
  const out = { ...s };
  if (!out.subscriptionIdentifier) delete out.subscriptionIdentifier;
  return out;
}
