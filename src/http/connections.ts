// The server's connections, for a shutdown that does not wait on connections carrying no request.
// Node's closeIdleConnections() closes keep-alive connections between requests, but not one that
// has not begun a request yet (Node counts it active from its first byte's deadline): a load
// balancer's TCP health check, a browser's preconnect, a client's spare pool socket. Each held a
// graceful close until Node's request timeout gave up on it, 60–90 s (a reviewer's shutdown after a
// burst of aborted requests took 67 s). Those are destroyed when closing begins; a connection with a
// request in flight is left to finish it, and one whose next request has begun to arrive (its
// headers not yet whole) gets a second to finish sending it and be answered 503 shutting_down,
// not a reset mid-request; a trickle past that is closed.
import type { Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** Requests in flight on a socket (set on the socket: one property, no map lookup per request). */
const IN_FLIGHT = Symbol('tollgate.inFlight');
/** socket.bytesRead when its last request in flight ended: more read since is a request arriving. */
const READ_WHEN_IDLE = Symbol('tollgate.readWhenIdle');
type Tracked = Socket & { [IN_FLIGHT]?: number; [READ_WHEN_IDLE]?: number };

/** How long a request that had begun to arrive when the stop began may take to arrive whole, ms. */
const ARRIVING_GRACE_MS = 1_000;

export class Connections {
  private readonly open = new Set<Tracked>();
  private closing = false;

  constructor(server: Server) {
    server.on('connection', (socket: Tracked) => {
      if (this.closing) {
        socket.destroy();
        return;
      }
      this.open.add(socket);
      socket.once('close', () => this.open.delete(socket));
    });
  }

  /** A request began on `socket`. */
  enter(socket: Socket): void {
    const s = socket as Tracked;
    s[IN_FLIGHT] = (s[IN_FLIGHT] ?? 0) + 1;
  }

  /** Its response ended, or its connection did. */
  leave(socket: Socket): void {
    const s = socket as Tracked;
    const left = (s[IN_FLIGHT] ?? 1) - 1;
    s[IN_FLIGHT] = left;
    if (left === 0) s[READ_WHEN_IDLE] = s.bytesRead;
  }

  /**
   * From now on: every connection without a request in flight or arriving, and every new one, is
   * closed. One whose request is arriving gets ARRIVING_GRACE_MS to finish it (and be answered 503
   * shutting_down), then is closed too.
   */
  closeUnused(): void {
    this.closing = true;
    const arriving: Tracked[] = [];
    for (const socket of this.open) {
      if (socket[IN_FLIGHT]) {
        // Its answer, not yet begun, says the connection ends with it: with `keep-alive` a client's
        // pool sent its next request on this connection as the server closed it, and got a reset
        // (behind a proxy, a 502 for a POST) instead of opening a connection elsewhere. (Node's
        // response on the socket; one pipelined behind it is answered 503 shutting_down, closing.)
        const res = (socket as Tracked & { _httpMessage?: ServerResponse | null })._httpMessage;
        if (res && !res.headersSent) res.setHeader('connection', 'close');
        continue;
      }
      if (socket.bytesRead === (socket[READ_WHEN_IDLE] ?? 0)) socket.destroy();
      else arriving.push(socket);
    }
    // A request still arriving after this long is a trickle, not a client about to be answered:
    // left to Node's request timeout it held the stop 60–90 s (or longer for a partial request line).
    if (arriving.length > 0) {
      setTimeout(() => {
        for (const socket of arriving) if (!socket[IN_FLIGHT]) socket.destroy();
      }, ARRIVING_GRACE_MS).unref();
    }
  }
}
