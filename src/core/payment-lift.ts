// Which accounts a payment method lifts: the Billing page offers it, and refusals name it, only to
// them. An operator's own plans (`team`) are moved by the operator, not by a card on file.

/** The plan a payment method moves an account to (AccountService.update's upgrade). */
export const PAID_PLAN = 'paid';

/** Whether a payment method moves an account on `plan` to the paid plan: its plan is the default one, and a paid plan exists. */
export function paymentMethodLifts(plan: string, defaultPlan: string, hasPlan: (id: string) => boolean): boolean {
  return plan === defaultPlan && plan !== PAID_PLAN && hasPlan(PAID_PLAN);
}
