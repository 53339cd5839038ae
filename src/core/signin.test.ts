import { describe, expect, it } from 'vitest';
import { ManualClock } from '../lib/clock.js';
import { MemoryCounterStore } from '../storage/memory/counters.js';
import type { AccountService } from './accounts.js';
import { addressBucket, SigninService } from './signin.js';

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

describe('SigninService attempt limits', () => {
  it("counts an email's attempts however its letters are cased: each casing is not a fresh allowance", async () => {
    const noAccount = { findByEmail: async () => null, passwordHash: async () => null } as unknown as AccountService;
    const signin = new SigninService(noAccount, new MemoryCounterStore(), new ManualClock(), { attemptsPerMinute: 2, wrongPasswordDelayMs: 0, sleep: async () => {} });
    // From different addresses, so only the per-email count can refuse.
    const attempt = (email: string, i: number) => signin.signIn(email, 'guess', `203.0.113.${i}`, `a${i}`).catch((err: { code: string }) => err.code);
    expect(await attempt('alice@example.com', 1)).toBe('invalid_credentials');
    expect(await attempt('Alice@example.com', 2)).toBe('invalid_credentials');
    expect(await attempt('ALICE@example.com', 3)).toBe('too_many_signin_attempts');
  });

  it('sign-up is open by default (10 an hour) and closed only at signupsPerHour 0', () => {
    const service = (signupsPerHour?: number) =>
      new SigninService({} as AccountService, new MemoryCounterStore(), new ManualClock(), { attemptsPerMinute: 2, wrongPasswordDelayMs: 0, ...(signupsPerHour !== undefined && { signupsPerHour }) });
    expect(service().signupOpen).toBe(true);
    expect(service(1).signupOpen).toBe(true);
    expect(service(0).signupOpen).toBe(false);
  });
});
