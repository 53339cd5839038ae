// History API routing on location.pathname.
import { useEffect, useState } from 'preact/hooks';

const listeners = new Set<() => void>();

export function currentPath(): string {
  const p = location.pathname.replace(/\/+$/, '');
  return p === '' ? '/' : p;
}

function notify(): void {
  for (const l of listeners) l();
}

export function navigate(path: string, replace = false): void {
  if (path !== location.pathname + location.search) {
    if (replace) history.replaceState(null, '', path);
    else history.pushState(null, '', path);
    if (!replace) window.scrollTo(0, 0);
  }
  notify();
}

export function useRoute(): string {
  const [path, setPath] = useState(currentPath());
  useEffect(() => {
    const update = (): void => setPath(currentPath());
    listeners.add(update);
    return () => {
      listeners.delete(update);
    };
  }, []);
  return path;
}

/** Same-origin links to SPA pages are routed in place; everything else navigates normally. */
export function interceptLinks(): void {
  window.addEventListener('popstate', notify);
  document.addEventListener('click', (e) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    const a = e.target instanceof Element ? e.target.closest('a') : null;
    if (!a || a.target || a.hasAttribute('download') || a.origin !== location.origin) return;
    // A link to a place on this page ("Skip to content": #main) is the browser's to follow, which
    // moves the keyboard's starting point there. Routed, its fragment was dropped and the next Tab
    // went back to the header.
    if (a.hash !== '' && a.pathname === location.pathname && a.search === location.search) return;
    if (!/^\/app(\/|$)/.test(a.pathname) || a.pathname.startsWith('/app/api') || a.pathname.startsWith('/app/assets')) return;
    e.preventDefault();
    navigate(a.pathname + a.search);
  });
}
