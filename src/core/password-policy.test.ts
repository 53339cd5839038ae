import { describe, expect, it } from 'vitest';
import { weakPassword } from './password-policy.js';
import { newPassword } from './requests.js';

describe('weakPassword (what a password being set may not be)', () => {
  it('refuses the most common passwords, however cased, and common words with digits and symbols added', () => {
    for (const p of ['password', 'Password123', 'password123!', 'PASSW0RD', 'qwertyuiop', 'iloveyou', 'football2024!', 'letmein123', 'welcome1', 'Qwerty123', '1q2w3e4r', 'abcd1234', 'admin123', 'tollgate2026', 'sunshine 99']) {
      expect(weakPassword(p), p).toMatch(/most common/);
    }
  });

  it('refuses a character or a few repeated, and runs of consecutive characters', () => {
    for (const p of ['aaaaaaaa', '        ', '11111111', 'abababab', '12121212', '123123123', 'xyzxyzxyz']) expect(weakPassword(p), JSON.stringify(p)).toMatch(/repeats/);
    for (const p of ['12345678', '123456789', '0123456789', 'abcdefgh', '98765432', 'hgfedcba']) expect(weakPassword(p), p).toMatch(/consecutive/);
  });

  it("refuses the account's own email address, or the name before its @", () => {
    expect(weakPassword('alice.smith@example.com', 'Alice.Smith@example.com')).toMatch(/email/);
    expect(weakPassword('alice.smith', 'alice.smith@example.com')).toMatch(/email/);
    expect(weakPassword('alice.smith2026', 'alice.smith@example.com')).toMatch(/email/);
    expect(weakPassword('alice.smith', null)).toBeNull();
  });

  it('takes passphrases and uncommon passwords', () => {
    for (const p of ['correct horse battery', 'a new password', 'long-enough', 'cli password 1', 'second-password', 'Tr0ub4dor&3x', '𝄞𝄞𝄞𝄞x𝄞𝄞𝄞', 'forgotten password']) {
      expect(weakPassword(p, 'someone@example.com'), p).toBeNull();
    }
  });

  it('is part of the rule every new password is held to (sign-up, change, reset link, admin API, CLI)', () => {
    const issue = newPassword.safeParse('Password123').error?.issues[0];
    expect(issue?.message).toMatch(/^too easy to guess: it is one of the most common passwords/);
    expect(newPassword.safeParse('short').error?.issues[0]?.message).toBe('at least 8 characters');
    expect(newPassword.safeParse('correct horse battery').success).toBe(true);
  });
});
