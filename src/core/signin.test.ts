import { describe, expect, it } from 'vitest';
import { ManualClock } from '../lib/clock.js';
import { MemoryCounterStore } from '../storage/memory/counters.js';
import type { AccountInfo, AccountService } from './accounts.js';
import { hashPassword } from './passwords.js';
import { addressBucket, SigninService, siteBucket } from './signin.js';

describe('addressBucket (what the per-address sign-in and sign-up limits count)', () => {
  it('counts an IPv6 address as its /64, however it is written', () => {
    for (const a of ['2001:db8:1:2::1', '2001:DB8:1:2:ffff:ffff:ffff:ffff', '2001:0db8:0001:0002:0:0:0:9', '2001:db8:1:2::1.2.3.4', '2001:db8:1:2::7%eth0']) {
      expect(addressBucket(a), a).toBe('2001:db8:1:2::/64');
    }
    expect(addressBucket('::1')).toBe('0:0:0:0::/64');
    expect(addressBucket('fe80::1')).toBe('fe80:0:0:0::/64');
    expect(addressBucket('2001:db8::')).toBe('2001:db8:0:0::/64');
  });

  it('counts an IPv4 address, mapped into IPv6 or not, as itself', () => {
    expect(addressBucket('203.0.113.7')).toBe('203.0.113.7');
    expect(addressBucket('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(addressBucket('::FFFF:cb00:7107')).toBe('203.0.113.7');
    expect(addressBucket('0:0:0:0:0:ffff:203.0.113.8')).toBe('203.0.113.8');
  });

  it('leaves anything else as it is', () => {
    expect(addressBucket('unknown')).toBe('unknown');
  });
});

describe('siteBucket (the IPv6 /48 one customer holds)', () => {
  it('counts an IPv6 address as its /48 as well; IPv4, mapped or not, has none', () => {
    for (const a of ['2001:db8:1:2::1', '2001:db8:1:ffff::9', '2001:0DB8:0001::%eth0']) expect(siteBucket(a), a).toBe('2001:db8:1::/48');
    expect(siteBucket('203.0.113.7')).toBeUndefined();
    expect(siteBucket('::ffff:203.0.113.7')).toBeUndefined();
    expect(siteBucket('unknown')).toBeUndefined();
  });
});

describe('SigninService sign-ups per site', () => {
  it('an IPv6 customer cannot sign up without end by moving from /64 to /64 of its /48: 4x one address\'s share', async () => {
    let made = 0;
    const accounts = { create: async () => ({ id: `acc_${++made}` }) } as unknown as AccountService;
    const signin = new SigninService(accounts, new MemoryCounterStore(), new ManualClock(), { attemptsPerMinute: 5, signupsPerHour: 2, wrongPasswordDelayMs: 0, sleep: async () => {} });
    const signUp = (address: string, i: number) => signin.signUp(`u${i}@example.com`, 'correct horse battery', address, `s${i}`).then(() => 'ok', (err: { code: string }) => err.code);
    const results: string[] = [];
    // Ten /64s of one /48, one sign-up each: 8 (4 x 2) pass, then the site is spent for the hour.
    for (let i = 0; i < 10; i++) results.push(await signUp(`2001:db8:7:${i.toString(16)}::1`, i));
    expect(results).toEqual([...Array(8).fill('ok'), 'too_many_signups', 'too_many_signups']);
    // Another site, and IPv4, are not.
    expect(await signUp('2001:db8:8::1', 20)).toBe('ok');
    expect(await signUp('203.0.113.9', 21)).toBe('ok');
  });

  it("sign-in attempts too: a site's /64s together make 4x one address's attempts a minute", async () => {
    const noAccount = { findByEmail: async () => null, passwordHash: async () => null } as unknown as AccountService;
    const signin = new SigninService(noAccount, new MemoryCounterStore(), new ManualClock(), { attemptsPerMinute: 2, wrongPasswordDelayMs: 0, sleep: async () => {} });
    // One address may make 8 (4 x 2) a minute; its site 32. A fresh /64 and email each time.
    const results: string[] = [];
    for (let i = 0; i < 34; i++) {
      results.push(await signin.signIn(`v${i}@example.com`, 'guess', `2001:db8:9:${i.toString(16)}::1`, `g${i}`).then(() => 'ok', (err: { code: string }) => err.code));
    }
    expect(results.filter((r) => r === 'invalid_credentials')).toHaveLength(32);
    expect(results.slice(32)).toEqual(['too_many_signin_attempts', 'too_many_signin_attempts']);
    // 32 wrong sign-ins each run a real scrypt against the dummy hash (the timing of a known email):
    // 30 s was not enough on a loaded 2-core machine (a full run beside other work, 2026-12-06).
  }, 120_000);
});

describe('SigninService attempt limits', () => {
  it("counts an email's attempts however its letters are cased: each casing is not a fresh allowance", async () => {
    const noAccount = { findByEmail: async () => null, passwordHash: async () => null } as unknown as AccountService;
    const signin = new SigninService(noAccount, new MemoryCounterStore(), new ManualClock(), { attemptsPerMinute: 2, wrongPasswordDelayMs: 0, sleep: async () => {} });
    // From one address: its count for this email is what refuses.
    const attempt = (email: string, i: number) => signin.signIn(email, 'guess', '203.0.113.1', `a${i}`).catch((err: { code: string }) => err.code);
    expect(await attempt('alice@example.com', 1)).toBe('invalid_credentials');
    expect(await attempt('Alice@example.com', 2)).toBe('invalid_credentials');
    expect(await attempt('ALICE@example.com', 3)).toBe('too_many_signin_attempts');
  });

  it("one address cannot lock an account out: its wrong guesses spend its own allowance, the owner's right password still works elsewhere", async () => {
    const owner = { id: 'acc_1', email: 'alice@example.com', suspendedAt: null } as unknown as AccountInfo;
    const stored = await hashPassword('right password');
    const accounts = { findByEmail: async () => owner, passwordHash: async () => stored } as unknown as AccountService;
    const signin = new SigninService(accounts, new MemoryCounterStore(), new ManualClock(), { attemptsPerMinute: 2, wrongPasswordDelayMs: 0, sleep: async () => {} });
    const attempt = (password: string, address: string, i: number) =>
      signin.signIn('alice@example.com', password, address, `a${i}`).then(() => 'ok', (err: { code: string }) => err.code);
    expect(await attempt('guess 1', '203.0.113.66', 1)).toBe('invalid_credentials');
    expect(await attempt('guess 2', '203.0.113.66', 2)).toBe('invalid_credentials');
    // The attacker's address is out of attempts for this email, even with the right password…
    expect(await attempt('right password', '203.0.113.66', 3)).toBe('too_many_signin_attempts');
    // …and the owner, elsewhere, is not.
    expect(await attempt('right password', '198.51.100.7', 4)).toBe('ok');
  });

  it('wrong guesses spread over many addresses meet the email-wide ceiling (4x the limit); right passwords do not count toward it', async () => {
    const owner = { id: 'acc_1', email: 'alice@example.com', suspendedAt: null } as unknown as AccountInfo;
    const stored = await hashPassword('right password');
    const accounts = { findByEmail: async () => owner, passwordHash: async () => stored } as unknown as AccountService;
    const signin = new SigninService(accounts, new MemoryCounterStore(), new ManualClock(), { attemptsPerMinute: 2, wrongPasswordDelayMs: 0, sleep: async () => {} });
    const attempt = (password: string, i: number) =>
      signin.signIn('alice@example.com', password, `203.0.113.${i}`, `a${i}`).then(() => 'ok', (err: { code: string }) => err.code);
    // Three right sign-ins: were they counted, the sixth wrong guess below would be refused.
    for (let i = 1; i <= 3; i++) expect(await attempt('right password', i)).toBe('ok');
    // Eight wrong guesses from eight more addresses, one each, all answered (the ceiling is 8)…
    for (let i = 4; i <= 11; i++) expect(await attempt('guess', i)).toBe('invalid_credentials');
    // …and then the email is closed for the minute, from a fresh address too.
    expect(await attempt('right password', 12)).toBe('too_many_signin_attempts');
  });

  it('guesses fired at once cannot pass the email-wide ceiling: each is reserved before its password is checked', async () => {
    const accounts = { findByEmail: async () => null, passwordHash: async () => null } as unknown as AccountService;
    const signin = new SigninService(accounts, new MemoryCounterStore(), new ManualClock(), { attemptsPerMinute: 2, wrongPasswordDelayMs: 0, sleep: async () => {} });
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => signin.signIn('bob@example.com', 'guess', `203.0.113.${i + 1}`, `p${i}`).then(() => 'ok', (err: { code: string }) => err.code)),
    );
    expect(results.filter((r) => r === 'invalid_credentials')).toHaveLength(8);
    expect(results.filter((r) => r === 'too_many_signin_attempts')).toHaveLength(32);
  });

  it("one address's wrong guesses at one email are capped per hour too (failuresPerHour), not only per minute; the owner elsewhere is not", async () => {
    const owner = { id: 'acc_1', email: 'alice@example.com', suspendedAt: null } as unknown as AccountInfo;
    const stored = await hashPassword('right password');
    const accounts = { findByEmail: async () => owner, passwordHash: async () => stored } as unknown as AccountService;
    const clock = new ManualClock(Date.parse('2026-12-06T10:00:00Z'));
    const signin = new SigninService(accounts, new MemoryCounterStore(), clock, { attemptsPerMinute: 5, failuresPerHour: 6, wrongPasswordDelayMs: 0, sleep: async () => {} });
    let n = 0;
    const attempt = (password: string, address = '203.0.113.66') =>
      signin.signIn('alice@example.com', password, address, `a${++n}`).then(() => 'ok', (err: { code: string; headers?: Record<string, string> }) => `${err.code}${err.headers?.['retry-after'] ? ` ${err.headers['retry-after']}` : ''}`);
    // Three wrong guesses a minute (under the minute's 5), two minutes running: the hour's 6.
    for (let minute = 0; minute < 2; minute++) {
      for (let i = 0; i < 3; i++) expect(await attempt(`guess ${minute}.${i}`)).toBe('invalid_credentials');
      clock.advance(60_000);
    }
    // A fresh minute, yet this address is closed for this email until the hour ends (58 min left)…
    expect(await attempt('guess again')).toBe('too_many_signin_attempts 3480');
    expect(await attempt('right password')).toBe('too_many_signin_attempts 3480');
    // …while the owner signs in from their own address, and right passwords spend nothing of it.
    expect(await attempt('right password', '198.51.100.7')).toBe('ok');
    clock.advance(58 * 60_000);
    expect(await attempt('right password')).toBe('ok');
  });

  it('sign-up is open by default (10 an hour) and closed only at signupsPerHour 0', () => {
    const service = (signupsPerHour?: number) =>
      new SigninService({} as AccountService, new MemoryCounterStore(), new ManualClock(), { attemptsPerMinute: 2, wrongPasswordDelayMs: 0, ...(signupsPerHour !== undefined && { signupsPerHour }) });
    expect(service().signupOpen).toBe(true);
    expect(service(1).signupOpen).toBe(true);
    expect(service(0).signupOpen).toBe(false);
  });
});
