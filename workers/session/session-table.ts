// Sessions of one worker by slot (the low bits of a subscriber id) and by client id. Slots
// are reused, so a subscriber id also carries the session it names (checked on delivery).
import type { Session } from './session';

export class SessionTable {
  private readonly bySlot: (Session | undefined)[] = [];
  private readonly free: number[] = [];
  readonly byClientId = new Map<string, Session>();

  allocSlot(): number {
    // FIFO reuse: a slot freed just now is taken last, so records still in flight to its
    // old session rarely meet a new one.
    return this.free.length > 1024 ? this.free.shift()! : this.bySlot.push(undefined) - 1;
  }

  add(s: Session): void {
    this.bySlot[s.slot] = s;
    this.byClientId.set(s.clientId, s);
  }

  remove(s: Session): void {
    if (this.bySlot[s.slot] !== s) return;
    this.bySlot[s.slot] = undefined;
    this.free.push(s.slot);
    if (this.byClientId.get(s.clientId) === s) this.byClientId.delete(s.clientId);
  }

  get(slot: number): Session | undefined {
    return this.bySlot[slot];
  }

  get size(): number { return this.byClientId.size; }
}
