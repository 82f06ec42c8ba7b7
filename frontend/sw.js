// agentfarm's service worker: the app shell works offline; the API never goes through here.
//
// What is cached (one cache, CACHE below):
// - the page (index.html, stored under "/"), fetched network-first on every navigation, so a new build is
//   picked up at once; offline (or after NAVIGATION_TIMEOUT_MS without an answer) the cached copy is served.
// - the files index.html names with a trunk content hash (app wasm + js, css): precached on install and
//   after every fresh page, served cache-first (a hashed name never changes its content), and dropped once
//   the current page no longer names them.
// - other same-origin files (icons, manifest, register-sw.js): network first, the cached copy offline.
// Never touched: /api/* (REST and the WebSocket), /healthz, /readyz, other origins, anything but GET.
//
// Updates: no skipWaiting(). A new sw.js waits until every window of the app is closed (on iOS: the app is
// swiped away), then activates and deletes the caches of older versions. Pages never switch worker mid-session,
// and since the page itself is fetched network-first, a waiting worker does not hold back a new build.
// clients.claim() only matters on the very first install (no worker before): the open page gets one at once.
// Bump VERSION when this file's caching logic changes.

const VERSION = 1;
const CACHE = `agentfarm-shell-v${VERSION}`;
const PAGE = '/';
const NAVIGATION_TIMEOUT_MS = 4000;
const EXTRAS = [
  '/manifest.webmanifest',
  '/register-sw.js',
  '/icons/icon-192.png',
  '/icons/favicon-32.png',
  '/icons/apple-touch-icon-180.png',
];
// trunk's hashed names: name-<hex hash>.ext, the wasm as name-<hex hash>_bg.wasm.
const HASHED = /\/[\w.-]+-[0-9a-f]{8,16}(?:_bg)?\.(?:wasm|js|css)$/;
// Our responses vary on Accept-Encoding, which requests made here cannot even see: ignore it.
const MATCH = { ignoreVary: true };
const HASHED_IN_PAGE = /["'](\/[\w.-]+-[0-9a-f]{8,16}(?:_bg)?\.(?:wasm|js|css))["']/g;

function isOurs(url) {
  return (
    url.origin === self.location.origin &&
    !/^\/(?:api|healthz|readyz)(?:\/|$)/.test(url.pathname)
  );
}

// The hashed files a page names (link preload/modulepreload/stylesheet, and the loader's import).
function assetsOf(html) {
  return [...new Set([...html.matchAll(HASHED_IN_PAGE)].map((m) => m[1]))];
}

// Makes `response` the cached page, once every hashed file it names is cached (so the cache never holds a
// page whose app is missing), then drops hashed files it no longer names.
async function adoptPage(cache, response) {
  const html = await response.clone().text();
  const wanted = assetsOf(html);
  await Promise.all(
    wanted.map(async (path) => {
      if (await cache.match(path, MATCH)) return;
      const file = await fetch(path, { cache: 'no-cache' });
      if (!file.ok) throw new Error(`${path} answered ${file.status}`);
      await cache.put(path, file);
    }),
  );
  await cache.put(PAGE, response);
  for (const request of await cache.keys()) {
    const path = new URL(request.url).pathname;
    if (HASHED.test(path) && !wanted.includes(path)) await cache.delete(request);
  }
}

self.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      const page = await fetch(PAGE, { cache: 'no-cache' });
      if (!page.ok) throw new Error(`install: GET / answered ${page.status}`);
      await adoptPage(cache, page);
      // Nice to have offline; a missing icon must not fail the install.
      await Promise.all(EXTRAS.map((path) => cache.add(new Request(path, { cache: 'no-cache' })).catch(() => {})));
    })(),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith('agentfarm-') && name !== CACHE) await caches.delete(name);
      }
      await self.clients.claim();
    })(),
  );
});

// Network first; the cached page when offline or slow. A fresh page is adopted in the background.
function navigate(event) {
  const network = fetch(event.request);
  // Cloned before anything else reads the body. Only a real page is kept: never an error, a redirect or
  // something else served at this path.
  const fresh = network.then((response) => {
    const type = response.headers.get('content-type') || '';
    return response.ok && !response.redirected && type.startsWith('text/html') ? response.clone() : null;
  });
  event.waitUntil(
    fresh
      .then(async (response) => response && adoptPage(await caches.open(CACHE), response))
      .catch(() => {}),
  );
  return (async () => {
    const cached = await (await caches.open(CACHE)).match(PAGE, MATCH);
    if (!cached) return network;
    const timeout = new Promise((resolve) => setTimeout(() => resolve(cached), NAVIGATION_TIMEOUT_MS));
    return Promise.race([network.catch(() => cached), timeout]);
  })();
}

async function hashed(request) {
  const cache = await caches.open(CACHE);
  const cached = await cache.match(request, MATCH);
  if (cached) return cached;
  const response = await fetch(request);
  if (response.ok) await cache.put(request, response.clone());
  return response;
}

async function networkFirst(request) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(request, response.clone());
    return response;
  } catch (err) {
    const cached = await cache.match(request, MATCH);
    if (cached) return cached;
    throw err;
  }
}

self.addEventListener('fetch', (event) => {
  const { request } = event;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (!isOurs(url)) return; // the browser handles it; the worker never sees /api or the WebSocket
  if (request.mode === 'navigate') {
    event.respondWith(navigate(event));
  } else if (HASHED.test(url.pathname)) {
    event.respondWith(hashed(request));
  } else {
    event.respondWith(networkFirst(request));
  }
});

// Web Push goes here (a later issue): a `push` handler that shows a notification for every push inside
// event.waitUntil (iOS revokes subscriptions otherwise), `notificationclick` focusing or opening the run's
// page, and `pushsubscriptionchange`. See docs on iOS Web Push before writing them.
