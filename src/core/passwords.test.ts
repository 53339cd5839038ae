import { scryptSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { dummyHash, hashPassword, needsRehash, verifyPassword } from './passwords.js';

describe('passwords', () => {
  it('hashes as scrypt$N$r$p$salt$hash with a fresh salt each time', async () => {
    const a = await hashPassword('correct horse');
    const b = await hashPassword('correct horse');
    expect(a).toMatch(/^scrypt\$16384\$8\$5\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    const [, , , , salt, key] = a.split('$');
    expect(Buffer.from(salt!, 'base64')).toHaveLength(16);
    expect(Buffer.from(key!, 'base64')).toHaveLength(64);
    expect(a).not.toBe(b);
  });

  it('verifies the right password and refuses a wrong one', async () => {
    const h = await hashPassword('correct horse');
    expect(await verifyPassword('correct horse', h)).toBe(true);
    expect(await verifyPassword('correct horsE', h)).toBe(false);
    expect(await verifyPassword('', h)).toBe(false);
  });

  it('honours the parameters stored with the hash', async () => {
    const h = await hashPassword('pw12345678');
    const parts = h.split('$');
    // A hash made with other parameters does not verify under these.
    expect(await verifyPassword('pw12345678', ['scrypt', '1024', ...parts.slice(2)].join('$'))).toBe(false);
    // One made before p went from 1 to 5 still verifies by its own parameters.
    const salt = Buffer.alloc(16, 7);
    const old = `scrypt$16384$8$1$${salt.toString('base64')}$${scryptSync('pw12345678', salt, 64, { N: 16384, r: 8, p: 1 }).toString('base64')}`;
    expect(await verifyPassword('pw12345678', old)).toBe(true);
    expect(await verifyPassword('wrong-password', old)).toBe(false);
  });

  it('needsRehash: a hash of other parameters than today\'s is due for replacement', async () => {
    expect(needsRehash(await hashPassword('pw12345678'))).toBe(false);
    expect(needsRehash(`scrypt$16384$8$1$${Buffer.alloc(16).toString('base64')}$${'A'.repeat(88)}`)).toBe(true);
    expect(needsRehash(`scrypt$1048576$8$5$${Buffer.alloc(16).toString('base64')}$${'A'.repeat(88)}`)).toBe(true);
  });

  it('refuses malformed and hostile hashes without throwing', async () => {
    for (const bad of ['', 'bcrypt$x', 'scrypt$16384$8$1$$', 'scrypt$abc$8$1$c2FsdA==$a2V5', 'scrypt$1073741824$8$1$c2FsdHNhbHRzYWx0c2FsdA==$' + 'A'.repeat(88), 'scrypt$1000$8$1$c2FsdHNhbHRzYWx0c2FsdA==$' + 'A'.repeat(88)]) {
      expect(await verifyPassword('x', bad), bad).toBe(false);
    }
  });

  it('keeps one dummy hash for unknown emails', async () => {
    expect(await dummyHash()).toBe(await dummyHash());
    expect(await verifyPassword('anything', await dummyHash())).toBe(false);
  });
});
