// The server's connections, for a shutdown that does not wait on connections carrying no request.
// Node's closeIdleConnections() closes keep-alive connections between requests, but not one that
// has not begun a request yet (Node counts it active from its first byte's deadline): a load
// balancer's TCP health check, a browser's preconnect, a client's spare pool socket. Each held a
// graceful close until Node's request timeout gave up on it, 60–90 s (a reviewer's shutdown after a
// burst of aborted requests took 67 s). Those are destroyed when closing begins; a connection with a
// request in flight is left to finish it.
import type { Server } from 'node:http';
import type { Socket } from 'node:net';

/** Requests in flight on a socket (set on the socket: one property, no map lookup per request). */
const IN_FLIGHT = Symbol('tollgate.inFlight');
type Tracked = Socket & { [IN_FLIGHT]?: number };

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
    s[IN_FLIGHT] = (s[IN_FLIGHT] ?? 1) - 1;
  }

  /** From now on: every connection without a request in flight, and every new one, is closed. */
  closeUnused(): void {
    this.closing = true;
    for (const socket of this.open) if (!socket[IN_FLIGHT]) socket.destroy();
  }
}
