// Plaza service worker: keeps the app shell for offline start; /v1 always goes to the network and is never stored.

// Bump when the shell's file list changes; old caches are deleted on activate.
const CACHE = 'plaza-shell-v4';

const SHELL = [
  '/',
  '/app.js',
  '/app.css',
  '/manifest.webmanifest',
  '/favicon.svg',
  '/icons/logo.svg',
  '/icons/icon-192.png',
  '/icons/apple-touch-icon.png',
  '/js/api.js',
  '/js/chat.js',
  '/js/dom.js',
  '/js/events.js',
  '/js/icons.js',
  '/js/router.js',
  '/js/session.js',
  '/js/state.js',
  '/js/ui.js',
  '/js/validate.js',
  '/js/money.js',
  '/js/pay.js',
  '/js/wallet.js',
  '/js/cards.js',
  '/js/views/auth.js',
  '/js/views/chats.js',
  '/js/views/contacts.js',
  '/js/views/conversation.js',
  '/js/views/groupinfo.js',
  '/js/views/discover.js',
  '/js/views/me.js',
  '/js/views/wallet.js',
  '/js/views/scan.js',
  '/js/views/merchant.js',
];

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    // cache: 'no-cache' revalidates with the server, so a fresh install never
    // copies a stale file out of the browser's HTTP cache.
    await cache.addAll(SHELL.map((url) => new Request(url, { cache: 'no-cache' })));
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    const names = await caches.keys();
    await Promise.all(names.filter((n) => n.startsWith('plaza-') && n !== CACHE).map((n) => caches.delete(n)));
    await self.clients.claim();
  })());
});

function isApi(url) {
  return url.pathname.startsWith('/v1/') || url.pathname === '/v1' || url.pathname === '/healthz' || url.pathname === '/metrics';
}

function offlineApiResponse() {
  const body = JSON.stringify({ error: { code: 'offline', message: 'You are offline. Check your connection and try again.' } });
  return new Response(body, { status: 503, headers: { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' } });
}

// The shell is network-first too: with no build step there are no hashed
// file names, so serving the cache first could pair a new index.html with an
// old module. For the same reason files are revalidated (a 304 when nothing
// changed) instead of taken from the HTTP cache, whose max-age could also
// hand out an old module. The cache is the fallback that makes an offline
// start work.
async function shellFetch(request, isNavigation) {
  const cache = await caches.open(CACHE);
  try {
    // A navigation request cannot be copied with new options; pages are
    // served no-cache anyway.
    const response = await fetch(isNavigation ? request : new Request(request, { cache: 'no-cache' }));
    if (response.ok && response.type === 'basic') {
      await cache.put(isNavigation ? '/' : request, response.clone());
    }
    return response;
  } catch (err) {
    const cached = await cache.match(isNavigation ? '/' : request, { ignoreSearch: isNavigation });
    if (cached) return cached;
    throw err;
  }
}

self.addEventListener('fetch', (event) => {
  const { request } = event;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;

  if (isApi(url)) {
    // Network only: responses carry personal data and tokens travel in
    // headers, so nothing from /v1 is ever written to a cache.
    event.respondWith(fetch(request).catch(() => offlineApiResponse()));
    return;
  }

  const isNavigation = request.mode === 'navigate';
  event.respondWith(shellFetch(request, isNavigation));
});
