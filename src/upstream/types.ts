// The seam between provider adapters and the network. Adapters build requests; the client owns
// pooling, timeouts and transport errors. Tests inject a client pointed at fake upstreams.

export interface UpstreamRequest {
  /** Provider id, for error messages and logs. */
  provider: string;
  method: 'GET' | 'POST';
  url: string;
  headers: Record<string, string>;
  body?: string;
  /** The caller's cancellation, if it has one. Aborting it aborts the upstream call. */
  signal?: AbortSignal | undefined;
  /**
   * The upstream answers with its head only once the whole answer is made (a model call that does
   * not stream: OpenAI writes nothing before), so the first-byte timeout does not apply and only
   * the total one bounds the wait. At 60 s a long answer (a paid plan's 16,384 tokens, a reasoning
   * model, gpt-image-1) failed with 504 after the provider had billed the operator for it, three
   * times over with the SDKs' two retries, while its caller was charged nothing.
   */
  wholeAnswer?: boolean;
}

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The body as it arrives, chunk by chunk; consume it or call `dump()`. */
  body: AsyncIterable<Uint8Array>;
  /**
   * The whole body as text. Past `maxBytes` (default: no limit) the call is cut off and this
   * rejects with UpstreamBodyTooLarge: a broken or hostile upstream cannot fill the memory.
   */
  text(maxBytes?: number): Promise<string>;
  json(): Promise<unknown>;
  /** Discard the rest of the body and release the connection. */
  dump(): Promise<void>;
  /**
   * Stop now: the connection is closed (not reused) and a read in progress fails. Nothing happens
   * once the body has been read to its end. Idempotent.
   */
  cancel(): void;
}

export interface UpstreamClient {
  /**
   * Sends one request. Resolves when the response headers arrive (any status). Rejects with
   * GatewayError `upstream_timeout` (connect / first byte / idle / total) or `upstream_unavailable`
   * (connection refused, reset, DNS), or with the caller's abort reason when `signal` aborted.
   * The idle and total timeouts keep applying while the body is read.
   */
  request(req: UpstreamRequest): Promise<UpstreamResponse>;
  close(): Promise<void>;
}

/** An upstream body longer than the reader's limit (UpstreamResponse.text): the call was cut off. */
export class UpstreamBodyTooLarge extends Error {
  constructor(readonly maxBytes: number) {
    super(`the upstream body is longer than ${maxBytes} bytes`);
  }
}
