// PostgreSQL's text cannot hold U+0000: a query given such a string fails (SQLSTATE 22021) rather
// than match nothing. No row can hold one, so a lookup by it — an id in a client's path, an email
// typed at sign-in — is answered "none" without asking, as SQLite answers it, not with a 500.

/** Whether no text column can equal `text`. */
export function unstorable(text: string): boolean {
  return text.includes('\u0000');
}
