// What every SQL store's versioned migrations share: the shape of one step, and the refusal to
// open a database written by a newer Tollgate.

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export class SchemaTooNewError extends Error {
  constructor(
    readonly found: number,
    readonly known: number,
  ) {
    super(
      `database schema version ${found} is newer than this Tollgate knows (${known}); ` +
        'upgrade Tollgate, or point storage.url at another database',
    );
    this.name = 'SchemaTooNewError';
  }
}
