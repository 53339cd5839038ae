// The Redis CounterStore, shared by every gateway instance: each port operation is ONE Lua script
// (storage/redis/scripts.ts), run atomically by Redis, sent by SHA (EVALSHA) with ioredis falling
// back to EVAL on NOSCRIPT (https://github.com/redis/ioredis#lua-scripting).
//
// Cluster-safe layout: a script only touches keys of one hash tag — the account's `{accountId}`
// that every counter key carries (core/balances.ts) — so one script runs on one slot. A
// reservation's bookkeeping (record, expiry index) lives under the same tag as its ops. Keys with
// no hash tag are grouped under the empty tag `tg:{}:…`: fine on a single Redis (the contract
// suite's plain keys), refused by Redis Cluster as CROSSSLOT.
//
// settle/release/renew get only ids, so this process remembers id → tag and keys of the
// reservations it made: the gateway settles in the process that reserved, and a reservation whose
// process died is given back by expiry (the account's next reserve or get, or sweep).
//
// Times are the callers' `now` (never Redis TIME), so a test's virtual clock holds; Redis's own
// clock only bounds the real TTLs that make abandoned counters vanish a day after their expiry.
import { createHash } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import {
  checkActual,
  checkAdd,
  checkKey,
  checkReserve,
  checkTime,
  CounterOverflowError,
  CounterStoreClosedError,
  DuplicateReservationError,
  settleSign,
  type StoredOp,
} from '../counter-ops.js';
import { CounterStoreUnavailableError, type CounterOp, type CounterStore, type Receipts, type ReserveResult } from '../counters.js';
import { scripts, type ScriptName } from './scripts.js';

/** SHA1 of each script body, as Redis names it (pinned by counters.test.ts). */
export const scriptHashes: Record<ScriptName, string> = Object.fromEntries(
  Object.entries(scripts).map(([name, lua]) => [name, createHash('sha1').update(lua).digest('hex')]),
) as Record<ScriptName, string>;

export interface RedisCounterStoreOptions {
  /** Give up on a TCP connect after this long (ms). Default 1000. */
  connectTimeoutMs?: number;
  /** Reject a command Redis has not answered after this long (ms). Default 2000. */
  commandTimeoutMs?: number;
  /** While disconnected, try to reconnect this often (ms). Default 200. */
  reconnectEveryMs?: number;
}

/**
 * Redis's hash tag of a key (https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/#hash-tags):
 * the text between the first `{` and the next `}`, if not empty; '' when the key has none.
 */
export function hashTag(key: string): string {
  const open = key.indexOf('{');
  if (open === -1) return '';
  const close = key.indexOf('}', open + 1);
  return close === -1 ? '' : key.slice(open + 1, close);
}

/** The bookkeeping keys of one tag (one account). */
export function tagKeys(tag: string): { resexp: string; cexp: string; resPrefix: string; receipts: string; donePrefix: string } {
  return {
    resexp: `tg:{${tag}}:resexp`,
    cexp: `tg:{${tag}}:cexp`,
    resPrefix: `tg:{${tag}}:res:`,
    receipts: `tg:{${tag}}:receipts`,
    donePrefix: `tg:{${tag}}:done:`,
  };
}

/**
 * How long Redis remembers that an id was settled or charged (scripts.ts, the done marker): longer
 * than a settlement can wait in the meter's backlog for an outage to end, short enough that the
 * markers (~180 bytes each in Redis, measured) stay small — about 160 MB at 1,000 requests a second.
 */
export const SETTLED_MEMORY_MS = 15 * 60_000;

/** Held by the instance whose turn it is to sweep (claimSweep). */
const SWEEP_TURN_KEY = 'tg:sweep-turn';

/** Replies that mean "Redis cannot serve now", as opposed to a bug in a script or a key of the wrong type. */
// OOM: Redis at its maxmemory refuses writes until memory frees up, which is an outage to the gateway, not a bug.
const UNAVAILABLE_REPLY = /^(LOADING|BUSY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|READONLY|NOREPLICAS|MISCONF|OOM)\b/;

function isConnectivityError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  // ioredis's ReplyError: Redis answered. Anything else it rejects with (stream not writeable,
  // connection closed, MaxRetriesPerRequestError, command timed out, ECONNREFUSED) is transport.
  if (err.name === 'ReplyError') return UNAVAILABLE_REPLY.test(err.message);
  return true;
}

type ScriptFn = (numKeys: number, ...args: (string | number)[]) => Promise<unknown>;

interface Mine {
  tag: string;
  keys: string[];
  expiresAt: number;
}

export class RedisCounterStore implements CounterStore {
  private closed = false;
  /** Reservations this process made and has not settled or released. */
  private readonly mine = new Map<string, Mine>();
  /**
   * Receipt id → its account's tag, for receipts this process kept or listed and has not
   * acknowledged, in two generations: each listing starts a new one and drops the one before last.
   * A receipt listed here but acknowledged by another instance (or listed while too young to drain)
   * was otherwise kept for ever; one still in Redis is found again, tag and all, by the next listing.
   */
  private receiptTags = new Map<string, string>();
  private olderReceiptTags = new Map<string, string>();
  readonly receipts: Receipts = {
    settle: async (id, actual, receipt) => {
      this.open();
      checkActual(actual);
      if (receipt === '') throw new RangeError('a receipt cannot be empty');
      const tag = this.mine.get(id)?.tag;
      const done = await this.finish('tgSettle', id, [String(actual), receipt]);
      if (done) this.receiptTags.set(id, tag!);
      return done;
    },
    charge: async (id, charges, receipt, rememberMs = SETTLED_MEMORY_MS) => {
      this.open();
      if (charges.length === 0 && receipt === '') return false;
      for (const c of charges) checkAdd(c.key, c.amount, c.expiresAt);
      const tag = hashTag(charges[0]?.key ?? '');
      if (charges.some((c) => hashTag(c.key) !== tag)) throw new RangeError(`every key of a charge must share one hash tag ({${tag}})`);
      const { cexp, receipts, donePrefix, resexp, resPrefix } = tagKeys(tag);
      const head = [cexp, receipts, donePrefix + id, resexp, resPrefix + id];
      const args: string[] = [...head, ...charges.map((c) => c.key), id, receipt, String(rememberMs)];
      for (const c of charges) args.push(String(c.amount), c.expiresAt === null ? '' : String(c.expiresAt));
      const charged = (await this.call('tgCharge', head.length + charges.length, args)) === 1;
      this.mine.delete(id);
      if (charged && receipt !== '') this.receiptTags.set(id, tag);
      return charged;
    },
    pending: (limit) => this.pendingReceipts(limit),
    acknowledge: (ids, rememberMs) => this.acknowledge(ids, rememberMs),
  };
  private lastError: Error | undefined;

  private everReady = false;
  /** Whether the connection failed, or Redis stopped answering on it, and has not recovered since (watchConnection's state). */
  private down = false;
  /** Whether `down` came from commands timing out on a live connection: the next answer ends it. */
  private stalled = false;
  private readonly watchers: { lost: (err: Error) => void; back: () => void }[] = [];
  private firstConnection: Promise<void> | undefined;
  private readonly firstConnectMs: number;

  /**
   * `redis` should be configured as redisOptions() does. Until its first connection, calls wait
   * for it (up to `firstConnectMs`); after that, calls made while disconnected fail at once.
   */
  constructor(
    readonly redis: Redis,
    opts: { firstConnectMs?: number } = {},
  ) {
    this.firstConnectMs = opts.firstConnectMs ?? 1000;
    for (const [name, lua] of Object.entries(scripts)) redis.defineCommand(name, { lua });
    // Without a listener ioredis logs every failed reconnect; the store reports outages per call.
    redis.on('error', (err: Error) => {
      this.lastError = err;
    });
    // 'close' comes with every lost connection and every failed connect (not always an 'error').
    redis.on('close', () => {
      if (this.down || this.closed) return;
      this.down = true;
      for (const w of this.watchers) w.lost(this.lastError ?? new Error('connection closed'));
    });
    redis.on('ready', () => {
      this.everReady = true;
      this.lastError = undefined;
      this.stalled = false;
      if (this.down) {
        this.down = false;
        for (const w of this.watchers) w.back();
      }
    });
    if (redis.status === 'ready') this.everReady = true;
  }

  /**
   * Tells `lost` when the connection fails (once per outage: ioredis reports every failed
   * reconnect) and `back` once it is ready again — for the operator's log, since the store itself
   * reports an outage only to the calls that meet it.
   */
  watchConnection(lost: (err: Error) => void, back: () => void): void {
    this.watchers.push({ lost, back });
  }

  /** False from a lost connection or a timed-out command until Redis answers again (for /metrics). */
  get answering(): boolean {
    return !this.down;
  }

  /** Resolves once connected to Redis; CounterStoreUnavailableError if not within `timeoutMs` (for readiness checks). */
  async ready(timeoutMs = this.firstConnectMs): Promise<void> {
    this.open();
    if (this.redis.status === 'ready') return;
    await new Promise<void>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.redis.off('ready', done);
        resolve();
      };
      const timer = setTimeout(() => {
        this.redis.off('ready', done);
        reject(new CounterStoreUnavailableError(`counter store unavailable: not connected after ${timeoutMs} ms${this.lastErrorNote()}`));
      }, timeoutMs);
      this.redis.on('ready', done);
    });
  }

  async reserve(id: string, ops: readonly CounterOp[], expiresAt: number, now: number): Promise<ReserveResult> {
    this.open();
    checkReserve(id, ops, expiresAt, now);
    const tag = hashTag(ops[0]!.key);
    for (const op of ops) {
      if (hashTag(op.key) !== tag) {
        throw new RangeError(`every op of a reservation must share one hash tag: '${op.key}' is not in {${tag}}`);
      }
    }
    const { resexp, cexp, resPrefix } = tagKeys(tag);
    const stored: StoredOp[] = ops.map((op) => [op.key, op.amount, op.settle, settleSign(op)]);
    const keys = ops.map((op) => op.key);
    const args: (string | number)[] = [resexp, cexp, resPrefix + id, ...keys];
    args.push(id, String(now), String(expiresAt), JSON.stringify(stored), resPrefix);
    for (const op of ops) {
      args.push(String(op.amount), bound(op.max), bound(op.min), op.expiresAt === null ? '' : String(op.expiresAt));
    }
    let reply: number[];
    /** Whether the script went out: without an offline queue ioredis writes a command only while ready. */
    let sent = false;
    try {
      reply = (await this.guard(() => {
        sent = this.redis.status === 'ready';
        return (this.redis as unknown as Record<ScriptName, ScriptFn>).tgReserve.call(this.redis, 3 + ops.length, ...args);
      })) as number[];
    } catch (err) {
      // Only the reply may be lost: Redis may run the script after the command timeout. Remembered,
      // so release(id) can give back what it may hold (PlanMeter gives back a lost reservation).
      // Not one that never left (Redis down): there is nothing to give back, and remembering each
      // refused request's queued a release per 503 for as long as the outage lasted.
      if (sent && err instanceof CounterStoreUnavailableError) this.mine.set(id, { tag, keys: [...new Set(keys)], expiresAt });
      throw err;
    }
    if (reply[0] === -1) throw new DuplicateReservationError(id);
    if (reply[0] === 0) return { ok: false, failed: reply[1]!, value: reply[2]! };
    this.mine.set(id, { tag, keys: [...new Set(keys)], expiresAt });
    return { ok: true, values: reply.slice(1) };
  }

  async settle(id: string, actual: number): Promise<boolean> {
    this.open();
    checkActual(actual);
    return this.finish('tgSettle', id, [String(actual), '']);
  }

  async release(id: string): Promise<boolean> {
    this.open();
    return this.finish('tgRelease', id, []);
  }

  async renew(ids: readonly string[], expiresAt: number): Promise<void> {
    this.open();
    checkTime('expiresAt', expiresAt);
    const byTag = new Map<string, string[]>();
    for (const id of ids) {
      const r = this.mine.get(id);
      if (!r) continue;
      r.expiresAt = Math.max(r.expiresAt, expiresAt);
      const list = byTag.get(r.tag);
      if (list) list.push(id);
      else byTag.set(r.tag, [id]);
    }
    await Promise.all(
      [...byTag].map(([tag, list]) => this.call('tgRenew', 1, [tagKeys(tag).resexp, String(expiresAt), ...list])),
    );
  }

  async get(keys: readonly string[], now: number): Promise<number[]> {
    this.open();
    keys.forEach(checkKey);
    checkTime('now', now);
    // One script per account: a gateway reads one account's counters, so this is one round trip.
    const byTag = new Map<string, number[]>();
    keys.forEach((key, i) => {
      const tag = hashTag(key);
      const list = byTag.get(tag);
      if (list) list.push(i);
      else byTag.set(tag, [i]);
    });
    const out = new Array<number>(keys.length);
    await Promise.all(
      [...byTag].map(async ([tag, indexes]) => {
        const { resexp, cexp, resPrefix } = tagKeys(tag);
        const tagged = indexes.map((i) => keys[i]!);
        const reply = (await this.call('tgGet', 2 + tagged.length, [resexp, cexp, ...tagged, String(now), resPrefix])) as number[];
        indexes.forEach((i, j) => (out[i] = reply[j]!));
      }),
    );
    return out;
  }

  async add(key: string, amount: number, expiresAt: number | null): Promise<number> {
    this.open();
    checkAdd(key, amount, expiresAt);
    const args = [key, tagKeys(hashTag(key)).cexp, String(amount), expiresAt === null ? '' : String(expiresAt)];
    const [added, value] = (await this.call('tgAdd', 2, args)) as [0 | 1, number];
    if (added === 0) throw new CounterOverflowError(key, value, amount);
    return value;
  }

  /**
   * Runs the sweep script on every account with expiring reservations or counters. Their index
   * keys are found by SCAN: a global index would be a key outside every account's slot.
   */
  async sweep(now: number, opts: { onceEveryMs?: number } = {}): Promise<number> {
    this.open();
    checkTime('now', now);
    // This process's own lapsed reservations are forgotten here, turn or not: only its sweep does
    // it, and with N instances it holds the turn about one minute in N.
    for (const [id, r] of this.mine) if (r.expiresAt <= now) this.mine.delete(id);
    if (opts.onceEveryMs !== undefined && !(await this.claimSweep(opts.onceEveryMs))) return 0;
    const tags = new Set<string>();
    for await (const key of this.scan('tg:{*}:*exp')) {
      const tag = hashTag(key);
      const { resexp, cexp } = tagKeys(tag);
      if (key === resexp || key === cexp) tags.add(tag);
    }
    let dropped = 0;
    for (const tag of tags) {
      const { resexp, cexp, resPrefix } = tagKeys(tag);
      dropped += (await this.call('tgSweep', 2, [resexp, cexp, String(now), resPrefix])) as number;
    }
    return dropped;
  }

  /**
   * Whether this process takes the sweep's turn: the first of the instances sharing this Redis to
   * ask within `ms` does. Every instance swept every account every minute, so N instances read
   * every account's indexes N times a minute (bench/redis-sweep.mjs --instances). One key outside
   * every account's slot, set with NX, so a Redis Cluster routes it like any other.
   */
  private async claimSweep(ms: number): Promise<boolean> {
    if (!Number.isSafeInteger(ms) || ms < 1) throw new RangeError(`onceEveryMs must be a positive integer, not ${ms}`);
    return (await this.guard(() => this.redis.set(SWEEP_TURN_KEY, String(process.pid), 'PX', ms, 'NX'))) === 'OK';
  }

  async ping(): Promise<void> {
    this.open();
    await this.guard(() => this.redis.ping());
  }

  /** Why this Redis cannot run the scripts (too old), or null (also when it cannot be asked). */
  async versionProblem(): Promise<string | null> {
    try {
      return redisVersionProblem((await this.guard(() => this.redis.info('server'))) as string);
    } catch {
      return null;
    }
  }

  /**
   * Balances live only here, so a Redis that forgets its data forgets money. Returns a warning when
   * the server runs without its append-only file (a restart loses everything), or evicts keys once
   * it reaches its maxmemory (a Redis set up as a cache: at the limit it drops balances, today's
   * counters, session epochs and settled-request markers, silently) — null when neither, or when
   * CONFIG is not allowed, as on some managed services.
   */
  async persistenceWarning(): Promise<string | null> {
    let conf: Record<string, string>;
    try {
      // CONFIG GET takes several parameters since Redis 7.0 (the oldest the scripts run on).
      const reply = (await this.guard(() => this.redis.config('GET', 'appendonly', 'maxmemory', 'maxmemory-policy'))) as string[];
      conf = {};
      for (let i = 0; i + 1 < reply.length; i += 2) conf[reply[i]!] = reply[i + 1]!;
    } catch {
      return null;
    }
    const warnings: string[] = [];
    if (conf.appendonly !== undefined && conf.appendonly !== 'yes') {
      warnings.push('Redis runs without appendonly: a restart loses every counter, every prepaid balance and every sign-out (signed-out web sessions work again). Set appendonly yes.');
    }
    const policy = conf['maxmemory-policy'];
    if (policy !== undefined && policy !== 'noeviction' && conf.maxmemory !== undefined && conf.maxmemory !== '0') {
      warnings.push(
        `Redis runs with maxmemory-policy ${policy}: at its maxmemory it evicts keys — limit counters (limits start over) and the markers that keep a settlement from counting twice${policy.startsWith('allkeys-') ? ', prepaid balances and sign-outs' : ''}. Set maxmemory-policy noeviction (at the limit Redis then refuses writes, an outage limiter.onUnavailable handles).`,
      );
    }
    return warnings.length > 0 ? warnings.join(' ') : null;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.mine.clear();
    this.receiptTags.clear();
    this.olderReceiptTags.clear();
    if (this.redis.status === 'ready') {
      try {
        await this.redis.quit();
        return;
      } catch {
        // Fall through: drop the connection instead.
      }
    }
    this.redis.disconnect();
  }

  private open(): void {
    if (this.closed) throw new CounterStoreClosedError();
  }

  private async finish(script: 'tgSettle' | 'tgRelease', id: string, extra: string[]): Promise<boolean> {
    const r = this.mine.get(id);
    if (!r) return false;
    const { resexp, resPrefix, receipts, donePrefix } = tagKeys(r.tag);
    const head = script === 'tgSettle' ? [resexp, resPrefix + id, receipts, donePrefix + id] : [resexp, resPrefix + id];
    if (script === 'tgSettle') extra = [...extra, String(SETTLED_MEMORY_MS)];
    const done = (await this.call(script, head.length + r.keys.length, [...head, ...r.keys, id, ...extra])) === 1;
    this.mine.delete(id);
    return done;
  }

  /**
   * Every account's receipts hash is found by SCAN, as sweep() finds its indexes, and read by HSCAN
   * about as far as `limit` needs: after a ledger outage one busy account holds tens of thousands,
   * and reading its whole hash for every listing of 500 moved it all out of Redis again each time.
   */
  private async pendingReceipts(limit: number): Promise<Array<{ id: string; receipt: string }>> {
    this.open();
    if (limit < 1) return [];
    this.olderReceiptTags = this.receiptTags;
    this.receiptTags = new Map();
    const out: Array<{ id: string; receipt: string }> = [];
    // HSCAN may return a field twice (its guarantee, as SCAN's): listed once.
    const listed = new Set<string>();
    for await (const key of this.scan('tg:{*}:receipts')) {
      const tag = hashTag(key);
      if (key !== tagKeys(tag).receipts) continue;
      let cursor = '0';
      do {
        const [next, flat] = await this.guard(() => this.redis.hscan(key, cursor, 'COUNT', limit - out.length));
        cursor = next;
        for (let i = 0; i + 1 < flat.length; i += 2) {
          const id = flat[i]!;
          if (listed.has(id)) continue;
          if (out.length >= limit) return out;
          listed.add(id);
          this.receiptTags.set(id, tag);
          out.push({ id, receipt: flat[i + 1]! });
        }
      } while (cursor !== '0' && out.length < limit);
      if (out.length >= limit) return out;
    }
    return out;
  }

  /** Every key matching `pattern`, by SCAN (a key may come twice: SCAN's guarantee). */
  private async *scan(pattern: string): AsyncGenerator<string> {
    let cursor = '0';
    do {
      const [next, found] = await this.guard(() => this.redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000));
      cursor = next;
      yield* found;
    } while (cursor !== '0');
  }

  private async acknowledge(ids: readonly string[], rememberMs?: number): Promise<void> {
    this.open();
    const byTag = new Map<string, string[]>();
    for (const id of ids) {
      const tag = this.receiptTags.get(id) ?? this.olderReceiptTags.get(id);
      if (tag === undefined) continue;
      const list = byTag.get(tag);
      if (list) list.push(id);
      else byTag.set(tag, [id]);
    }
    if (byTag.size === 0) return;
    await this.guard(async () => {
      const batch = this.redis.pipeline();
      for (const [tag, list] of byTag) {
        batch.hdel(tagKeys(tag).receipts, ...list);
        // The receipt said the id was charged; its done marker says it from here on (CHARGE).
        if (rememberMs !== undefined) for (const id of list) batch.set(tagKeys(tag).donePrefix + id, '1', 'PX', rememberMs);
      }
      const replies = (await batch.exec()) ?? [];
      const failed = replies.find(([err]) => err);
      if (failed) throw failed[0];
    });
    for (const id of ids) {
      this.receiptTags.delete(id);
      this.olderReceiptTags.delete(id);
    }
  }

  private call(script: ScriptName, numKeys: number, args: (string | number)[]): Promise<unknown> {
    const fn = (this.redis as unknown as Record<ScriptName, ScriptFn>)[script];
    return this.guard(() => fn.call(this.redis, numKeys, ...args));
  }

  /** Runs one Redis call, turning every connectivity failure into CounterStoreUnavailableError. */
  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    if (!this.everReady) {
      // One shared wait, so a burst of calls at start-up does not pile listeners on the client.
      this.firstConnection ??= this.ready().finally(() => (this.firstConnection = undefined));
      await this.firstConnection;
    }
    try {
      const result = await fn();
      if (this.stalled) this.answersAgain();
      return result;
    } catch (err) {
      if (!isConnectivityError(err)) throw err;
      const reason = (err as Error).message;
      const unavailable = new CounterStoreUnavailableError(`counter store unavailable: ${reason}${this.lastErrorNote(reason)}`, { cause: err });
      // A Redis that stops answering on a live connection (stopped, paused, a script running long)
      // sends no close and, when it answers again, no ready: a timeout and the next answer are
      // how the watchers hear of it — and what waits for "back" (the charges owed from the outage,
      // PlanMeter's backlog) would otherwise wait for a timer. Not a refusal Redis answered with
      // (OOM, READONLY, MISCONF: writes refused, reads answered): that is no stall, and taken for
      // one, each refused write was "unreachable" and each read after it "answers again".
      if (this.redis.status === 'ready' && !this.down && (err as Error).name !== 'ReplyError') {
        this.down = true;
        this.stalled = true;
        for (const w of this.watchers) w.lost(unavailable);
      }
      throw unavailable;
    }
  }

  private answersAgain(): void {
    this.stalled = false;
    if (!this.down) return;
    this.down = false;
    for (const w of this.watchers) w.back();
  }

  private lastErrorNote(unless?: string): string {
    const last = this.lastError?.message;
    return last && last !== unless ? ` (last connection error: ${last})` : '';
  }
}

function bound(n: number | undefined): string {
  return n === undefined ? '' : String(n);
}

/** ioredis settings for a store that must fail fast, never queue behind an outage. */
export function redisOptions(opts: RedisCounterStoreOptions = {}): RedisOptions {
  const reconnectEveryMs = opts.reconnectEveryMs ?? 200;
  return {
    connectTimeout: opts.connectTimeoutMs ?? 1000,
    commandTimeout: opts.commandTimeoutMs ?? 2000,
    // A command in flight when the connection drops is failed, not replayed after a reconnect: a
    // replayed reserve could apply twice.
    maxRetriesPerRequest: 1,
    autoResendUnfulfilledCommands: false,
    // While disconnected, calls reject at once instead of waiting in a queue.
    enableOfflineQueue: false,
    retryStrategy: () => reconnectEveryMs,
  };
}

/**
 * A store on its own connection to `url` (redis://…). Connecting starts now; the first calls wait
 * for it up to `connectTimeoutMs` (use `ready()` to check at start-up), then fail with
 * CounterStoreUnavailableError while Redis is unreachable, and succeed again once it is back.
 */
/** The oldest Redis the scripts run on: PEXPIRETIME (scripts.ts, expire_after) came in 7.0. */
export const MIN_REDIS_VERSION = [7, 0] as const;

/** From INFO's text: why this server is too old for the scripts, or null (also for a version it does not state). */
export function redisVersionProblem(info: string): string | null {
  const m = /^redis_version:(\d+)\.(\d+)/m.exec(info);
  if (!m) return null;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  if (major > MIN_REDIS_VERSION[0] || (major === MIN_REDIS_VERSION[0] && minor >= MIN_REDIS_VERSION[1])) return null;
  return `Redis ${major}.${minor} is too old for Tollgate's limiter scripts (they use PEXPIRETIME): every metered request would fail. Use Redis ${MIN_REDIS_VERSION.join('.')} or newer.`;
}

export function openRedisCounterStore(url: string, opts: RedisCounterStoreOptions = {}): RedisCounterStore {
  return new RedisCounterStore(new Redis(url, redisOptions(opts)), { firstConnectMs: opts.connectTimeoutMs ?? 1000 });
}
