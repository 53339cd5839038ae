// Money that goes back to a customer takes its credits back with it. Without this, buying credits,
// spending them and asking the card's bank for a chargeback (or the operator for a refund) was a
// way to use the gateway for free: the credits stayed until the operator noticed and posted a
// negative top-up by hand.
//
// Events (https://docs.stripe.com/api/events/types):
// - `refund.created`, `refund.updated`, `refund.failed`, `charge.refund.updated`: a Refund object
//   (`id`, `amount`, `currency`, `payment_intent`, `status`). pending / requires_action / succeeded
//   take the credits; failed / canceled give them back.
// - `charge.dispute.funds_withdrawn` / `charge.dispute.funds_reinstated`: a Dispute object (`id`,
//   `amount`, `currency`, `payment_intent`): the bank took the money / gave it back (a dispute won).
//   An inquiry (no money moved) sends neither.
// Refunds are acted on per refund, not through `charge.refunded`, whose Charge carries only the
// cumulative amount refunded: one event per refund, each with its own id, is what makes "once"
// checkable without reading a previous total.
import { isObject } from '../lib/is-object.js';

/** One movement of a payment's money back to the customer (`take`), or its reversal (`giveBack`). */
export interface Reversal {
  kind: 'refund' | 'dispute';
  /** Stripe's id of the refund or dispute: the once-only mark's name. */
  id: string;
  direction: 'take' | 'giveBack';
  /** In the currency's smallest unit, as Stripe gives amounts. */
  amount: number;
  currency: string;
  paymentIntent: string;
}

const REFUND_EVENTS = new Set(['refund.created', 'refund.updated', 'refund.failed', 'charge.refund.updated']);
const REFUND_TAKES = new Set(['pending', 'requires_action', 'succeeded']);
const REFUND_GIVES_BACK = new Set(['failed', 'canceled']);
const DISPUTE_EVENTS: Record<string, Reversal['direction']> = {
  'charge.dispute.funds_withdrawn': 'take',
  'charge.dispute.funds_reinstated': 'giveBack',
};

/** The reversal an event reports, or undefined for any other event (or one missing a field). */
export function reversalOf(type: unknown, object: Record<string, unknown>): Reversal | undefined {
  let kind: Reversal['kind'];
  let direction: Reversal['direction'] | undefined;
  if (typeof type === 'string' && REFUND_EVENTS.has(type) && object.object === 'refund') {
    kind = 'refund';
    const status = String(object.status);
    direction = REFUND_TAKES.has(status) ? 'take' : REFUND_GIVES_BACK.has(status) ? 'giveBack' : undefined;
  } else if (typeof type === 'string' && Object.hasOwn(DISPUTE_EVENTS, type) && object.object === 'dispute') {
    kind = 'dispute';
    direction = DISPUTE_EVENTS[type];
  } else {
    return undefined;
  }
  const { id, amount, currency, payment_intent: paymentIntent } = object;
  if (direction === undefined || typeof id !== 'string' || typeof currency !== 'string' || typeof paymentIntent !== 'string') return undefined;
  if (typeof amount !== 'number' || !Number.isSafeInteger(amount) || amount <= 0) return undefined;
  return { kind, id, direction, amount, currency, paymentIntent };
}

/**
 * The credits `amount` of a payment of `total` for `credits` stands for: all of them for the
 * whole payment (or more: a dispute may add fees), else the share rounded down, so that the
 * partial refunds of one payment never take more than it bought.
 */
export function creditsFor(amount: number, total: number, credits: number): number {
  if (amount >= total) return credits;
  return Math.floor((credits * amount) / total);
}

/** The Checkout Session a list of sessions filtered by payment intent names, if any. */
export function sessionOfList(json: unknown): Record<string, unknown> | undefined {
  if (!isObject(json) || !Array.isArray(json.data)) return undefined;
  const [first] = json.data as unknown[];
  return isObject(first) ? first : undefined;
}
