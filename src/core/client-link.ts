// Whether the HTTP client is still there. The request path needs two things of it — has the client
// gone, and say when it goes — and nothing else of an AbortSignal, whose machinery (a controller,
// an EventTarget, a listener object per subscription, a DOMException on abort) cost about 4 % of
// the gateway's CPU per request (bench/README.md).

export interface ClientLink {
  /** True once the client went away before its response was complete. */
  readonly gone: boolean;
  /** Calls `listener` once when the client goes (at once if it has gone). Returns the unsubscribe. */
  onGone(listener: () => void): () => void;
}

/** The link the HTTP layer holds: it calls `markGone()` when the connection closes early. */
export class ClientConnection implements ClientLink {
  gone = false;
  // At most one listener in practice (a stream's relay), so no Set until a second arrives.
  private listeners: Array<() => void> | undefined;

  onGone(listener: () => void): () => void {
    if (this.gone) {
      listener();
      return noop;
    }
    (this.listeners ??= []).push(listener);
    return () => {
      const i = this.listeners?.indexOf(listener) ?? -1;
      if (i >= 0) this.listeners!.splice(i, 1);
    };
  }

  markGone(): void {
    if (this.gone) return;
    this.gone = true;
    const listeners = this.listeners;
    this.listeners = undefined;
    if (listeners) for (const l of listeners) l();
  }
}

function noop(): void {}
