import { describe, expect, it } from 'vitest';
import { ManualClock } from '../lib/clock.js';
import { createHmac } from 'node:crypto';
import { MemoryCounterStore } from '../storage/memory/counters.js';
import { SessionEpochs, Sessions, equal } from './sessions.js';

const HOUR = 3_600_000;

describe('sessions', () => {
  const clock = new ManualClock();
  const sessions = new Sessions('s3cret', 168 * HOUR, clock);

  it('issues a token that verifies to its account until it expires', () => {
    const { token, session } = sessions.issue('acct_abc', 0);
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(Buffer.from(token.split('.')[0]!, 'base64url').toString()).toBe(`acct_abc.${clock.now()}.${clock.now() + 168 * HOUR}.0`);
    expect(sessions.verify(token)).toEqual(session);
    clock.advance(168 * HOUR - 1);
    expect(sessions.verify(token)?.accountId).toBe('acct_abc');
    clock.advance(1);
    expect(sessions.verify(token)).toBeNull();
  });

  it('refuses tampered, foreign and malformed tokens', () => {
    const { token } = sessions.issue('acct_abc', 0);
    const [payload, mac] = token.split('.') as [string, string];
    const forged = Buffer.from(`acct_other.${clock.now()}.${clock.now() + HOUR}.0`).toString('base64url');
    expect(sessions.verify(`${forged}.${mac}`)).toBeNull();
    expect(sessions.verify(`${payload}.${mac.slice(0, -1)}${mac.endsWith('A') ? 'B' : 'A'}`)).toBeNull();
    expect(new Sessions('other', HOUR, clock).verify(token)).toBeNull();
    for (const bad of [undefined, '', '.', 'abc', `${payload}.`, `.${mac}`, 'x'.repeat(600)]) expect(sessions.verify(bad)).toBeNull();
  });

  it('makes reset tokens bound to the password they were made for, which pass for no session (nor a session for one)', () => {
    const expiresAt = clock.now() + HOUR;
    const token = sessions.issueReset('acct_abc', { passwordHash: 'scrypt$hash-1', email: 'owner@example.com' }, expiresAt);
    const reset = sessions.readReset(token);
    expect(reset?.accountId).toBe('acct_abc');
    expect(sessions.resetMatches(reset!, { passwordHash: 'scrypt$hash-1', email: 'owner@example.com' })).toBe(true);
    expect(sessions.resetMatches(reset!, { passwordHash: 'scrypt$hash-2', email: 'owner@example.com' })).toBe(false);
    expect(sessions.resetMatches(reset!, { passwordHash: null, email: 'owner@example.com' })).toBe(false);
    // The account handed on to another address (or closed: no address) keeps none of its links.
    expect(sessions.resetMatches(reset!, { passwordHash: 'scrypt$hash-1', email: 'next@example.com' })).toBe(false);
    expect(sessions.resetMatches(reset!, { passwordHash: 'scrypt$hash-1', email: null })).toBe(false);
    expect(Buffer.from(token.split('.')[0]!, 'base64url').toString()).not.toContain('owner@');
    // The token shows nothing of the hash.
    expect(Buffer.from(token.split('.')[0]!, 'base64url').toString()).not.toContain('hash-1');
    // A reset token is no session token, and the other way round; another secret's is neither.
    expect(sessions.verify(token)).toBeNull();
    expect(sessions.readReset(sessions.issue('acct_abc', 0).token)).toBeNull();
    expect(new Sessions('other', HOUR, clock).readReset(token)).toBeNull();
    const [payload] = token.split('.') as [string];
    const other = Buffer.from(Buffer.from(payload, 'base64url').toString().replace('acct_abc', 'acct_xyz')).toString('base64url');
    expect(sessions.readReset(`${other}.${token.split('.')[1]}`)).toBeNull();
    for (const bad of ['', '.', 'abc', `${payload}.`, 'x'.repeat(600)]) expect(sessions.readReset(bad)).toBeNull();
    clock.advance(HOUR);
    expect(sessions.readReset(token)).toBeNull();
  });

  it('carries the account’s session epoch; a three-part token (before epochs) no longer verifies', () => {
    const { token } = sessions.issue('acct_abc', 7);
    expect(sessions.verify(token)?.epoch).toBe(7);
    const legacy = Buffer.from(`acct_abc.${clock.now()}.${clock.now() + HOUR}`).toString('base64url');
    expect(sessions.verify(`${legacy}.${createHmac('sha256', 's3cret').update(legacy).digest('base64url')}`)).toBeNull();
  });

  it('SessionEpochs: ending the sessions moves the account’s epoch on, once per call, per account', async () => {
    const epochs = new SessionEpochs(new MemoryCounterStore(), clock);
    expect(await epochs.current('acct_a')).toBe(0);
    await Promise.all([epochs.end('acct_a'), epochs.end('acct_a')]);
    expect(await epochs.current('acct_a')).toBe(2);
    expect(await epochs.current('acct_b')).toBe(0);
  });

  it('binds the CSRF token to the session and makes anonymous ones random', () => {
    const a = sessions.issue('acct_a', 0).token;
    clock.advance(1);
    const b = sessions.issue('acct_a', 0).token;
    expect(sessions.csrfFor(a)).toBe(sessions.csrfFor(a));
    expect(sessions.csrfFor(a)).not.toBe(sessions.csrfFor(b));
    expect(sessions.anonymousCsrf()).not.toBe(sessions.anonymousCsrf());
    expect(sessions.anonymousCsrf()).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('compares in constant time, any lengths', () => {
    expect(equal('abc', 'abc')).toBe(true);
    expect(equal('abc', 'abd')).toBe(false);
    expect(equal('abc', 'abcd')).toBe(false);
  });

  it('needs a secret', () => {
    expect(() => new Sessions('', HOUR, clock)).toThrow();
  });
});
