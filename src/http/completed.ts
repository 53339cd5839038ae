// A completed chat, embeddings or image answer on the wire.
import type { FastifyReply } from 'fastify';
import type { Completed } from '../core/gateway.js';

/**
 * Sends the answer's JSON text as it is: Fastify sends a string payload untouched, so the upstream's
 * text (with the gateway's members spliced in) is not parsed and serialised again.
 */
export function sendCompleted(reply: FastifyReply, r: Completed): FastifyReply {
  return reply.type('application/json; charset=utf-8').send(r.body.toString());
}
