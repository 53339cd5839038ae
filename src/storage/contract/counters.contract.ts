// The one behaviour suite every CounterStore passes (STYLE §13; the port is storage/counters.ts).
// An implementation's test file calls `counterStoreContract('memory', () => new MemoryCounterStore())`.
// `open` must return a fresh, empty store on every call: each test owns its store. Time is only the
// `now` argument — nothing here sleeps or reads the clock.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CounterOp, CounterStore, ReserveResult } from '../counters.js';
import { seededRandom } from '../../lib/prng.js';

/** 2026-11-25T12:00:00Z: an arbitrary "now"; tests move time by passing T0 + ms. */
const T0 = Date.UTC(2026, 10, 25, 12);
const TTL = 60_000;
const END_OF_DAY = Date.UTC(2026, 10, 26);

const usage = (key: string, amount: number, max?: number, settle: CounterOp['settle'] = 'actual'): CounterOp => ({
  key,
  amount,
  ...(max === undefined ? {} : { max }),
  settle,
  expiresAt: END_OF_DAY,
});
const balance = (key: string, amount: number): CounterOp => ({
  key,
  amount: -amount,
  min: 0,
  settle: 'actual',
  expiresAt: null,
});

/** Lets other pending operations run: a few macrotask-free turns of the microtask queue. */
async function yieldTurns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await Promise.resolve();
}

export function counterStoreContract(name: string, open: () => Promise<CounterStore> | CounterStore): void {
  describe(`counter store contract: ${name}`, () => {
    let store: CounterStore;

    beforeEach(async () => {
      store = await open();
    });

    afterEach(async () => {
      await store.close();
    });

    const values = (...keys: string[]) => store.get(keys, T0);

    describe('get and add', () => {
      it('reads unknown keys as 0', async () => {
        expect(await store.get(['nope', 'also:nope'], T0)).toEqual([0, 0]);
        expect(await store.get([], T0)).toEqual([]);
      });

      it('adds without limits, creating the counter, and returns the new value', async () => {
        expect(await store.add('balance:a', 500, null)).toBe(500);
        expect(await store.add('balance:a', 250, null)).toBe(750);
        expect(await store.add('balance:a', -1000, null)).toBe(-250);
        expect(await values('balance:a', 'balance:b')).toEqual([-250, 0]);
      });

      it('refuses an add whose result it cannot hold exactly, and changes nothing', async () => {
        // Past 2^53 each later settlement rounds: a balance of 2^53 + 1 charged 483 drifted by credits.
        await store.add('balance:a', Number.MAX_SAFE_INTEGER - 10, null);
        await expect(store.add('balance:a', 11, null)).rejects.toMatchObject({ name: 'CounterOverflowError' });
        await expect(store.add('balance:a', Number.MAX_SAFE_INTEGER, null)).rejects.toMatchObject({ name: 'CounterOverflowError' });
        expect(await values('balance:a')).toEqual([Number.MAX_SAFE_INTEGER - 10]);
        expect(await store.add('balance:a', 10, null)).toBe(Number.MAX_SAFE_INTEGER);
        await store.add('balance:b', -Number.MAX_SAFE_INTEGER, null);
        await expect(store.add('balance:b', -1, null)).rejects.toMatchObject({ name: 'CounterOverflowError' });
        expect(await values('balance:b')).toEqual([-Number.MAX_SAFE_INTEGER]);
      });

      it('sums concurrent top-ups exactly', async () => {
        const amounts = Array.from({ length: 200 }, (_, i) => (i % 4 === 3 ? -(i + 1) : i + 1));
        await Promise.all(amounts.map((a) => store.add('balance:a', a, null)));
        expect(await values('balance:a')).toEqual([amounts.reduce((s, a) => s + a, 0)]);
      });
    });

    describe('reserve', () => {
      it('applies every op and returns the values after it, in op order', async () => {
        await store.add('credits', 100, END_OF_DAY);
        const r = await store.reserve(
          'r1',
          [usage('credits', 500, 1000), usage('requests', 1, 10, 'keep'), usage('lease', 1, 1, 'return')],
          T0 + TTL,
          T0,
        );
        expect(r).toEqual({ ok: true, values: [600, 1, 1] });
        expect(await values('credits', 'requests', 'lease')).toEqual([600, 1, 1]);
      });

      it('admits a reservation landing exactly on max', async () => {
        expect(await store.reserve('r1', [usage('credits', 1000, 1000)], T0 + TTL, T0)).toEqual({
          ok: true,
          values: [1000],
        });
      });

      it('fails atomically on the first op over its max, reporting its index and value before', async () => {
        await store.add('requests', 10, END_OF_DAY);
        await store.add('lease', 1, END_OF_DAY);
        const r = await store.reserve(
          'r1',
          [usage('credits', 500, 1000), usage('requests', 1, 10, 'keep'), usage('lease', 1, 1, 'return')],
          T0 + TTL,
          T0,
        );
        expect(r).toEqual({ ok: false, failed: 1, value: 10 });
        expect(await values('credits', 'requests', 'lease')).toEqual([0, 10, 1]);
        // Nothing was recorded either.
        expect(await store.release('r1')).toBe(false);
        expect(await store.settle('r1', 5)).toBe(false);
        expect(await values('credits', 'requests', 'lease')).toEqual([0, 10, 1]);
      });

      it('fails a balance that would go below min, and admits one landing exactly on it', async () => {
        await store.add('balance:a', 100, null);
        const ops = [usage('credits', 150, 1000), balance('balance:a', 150)];
        expect(await store.reserve('r1', ops, T0 + TTL, T0)).toEqual({ ok: false, failed: 1, value: 100 });
        expect(await values('credits', 'balance:a')).toEqual([0, 100]);
        expect(await store.reserve('r2', [balance('balance:a', 100)], T0 + TTL, T0)).toEqual({
          ok: true,
          values: [0],
        });
      });

      it('counts an op repeating a key on top of the ones before it', async () => {
        expect(await store.reserve('r1', [usage('c', 6, 10), usage('c', 5, 10)], T0 + TTL, T0)).toEqual({
          ok: false,
          failed: 1,
          value: 0,
        });
        expect(await store.reserve('r2', [usage('c', 6, 12), usage('c', 5, 12)], T0 + TTL, T0)).toEqual({
          ok: true,
          values: [11, 11],
        });
        expect(await store.release('r2')).toBe(true);
        expect(await values('c')).toEqual([0]);
      });

      it('throws on a reservation id that is still live, changing nothing', async () => {
        await store.reserve('r1', [usage('credits', 10, 1000)], T0 + TTL, T0);
        await expect(store.reserve('r1', [usage('credits', 10, 1000)], T0 + TTL, T0)).rejects.toThrow(/r1/);
        await expect(store.reserve('r1', [usage('credits', 5000, 1000)], T0 + TTL, T0)).rejects.toThrow(/r1/);
        expect(await values('credits')).toEqual([10]);
      });

      it('throws on malformed input rather than refusing', async () => {
        await expect(store.reserve('r1', [usage('c', 1.5, 10)], T0 + TTL, T0)).rejects.toThrow(RangeError);
        await expect(store.reserve('r1', [], T0 + TTL, T0)).rejects.toThrow(RangeError);
        await store.reserve('r2', [usage('c', 1, 10)], T0 + TTL, T0);
        await expect(store.settle('r2', -1)).rejects.toThrow(RangeError);
        expect(await values('c')).toEqual([1]);
      });
    });

    describe('settle and release', () => {
      const request = () => [
        usage('credits', 500, 10_000),
        usage('requests', 1, 100, 'keep'),
        usage('lease', 1, 1, 'return'),
        balance('balance:a', 500),
      ];

      beforeEach(async () => {
        await store.add('balance:a', 1000, null);
      });

      it('replaces actual ops by the actual cost, keeps keep ops and gives back return ops', async () => {
        expect(await store.reserve('r1', request(), T0 + TTL, T0)).toEqual({ ok: true, values: [500, 1, 1, 500] });
        expect(await store.settle('r1', 120)).toBe(true);
        expect(await values('credits', 'requests', 'lease', 'balance:a')).toEqual([120, 1, 0, 880]);
      });

      it('settles an actual cost of 0 and one equal to the reservation', async () => {
        await store.reserve('r1', request(), T0 + TTL, T0);
        await store.reserve('r2', request().filter((op) => op.key !== 'lease'), T0 + TTL, T0);
        expect(await store.settle('r1', 0)).toBe(true);
        expect(await store.settle('r2', 500)).toBe(true);
        expect(await values('credits', 'requests', 'lease', 'balance:a')).toEqual([500, 2, 0, 500]);
      });

      it('settles a balance reserved at 0 as a debit', async () => {
        await store.reserve('r1', [balance('balance:a', 0)], T0 + TTL, T0);
        expect(await store.settle('r1', 30)).toBe(true);
        expect(await values('balance:a')).toEqual([970]);
      });

      it('allows settling above max (and below min): the cost was incurred', async () => {
        await store.reserve('r1', [usage('credits', 900, 1000), balance('balance:a', 900)], T0 + TTL, T0);
        expect(await store.settle('r1', 1500)).toBe(true);
        expect(await values('credits', 'balance:a')).toEqual([1500, -500]);
        expect(await store.reserve('r2', [usage('credits', 1, 1000)], T0 + TTL, T0)).toEqual({
          ok: false,
          failed: 0,
          value: 1500,
        });
      });

      it('release gives every op back, keep ops included', async () => {
        await store.reserve('r1', request(), T0 + TTL, T0);
        expect(await store.release('r1')).toBe(true);
        expect(await values('credits', 'requests', 'lease', 'balance:a')).toEqual([0, 0, 0, 1000]);
      });

      it('answers false and changes nothing on a second settle or release', async () => {
        await store.reserve('r1', request(), T0 + TTL, T0);
        await store.reserve('r2', request().slice(0, 2), T0 + TTL, T0);
        expect(await store.settle('r1', 100)).toBe(true);
        expect(await store.release('r2')).toBe(true);
        const after = await values('credits', 'requests', 'lease', 'balance:a');
        expect(after).toEqual([100, 1, 0, 900]);
        expect(await store.settle('r1', 100)).toBe(false);
        expect(await store.release('r1')).toBe(false);
        expect(await store.settle('r2', 100)).toBe(false);
        expect(await store.release('r2')).toBe(false);
        expect(await store.settle('never', 100)).toBe(false);
        expect(await values('credits', 'requests', 'lease', 'balance:a')).toEqual(after);
      });

      it('leaves other reservations on the same counters alone', async () => {
        await store.reserve('r1', [usage('credits', 300, 10_000)], T0 + TTL, T0);
        await store.reserve('r2', [usage('credits', 400, 10_000)], T0 + TTL, T0);
        await store.settle('r1', 10);
        expect(await values('credits')).toEqual([410]);
        await store.release('r2');
        expect(await values('credits')).toEqual([10]);
      });
    });

    describe('expiry of reservations', () => {
      const ops = () => [usage('credits', 600, 1000), usage('requests', 1, 10, 'keep'), usage('lease', 1, 1, 'return')];

      it('gives an expired reservation back on the next reserve, which then fits', async () => {
        await store.reserve('r1', ops(), T0 + TTL, T0);
        expect(await store.reserve('r2', ops(), T0 + 2 * TTL, T0 + TTL - 1)).toMatchObject({ ok: false, failed: 0 });
        // Expiry is inclusive: at expiresAt the reservation is gone.
        expect(await store.reserve('r2', ops(), T0 + 2 * TTL, T0 + TTL)).toEqual({ ok: true, values: [600, 1, 1] });
        expect(await store.settle('r1', 10)).toBe(false);
        expect(await store.settle('r2', 10)).toBe(true);
        expect(await store.get(['credits', 'requests', 'lease'], T0 + TTL)).toEqual([10, 1, 0]);
      });

      it('gives expired reservations back on get', async () => {
        await store.reserve('r1', ops(), T0 + TTL, T0);
        expect(await store.get(['credits', 'requests', 'lease'], T0 + TTL - 1)).toEqual([600, 1, 1]);
        expect(await store.get(['credits', 'requests', 'lease'], T0 + TTL)).toEqual([0, 0, 0]);
        expect(await store.settle('r1', 10)).toBe(false);
        expect(await store.release('r1')).toBe(false);
        expect(await store.get(['credits', 'requests', 'lease'], T0 + TTL)).toEqual([0, 0, 0]);
      });

      it('gives expired reservations back on sweep, counting them, and keeps live ones', async () => {
        await store.reserve('r1', [usage('credits', 100, 1000)], T0 + TTL, T0);
        await store.reserve('r2', [usage('credits', 200, 1000)], T0 + TTL, T0);
        await store.reserve('r3', [usage('credits', 300, 1000)], T0 + 3 * TTL, T0);
        expect(await store.sweep(T0 + TTL - 1)).toBe(0);
        expect(await store.sweep(T0 + 2 * TTL)).toBe(2);
        expect(await store.sweep(T0 + 2 * TTL)).toBe(0);
        expect(await store.get(['credits'], T0 + 2 * TTL)).toEqual([300]);
        expect(await store.settle('r2', 1)).toBe(false);
        expect(await store.settle('r3', 1)).toBe(true);
        expect(await store.get(['credits'], T0 + 2 * TTL)).toEqual([1]);
      });

      it('renew pushes expiry of live reservations and ignores unknown ones', async () => {
        await store.reserve('r1', [usage('credits', 100, 1000)], T0 + TTL, T0);
        await store.reserve('r2', [usage('credits', 200, 1000)], T0 + TTL, T0);
        await store.renew(['r1', 'unknown'], T0 + 3 * TTL);
        await store.renew([], T0 + 3 * TTL);
        expect(await store.get(['credits'], T0 + 2 * TTL)).toEqual([100]);
        expect(await store.settle('r1', 40)).toBe(true);
        expect(await store.get(['credits'], T0 + 4 * TTL)).toEqual([40]);
      });

      it('renew never brings an expiry earlier (the heartbeat only pushes it)', async () => {
        await store.reserve('r1', [usage('credits', 100, 1000)], T0 + 3 * TTL, T0);
        await store.reserve('r2', [usage('other', 5, 1000)], T0 + TTL, T0);
        await store.renew(['r1', 'r2'], T0 + TTL);
        // r2 lapses on time; r1 keeps the later expiry it had.
        expect(await store.get(['credits', 'other'], T0 + 2 * TTL)).toEqual([100, 0]);
        expect(await store.settle('r1', 40)).toBe(true);
      });
    });

    describe('expiry of counters', () => {
      it('sweep forgets counters past their expiresAt, keeping later and never-expiring ones', async () => {
        await store.add('day1', 5, END_OF_DAY);
        await store.add('day2', 6, END_OF_DAY + 86_400_000);
        await store.add('balance:a', 7, null);
        expect(await store.sweep(END_OF_DAY - 1)).toBe(0);
        expect(await store.get(['day1', 'day2', 'balance:a'], END_OF_DAY - 1)).toEqual([5, 6, 7]);
        await store.sweep(END_OF_DAY);
        expect(await store.get(['day1', 'day2', 'balance:a'], END_OF_DAY)).toEqual([0, 6, 7]);
        // A forgotten counter starts again from 0.
        expect(await store.add('day1', 1, END_OF_DAY + 10)).toBe(1);
      });

      it('keeps the longer life when a counter is written with another expiry', async () => {
        await store.add('a', 1, END_OF_DAY);
        await store.add('a', 1, END_OF_DAY + 1000);
        await store.add('b', 1, null);
        await store.add('b', 1, END_OF_DAY);
        await store.reserve('r1', [{ ...usage('c', 1), expiresAt: END_OF_DAY + 1000 }], END_OF_DAY + 2000, T0);
        await store.reserve('r2', [usage('c', 1)], END_OF_DAY + 2000, T0);
        await store.sweep(END_OF_DAY + 500);
        expect(await store.get(['a', 'b', 'c'], END_OF_DAY + 500)).toEqual([2, 2, 2]);
      });
    });

    describe('exactness under concurrency', () => {
      it('admits exactly floor(max / amount) of 1,000 concurrent reserves', async () => {
        const results = await Promise.all(
          Array.from({ length: 1000 }, (_, i) => store.reserve(`r${i}`, [usage('credits', 37, 10_000)], T0 + TTL, T0)),
        );
        const admitted = results.filter((r) => r.ok).length;
        expect(admitted).toBe(Math.floor(10_000 / 37));
        expect(await values('credits')).toEqual([37 * Math.floor(10_000 / 37)]);
        for (const r of results) if (!r.ok) expect(r).toEqual({ ok: false, failed: 0, value: 37 * admitted });
      });

      it('ends exact with three counters reserved and settled concurrently in random order', async () => {
        const random = seededRandom(20261125);
        const CREDITS_MAX = 20_000;
        const REQUESTS_MAX = 60;
        const N = 600;
        const ops = (worst: number): CounterOp[] => [
          usage('credits', worst, CREDITS_MAX),
          usage('requests', 1, REQUESTS_MAX, 'keep'),
          usage('lease', 1, 1, 'return'),
        ];
        let settledCredits = 0;
        let admitted = 0;
        const refusedBy = [0, 0, 0];

        async function request(i: number): Promise<void> {
          await yieldTurns(Math.floor(random() * 20));
          const worst = 1 + Math.floor(random() * 800);
          const actual = Math.floor(random() * (worst + 1));
          const o = ops(worst);
          const r: ReserveResult = await store.reserve(`r${i}`, o, T0 + TTL, T0);
          if (!r.ok) {
            // Refused only when that counter truly could not take it at that moment.
            const op = o[r.failed] as CounterOp;
            expect(r.value + op.amount).toBeGreaterThan(op.max as number);
            refusedBy[r.failed]!++;
            return;
          }
          admitted++;
          expect(r.values[2]).toBe(1); // never two leases at once
          expect(r.values[0]).toBeLessThanOrEqual(CREDITS_MAX);
          await yieldTurns(Math.floor(random() * 20));
          if (random() < 0.2) {
            expect(await store.release(`r${i}`)).toBe(true);
            admitted--; // released gives back its request count too
          } else {
            expect(await store.settle(`r${i}`, actual)).toBe(true);
            settledCredits += actual;
          }
        }

        await Promise.all(Array.from({ length: N }, (_, i) => request(i)));
        expect(await values('credits', 'requests', 'lease')).toEqual([settledCredits, admitted, 0]);
        // The scenario exercised every path: admissions, and refusals by the lease (others may vary).
        expect(admitted).toBeGreaterThan(0);
        expect(refusedBy[2]).toBeGreaterThan(0);
      });

      it('never lets a balance go below 0 under concurrent debits', async () => {
        await store.add('balance:a', 10_000, null);
        const ids = Array.from({ length: 500 }, (_, i) => `r${i}`);
        const results = await Promise.all(ids.map((id) => store.reserve(id, [balance('balance:a', 70)], T0 + TTL, T0)));
        const admitted = results.filter((r) => r.ok).length;
        expect(admitted).toBe(Math.floor(10_000 / 70));
        await Promise.all(ids.map((id, i) => store.settle(id, i % 71)));
        const charged = ids.reduce((s, _, i) => s + (results[i]?.ok ? i % 71 : 0), 0);
        expect(await values('balance:a')).toEqual([10_000 - charged]);
      });
    });
  });
}
