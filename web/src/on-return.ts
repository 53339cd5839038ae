// Pages that show what the server counts (the Playground's meter, Usage, Billing) read it again when
// the reader comes back to the tab or window. Their numbers move while the page sits open: the
// user's own scripts spend through the API, a Stripe Checkout completes in another tab, the
// operator changes the plan or tops up — and the page went on showing what it read when it opened.
import { useEffect, useRef } from 'preact/hooks';

/** At most one reload per this long, ms: a tab switch fires both visibilitychange and focus. */
const MIN_GAP_MS = 1_000;

export function useReloadOnReturn(reload: () => void): void {
  const latest = useRef(reload);
  latest.current = reload;
  useEffect(() => {
    let last = performance.now();
    const onReturn = () => {
      if (document.visibilityState !== 'visible' || performance.now() - last < MIN_GAP_MS) return;
      last = performance.now();
      latest.current();
    };
    document.addEventListener('visibilitychange', onReturn);
    window.addEventListener('focus', onReturn);
    return () => {
      document.removeEventListener('visibilitychange', onReturn);
      window.removeEventListener('focus', onReturn);
    };
  }, []);
}
