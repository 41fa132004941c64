// Per-client ACL rules that come with an authentication: the `acl` of an HTTP callout answer or
// the ACL claim of a JWT, in EMQX's two formats (its docs, "Access Control List" of authn):
//
//   new format, a list, first match decides, no match falls through to --acl-file (or allows
//   without one):
//     [{"permission": "allow"|"deny", "action": "publish"|"subscribe"|"all", "topic": "t/#"}, ...]
//   old format, allow-lists, no match is denied:
//     {"pub": ["t/1", ...], "sub": [...], "all": [...]}
//
// Topics are filters (+, #); "eq t/#" matches the filter t/# literally, nothing else. The
// placeholders ${clientid}, ${username} (and Mosquitto's %c, %u) are filled in per connection;
// a rule naming the username is skipped for a client without one, and an allow rule with a
// placeholder is skipped when the value holds + or # (it would widen the rule, as Mosquitto
// refuses such ids for its patterns). `subscribe` is what the client may read: it is checked at
// SUBSCRIBE and again at each delivery, as --acl-file's read access is.
//
// Parsed and checked on the main thread (a bad list refuses the CONNECT there); plain data, so it
// crosses to the worker by structured clone; decided in the worker (workers/auth/client-acl.ts).
import { READ, WRITE } from './acl';
import { validAclTopic } from './acl';

export interface ClientRule {
  allow: boolean;
  /** READ, WRITE or both. */
  access: number;
  /** The filter as given (placeholders not filled in), without an "eq " prefix. */
  topic: string;
  /** "eq " prefix: the filter itself, literally. */
  eq: boolean;
}

export interface ClientRules {
  rules: ClientRule[];
  /** When no rule matches: 'next' = the ACL file decides (allowed without one); 'deny'. */
  noMatch: 'next' | 'deny';
}

export class ClientRulesError extends Error {}

/** At most this many rules per client: the list is kept per connection. */
export const MAX_CLIENT_RULES = 1000;

const ACTIONS: Record<string, number> = { publish: WRITE, subscribe: READ, all: READ | WRITE };

/** The rules of an answer's `acl` / a token's ACL claim; throws ClientRulesError saying what is wrong. */
export function parseClientRules(v: unknown): ClientRules {
  if (Array.isArray(v)) {
    if (v.length > MAX_CLIENT_RULES) throw new ClientRulesError(`more than ${MAX_CLIENT_RULES} rules`);
    return { noMatch: 'next', rules: v.map((r, i) => newRule(r, i)).filter((r): r is ClientRule => r !== null) };
  }
  if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>;
    const rules: ClientRule[] = [];
    for (const [k, access] of [['pub', WRITE], ['sub', READ], ['all', READ | WRITE]] as const) {
      const list = o[k];
      if (list === undefined) continue;
      if (!Array.isArray(list)) throw new ClientRulesError(`"${k}" must be a list of topics`);
      for (const t of list) rules.push(rule(true, access, t, `"${k}"`));
    }
    for (const k of Object.keys(o)) if (k !== 'pub' && k !== 'sub' && k !== 'all') throw new ClientRulesError(`unknown key ${JSON.stringify(k.slice(0, 40))} (expected pub, sub, all)`);
    if (rules.length > MAX_CLIENT_RULES) throw new ClientRulesError(`more than ${MAX_CLIENT_RULES} rules`);
    return { noMatch: 'deny', rules };
  }
  throw new ClientRulesError('expected a list of rules or {"pub": [...], "sub": [...], "all": [...]}');
}

/**
 * EMQX's narrowing fields (qos, retain, and from 5.9 client id / username / address / zone /
 * listener matches) are not evaluated here. Never granting more than asked: an allow rule with
 * any of them is dropped (it allows nothing), a deny rule with them denies without the
 * narrowing (it denies more). Any other field is refused.
 */
const NARROWING = new Set(['qos', 'retain', 'clientid_re', 'username_re', 'ipaddr', 'zone', 'zone_re', 'listener', 'listener_re']);
const RULE_KEYS = new Set(['permission', 'action', 'topic']);

function newRule(r: unknown, i: number): ClientRule | null {
  if (typeof r !== 'object' || r === null || Array.isArray(r)) throw new ClientRulesError(`rule ${i}: expected an object`);
  const o = r as Record<string, unknown>;
  if (o.permission !== 'allow' && o.permission !== 'deny') throw new ClientRulesError(`rule ${i}: "permission" must be allow or deny`);
  const access = typeof o.action === 'string' ? ACTIONS[o.action] : undefined;
  if (access === undefined) throw new ClientRulesError(`rule ${i}: "action" must be publish, subscribe or all`);
  let narrowed = false;
  for (const k of Object.keys(o)) {
    if (NARROWING.has(k)) narrowed = true;
    else if (!RULE_KEYS.has(k)) throw new ClientRulesError(`rule ${i}: unknown field ${JSON.stringify(k.slice(0, 40))}`);
  }
  const parsed = rule(o.permission === 'allow', access, o.topic, `rule ${i}`);
  return narrowed && parsed.allow ? null : parsed;
}

function rule(allow: boolean, access: number, t: unknown, at: string): ClientRule {
  if (typeof t !== 'string') throw new ClientRulesError(`${at}: a topic must be a string`);
  const eq = t.startsWith('eq ');
  const topic = eq ? t.slice(3) : t;
  const bad = validAclTopic(topic);
  if (bad) throw new ClientRulesError(`${at}: invalid topic ${JSON.stringify(topic.slice(0, 80))}: ${bad}`);
  return { allow, access, topic, eq };
}

const PLACEHOLDER = /\$\{clientid\}|\$\{username\}|%c|%u/g;
const HAS_PLACEHOLDER = /\$\{clientid\}|\$\{username\}|%c|%u/;

/**
 * `rule`'s filter for one client, or null when the rule does not apply to it (it names the
 * username of a client without one, or an allow would be widened by + or # in the value).
 */
export function fillIn(rule: ClientRule, clientId: string, username: string | null): string | null {
  if (!HAS_PLACEHOLDER.test(rule.topic)) return rule.topic;
  let skip = false;
  const out = rule.topic.replace(PLACEHOLDER, (p) => {
    const v = p === '${clientid}' || p === '%c' ? clientId : username;
    if (v === null || (rule.allow && /[+#]/.test(v))) { skip = true; return ''; }
    return v;
  });
  return skip ? null : out;
}
