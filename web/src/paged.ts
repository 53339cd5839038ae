// A list shown a page at a time (Usage's requests, Billing's top-ups): the first page comes with
// the page's own load, "Show more" appends the next. A reload (back to the tab, a top-up) starts
// from the newest again, and a Show more still under way then is dropped: appended to the new first
// page, its older rows would have left a gap and replaced the cursor.
import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, toApiError } from './api';

export function usePaged<T>(first: T[], firstNext: string | null, fetchPage: (before: string) => Promise<{ items: T[]; next: string | null }>) {
  const [items, setItems] = useState(first);
  const [next, setNext] = useState(firstNext);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const generation = useRef(0);
  useEffect(() => {
    generation.current++;
    setItems(first);
    setNext(firstNext);
  }, [first]);
  const more = () => {
    if (next === null) return;
    setBusy(true);
    const asked = generation.current;
    fetchPage(next)
      .then((page) => {
        if (asked !== generation.current) return;
        setItems((shown) => [...shown, ...page.items]);
        setNext(page.next);
        setError(null);
      })
      .catch((e) => asked === generation.current && setError(toApiError(e)))
      .finally(() => setBusy(false));
  };
  return { items, next, busy, error, more };
}

/** The list's "Show more" button: none once the oldest is shown. */
export function ShowMore({ paged, testId }: { paged: { next: string | null; busy: boolean; more: () => void }; testId: string }) {
  if (paged.next === null) return null;
  return html`<p class="table-more"><button type="button" class="btn btn-quiet" data-testid=${testId} disabled=${paged.busy} onClick=${paged.more}>
    ${paged.busy ? 'Loading…' : 'Show more'}
  </button></p>`;
}
