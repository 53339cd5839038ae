import { z } from 'zod';

/**
 * An email address as the web app's sign-up form accepts it: HTML's `<input type="email">` rule
 * (https://html.spec.whatwg.org/multipage/input.html#valid-e-mail-address), which takes a host
 * without a dot. zod's default wants a public-looking domain, so `dev@localhost` or `ops@corp` — the
 * addresses of a gateway self-hosted inside an organisation — passed the browser and then got a
 * 400 from the server. One rule for sign-up, the admin API and the CLI. 254: RFC 5321's path limit.
 */
export const emailAddress = z.email({ pattern: z.regexes.html5Email }).max(254);
