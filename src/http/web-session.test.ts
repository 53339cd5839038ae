import type { FastifyReply } from 'fastify';
import { describe, expect, it } from 'vitest';
import { SessionEpochs, Sessions } from '../core/sessions.js';
import { ManualClock } from '../lib/clock.js';
import { MemoryCounterStore } from '../storage/memory/counters.js';
import { WebSessions } from './web-session.js';

/** The Set-Cookie values a WebSessions call wrote, through a reply that only records headers. */
async function cookiesOf(publicUrl: string, act: (web: WebSessions, reply: FastifyReply) => Promise<unknown> | void): Promise<string[]> {
  const clock = new ManualClock();
  const web = new WebSessions(new Sessions('secret', 3_600_000, clock), new SessionEpochs(new MemoryCounterStore(), clock), publicUrl);
  const headers: Record<string, unknown> = {};
  const reply = { header: (name: string, value: unknown) => (headers[name] = value) } as unknown as FastifyReply;
  await act(web, reply);
  return headers['set-cookie'] as string[];
}

describe('WebSessions cookies', () => {
  it('marks every cookie Secure behind an https publicUrl, and none behind http', async () => {
    for (const act of [(w: WebSessions, r: FastifyReply) => w.start(r, 'acc_1'), (w: WebSessions, r: FastifyReply) => w.issueCsrf(r, 'csrf', true), (w: WebSessions, r: FastifyReply) => w.end(r, 'acc_1')]) {
      const secure = await cookiesOf('https://gateway.example.com', act);
      expect(secure.length).toBeGreaterThan(0);
      for (const c of secure) expect(c).toMatch(/; Secure/);
      for (const c of await cookiesOf('http://localhost:8080', act)) expect(c).not.toMatch(/Secure/);
    }
  });
});
