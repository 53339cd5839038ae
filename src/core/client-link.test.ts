import { describe, expect, it } from 'vitest';
import { ClientConnection } from './client-link.js';

describe('ClientConnection', () => {
  it('tells each listener once, in order, when the client goes', () => {
    const link = new ClientConnection();
    const calls: string[] = [];
    link.onGone(() => calls.push('a'));
    link.onGone(() => calls.push('b'));
    expect(link.gone).toBe(false);
    link.markGone();
    link.markGone();
    expect(link.gone).toBe(true);
    expect(calls).toEqual(['a', 'b']);
  });

  it('calls a listener added after the client went at once', () => {
    const link = new ClientConnection();
    link.markGone();
    let called = 0;
    link.onGone(() => called++);
    expect(called).toBe(1);
  });

  it('never calls a listener that unsubscribed', () => {
    const link = new ClientConnection();
    let called = 0;
    const off = link.onGone(() => called++);
    off();
    off();
    link.markGone();
    expect(called).toBe(0);
  });
});
