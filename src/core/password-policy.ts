// What a password being set may not be, beyond its length: the guesses an attacker tries first.
// NIST SP 800-63B §3.1.1.2 (https://pages.nist.gov/800-63-4/sp800-63b.html#passwordver): a password
// being set is compared against "a blocklist that contains values known to be commonly used,
// expected, or compromised", repetitive or sequential characters and context-specific words (the
// service's name, the user's own address) included — not against composition rules. The sign-in
// limits (core/signin.ts) still let a determined guesser through a few hundred guesses a day at
// one account, and those guesses come from the top of exactly such lists.

/**
 * The most common passwords of 8 characters or more (the public breach corpora's top entries), and
 * the common words they are made from: a password that is one of these, or one of them followed by
 * digits and punctuation (`football2024!`), is refused.
 */
const COMMON = new Set([
  // Words and keyboard runs the common ones are built on (matched with a tail of digits/symbols).
  'password', 'passw0rd', 'p@ssw0rd', 'p@ssword', 'pass', 'qwerty', 'qwertz', 'azerty', 'qwertyuiop', 'azertyuiop',
  'asdfghjkl', 'asdf', 'zxcvbnm', 'qwer', 'abc', 'abcd', 'abcdef', 'abcdefg', 'abcdefgh', 'letmein', 'welcome', 'iloveyou',
  'admin', 'administrator', 'root', 'login', 'guest', 'user', 'test', 'testtest', 'passpass', 'secret', 'changeme',
  'default', 'hello', 'helloworld', 'monkey', 'dragon', 'master', 'shadow', 'sunshine', 'princess', 'football',
  'baseball', 'basketball', 'soccer', 'hockey', 'superman', 'batman', 'starwars', 'trustno1', 'whatever', 'freedom',
  'computer', 'internet', 'michael', 'jennifer', 'jordan', 'liverpool', 'chelsea', 'arsenal', 'charlie', 'mustang',
  'samsung', 'google', 'pokemon', 'minecraft', 'matrix', 'corvette', 'blink182', 'loveme', 'lovely', 'iloveu',
  'fuckyou', 'access', 'tollgate', 'openai', 'chatgpt',
  // Whole ones that no rule below catches.
  '1q2w3e4r', '1q2w3e4r5t', '1q2w3e4r5t6y', '1qaz2wsx', 'zaq12wsx', 'q1w2e3r4', 'q1w2e3r4t5', 'qwe123qwe',
  '123qweasd', 'qweasdzxc', '1234qwer', 'a1b2c3d4', 'aa123456', 'abc12345', 'abcd1234', 'qwerty123', 'qwer1234',
  'asdf1234', 'zxcvbnm1', '12341234', '11223344', '112233445566', '123321123', '123654789', '147258369', '159357456',
  '121212121', '12121212', '123123123', '1234512345', '0987654321', '147852369', '741852963', '789456123', '1q2w3e',
]);

/** A tail of digits and punctuation people add to a word to pass a composition rule. */
const DECORATION = /[\d\s!@#$%^&*()_+\-=.,;:?~]+$/;

/** Whether the characters go up or down one code point at a time (`12345678`, `abcdefgh`, `98765432`). */
function sequential(p: string): boolean {
  const step = p.charCodeAt(1) - p.charCodeAt(0);
  if (step !== 1 && step !== -1) return false;
  for (let i = 2; i < p.length; i++) if (p.charCodeAt(i) - p.charCodeAt(i - 1) !== step) return false;
  return true;
}

/** Whether the password is a few characters over and over (`aaaaaaaa`, `abababab`, `123123123`). */
function repetitive(p: string): boolean {
  for (let unit = 1; unit <= 3; unit++) {
    const head = p.slice(0, unit);
    if (head.repeat(Math.ceil(p.length / unit)).slice(0, p.length) === p) return true;
  }
  return false;
}

/**
 * Why `password` may not be set, or null when it may. `email`: the account's, whose address or
 * name before the `@` is refused as a password too.
 */
export function weakPassword(password: string, email?: string | null): string | null {
  const p = password.normalize('NFKC').toLowerCase();
  const compact = p.replace(/\s+/g, '');
  if (compact.length === 0 || repetitive(compact)) return 'it repeats the same few characters';
  if (sequential(compact)) return 'it is a run of consecutive characters';
  const stem = p.replace(DECORATION, '');
  if (COMMON.has(p) || COMMON.has(compact) || (stem !== '' && COMMON.has(stem))) {
    return 'it is one of the most common passwords, which are guessed first';
  }
  if (email) {
    const address = email.normalize('NFKC').toLowerCase();
    const name = address.split('@')[0] ?? '';
    if (p === address || (name.length >= 4 && (p === name || stem === name))) return 'it is the email address it signs in with';
  }
  return null;
}

/** The refusal's wording (API `invalid_request` detail, CLI message). */
export function weakPasswordMessage(why: string): string {
  return `too easy to guess: ${why}; choose a longer phrase of your own`;
}
