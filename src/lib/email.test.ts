import { describe, expect, it } from 'vitest';
import { emailAddress } from './email.js';

describe('emailAddress', () => {
  it('takes what a browser form takes, hosts without a dot included', () => {
    for (const e of ['dev@example.com', 'user+tag@ex.co.uk', 'dev@localhost', 'ops@corp', 'a@b.c']) {
      expect(emailAddress.safeParse(e).success, e).toBe(true);
    }
  });

  it('refuses what is not an address, and addresses past 254 characters', () => {
    for (const e of ['not-an-email', '@example.com', 'a@', 'a b@c.d', 'a@-b.c', `${'a'.repeat(250)}@b.cd`]) {
      expect(emailAddress.safeParse(e).success, e).toBe(false);
    }
  });
});
