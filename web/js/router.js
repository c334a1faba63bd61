// History-API routing: paths map to a tab, a list screen and an optional detail screen.

const handlers = new Set();

export function currentPath() {
  return location.pathname;
}

export function navigate(path, { replace = false, flash } = {}) {
  const state = { prev: location.pathname, flash };
  if (replace) history.replaceState(state, '', path);
  else if (path !== location.pathname) history.pushState(state, '', path);
  else history.replaceState(state, '', path);
  for (const fn of handlers) fn();
}

// What a screen should show once after a redirect, e.g. {message, username}
// when a session ended; null when there is nothing.
export function takeFlash() {
  const st = history.state;
  if (!st || !st.flash) return null;
  const msg = st.flash;
  history.replaceState({ ...st, flash: undefined }, '', location.pathname);
  return msg;
}

// Back from a detail screen: pop the history entry when it is the parent,
// so the browser's back button and ours stay in step.
export function goBack(parent) {
  if (history.state && history.state.prev === parent) history.back();
  else navigate(parent, { replace: true });
}

export function onRoute(fn) {
  handlers.add(fn);
}

export function startRouter() {
  window.addEventListener('popstate', () => {
    for (const fn of handlers) fn();
  });
  // Same-origin links are handled here so the shell never reloads.
  document.addEventListener('click', (ev) => {
    if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
    const a = ev.target.closest('a[href]');
    if (!a || a.target || a.hasAttribute('download')) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin || url.pathname.startsWith('/v1/')) return;
    ev.preventDefault();
    if (a.dataset.back) goBack(url.pathname);
    else navigate(url.pathname);
  });
}
