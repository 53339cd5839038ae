// The web app's pages (docs/web-api.md "Pages"): the built SPA from web/dist. Assets are public and
// cached for a year (Vite names them by content hash); every page path answers index.html, which
// is never cached so a deploy shows at once. Pages other than sign-in/up need a session (302).
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { WebSessions } from '../web-session.js';

const PUBLIC_PAGES = ['/app/signin', '/app/signup', '/app/reset'];

/**
 * Headers of every page. The page is never framed (clickjacking the Keys or Billing page), runs only
 * its own scripts and talks only to its own origin; images may come from anywhere, since a model's
 * pictures are links to its provider's storage (or data: URLs for b64_json). Styles are set through
 * the DOM, never inline markup.
 */
const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src * data: blob:; connect-src 'self'; " +
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
};

/**
 * Over https (server.publicUrl), the browser is told to come back over https only, for a year: a
 * first http:// link or a network that strips TLS then never gets a page in clear. Not for
 * subdomains: the gateway may be one host of a domain whose other hosts the operator serves otherwise.
 * https://developer.mozilla.org/en-US/docs/Web/HTTP/Reference/Headers/Strict-Transport-Security
 */
export const HSTS = 'max-age=31536000';

/** What every answer of the web app (pages, assets, its API) carries, whatever its type. */
export function webAppHeaders(secure: boolean): Record<string, string> {
  return { 'x-content-type-options': 'nosniff', ...(secure && { 'strict-transport-security': HSTS }) };
}
const PRIVATE_PAGES = ['/app', '/app/', '/app/playground', '/app/keys', '/app/usage', '/app/billing', '/app/account'];
const PLAYGROUND = new Set(['/app', '/app/', '/app/playground']);

const NOT_BUILT = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tollgate</title></head>
<body><h1>The web app is not built</h1>
<p>Build it with <code>npm run build</code> (it writes <code>web/dist/</code>), then reload this page.
The API under <code>/v1</code> works without it.</p></body></html>
`;

/** web/dist of this checkout: found by walking up from this file to the package root (src/ or dist/src/). */
export function defaultWebDist(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json'))) return join(dir, 'web', 'dist');
    dir = dirname(dir);
  }
  return join(process.cwd(), 'web', 'dist');
}

export function appPageRoutes(web: WebSessions, distDir: string): FastifyPluginAsync {
  const indexFile = join(distDir, 'index.html');
  const common = webAppHeaders(web.secure);

  return async (app) => {
    // @fastify/send refuses a path that leaves the root or names a directory (403) or holds a NUL
    // (400) with an HTTP error: no file is there, so the answer is the 404 of a missing one, not a
    // logged 500. Set before the plugin registers, so its routes inherit it.
    app.setErrorHandler((err: { statusCode?: number }, _req, reply) => {
      if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) return reply.callNotFound();
      throw err;
    });
    await app.register(fastifyStatic, {
      root: join(distDir, 'assets'),
      prefix: '/app/assets/',
      decorateReply: false,
      index: false,
      // Files are looked up per request, so a build made while the server runs is served.
      wildcard: true,
      cacheControl: true,
      immutable: true,
      maxAge: '365d',
      setHeaders: (res) => {
        for (const [name, value] of Object.entries(common)) res.setHeader(name, value);
      },
    });

    /**
     * `signIn`: where a visitor without a session is sent. A signed-in page other than the
     * Playground (where sign-in leads anyway) is named in `next`, for the app to open after sign-in:
     * the links in the gateway's errors (…/app/billing, …/app/keys) led a signed-out developer to
     * the Playground instead.
     */
    const page = (signIn: string | null, status = 200) => async (req: FastifyRequest, reply: FastifyReply) => {
      if (signIn !== null && !(await web.read(req))) return reply.redirect(signIn, 302);
      reply.code(status);
      let html: string;
      try {
        html = await readFile(indexFile, 'utf8');
      } catch {
        html = NOT_BUILT;
      }
      return reply.headers(PAGE_HEADERS).headers(common).header('cache-control', 'no-cache').type('text/html; charset=utf-8').send(html);
    };
    for (const path of PUBLIC_PAGES) app.get(path, page(null));
    for (const path of PRIVATE_PAGES) {
      app.get(path, page(PLAYGROUND.has(path) ? '/app/signin' : `/app/signin?next=${encodeURIComponent(path)}`));
    }
    // A page's address with a trailing slash (`/app/keys/`) goes to the page. Any other address
    // under /app that is neither the API nor an asset is the app's own "Page not found", with a
    // 404: a person who typed or followed a wrong address got the API's JSON error instead.
    const pages = [...PUBLIC_PAGES, ...PRIVATE_PAGES];
    for (const path of pages) {
      if (path.endsWith('/') || pages.includes(`${path}/`)) continue;
      app.get(`${path}/`, async (req, reply) => reply.redirect(path + req.url.slice(path.length + 1), 301));
    }
    const notAPage = page(null, 404);
    app.get('/app/*', async (req, reply) => {
      if (req.url.startsWith('/app/api/') || req.url.startsWith('/app/assets/')) return reply.callNotFound();
      return notAPage(req, reply);
    });
    // A person opening the gateway's address in a browser lands in the web app.
    app.get('/', async (_req, reply) => reply.redirect('/app'));
  };
}
