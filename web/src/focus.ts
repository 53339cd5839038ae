// Focus after an action. A button that is disabled while its request runs (Send, Create key, Top
// up, Sign in) or removed by its result (Stop, Revoke, Add payment method) drops the keyboard focus
// to the page's body: the next Tab starts again from the top of the page, and a screen reader is
// left on nothing. These put it on the control that comes next.
import { useEffect, useRef } from 'preact/hooks';

/** Whether the focus has fallen to the body, or is on an element now disabled or removed. */
export function focusLost(): boolean {
  const el = document.activeElement;
  return el === null || el === document.body || !el.isConnected || el.matches(':disabled');
}

type Candidate = HTMLElement | null | undefined;

/** Focuses the first of `candidates` on the page, else the page's heading. */
export function focusFirst(...candidates: Candidate[]): void {
  focusFirstWith({}, ...candidates);
}

function focusFirstWith(options: FocusOptions, ...candidates: Candidate[]): void {
  const target = candidates.find((el) => el?.isConnected) ?? document.querySelector<HTMLElement>('main h1');
  target?.focus(options);
}

/**
 * After the render where `condition` turns true (not the first render), moves a lost focus to
 * `target()`. `keepScroll()` true: without scrolling to it (a reader who scrolled away from it).
 */
export function useRefocusWhen(condition: boolean, target: () => Candidate, keepScroll: () => boolean = () => false): void {
  const last = useRef(condition);
  useEffect(() => {
    if (condition && !last.current && focusLost()) focusFirstWith({ preventScroll: keepScroll() }, target());
    last.current = condition;
  }, [condition]);
}
