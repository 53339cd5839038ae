// Until the web app wires its session in, Playground requests enter the same request path with
// surface `playground`: these helpers call the real gateway core the way the web app will.
import { ClientConnection, type ClientLink } from '../../src/core/client-link.js';
import type { RequestContext } from '../../src/core/gateway.js';
import type { TestGateway } from './gateway.js';

let seq = 0;

export async function playgroundContext(t: TestGateway, accountId: string, client: ClientLink = new ClientConnection()): Promise<RequestContext> {
  const account = await t.gw.storage.accounts.get(accountId);
  if (!account) throw new Error(`no account ${accountId}`);
  return {
    requestId: `00000000-0000-4000-8000-${String(++seq).padStart(12, '0')}`,
    principal: { account, key: null, surface: 'playground' },
    client,
    path: '/app/api/playground/chat',
  };
}

/** A Playground chat; resolves to the status code (200, or the refusal's status) and error code. */
export async function playgroundChat(t: TestGateway, accountId: string, model = 'gpt-4o-mini'): Promise<{ status: number; code?: string; headers?: Record<string, string> }> {
  const ctx = await playgroundContext(t, accountId);
  try {
    await t.gw.gateway.chat(ctx, { model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 512 });
    return { status: 200 };
  } catch (err) {
    const e = err as { status?: number; code?: string; headers?: Record<string, string> };
    if (e.status === undefined) throw err;
    return { status: e.status, ...(e.code !== undefined && { code: e.code }), ...(e.headers && { headers: e.headers }) };
  }
}
