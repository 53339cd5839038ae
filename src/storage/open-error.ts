/**
 * The database itself refused (SQLite: a directory, a read-only file, not a database; PostgreSQL:
 * no server at the address, a wrong password, a database that does not exist, no right to create
 * tables): the operator's to fix, said in one line that names which database. The drivers' own
 * messages name none ("unable to open database file", `database "x" does not exist`) and came
 * with a stack trace into the driver.
 */
export class DatabaseOpenError extends Error {
  constructor(what: string, cause: Error) {
    super(`cannot open the ${what}: ${cause.message}`, { cause });
    this.name = 'DatabaseOpenError';
  }
}

/** A postgres:// URL to show: its password replaced (it is a secret, and logs and terminals keep lines). */
export function shownUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return 'storage.url';
  }
}
