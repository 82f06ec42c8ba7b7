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
//
// Below the caching: Web Push (showing notifications, opening a tapped one's page). See the comment there.

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

// Web Push. The payload is Apple's declarative form (`PushPayload` in shared/src/push.rs): iOS 18.4+ may show
// it without waking this worker; everywhere else this handler shows it. Every push shows a notification, even
// one that cannot be read (iOS revokes a subscription whose pushes show nothing). A tap opens the run's page
// in an open window of the app, else a new one; only pages of this origin are ever opened.

// `url` when it is of this origin, else the app's start page.
function ownUrl(url) {
  try {
    const parsed = typeof url === 'string' && new URL(url, self.location.origin);
    if (parsed && parsed.origin === self.location.origin) return parsed.href;
  } catch {}
  return new URL(PAGE, self.location.origin).href;
}

function text(value, fallback) {
  return typeof value === 'string' ? value : fallback;
}

self.addEventListener('push', (event) => {
  let notification = null;
  try {
    notification = event.data && event.data.json().notification;
  } catch {}
  const valid = notification && typeof notification.title === 'string';
  const { title, body, navigate, tag, app_badge: count } = valid
    ? notification
    : { title: 'agentfarm', body: 'Something changed: open agentfarm to see it.' };
  const options = { body: text(body, ''), data: { url: ownUrl(navigate) }, icon: '/icons/icon-192.png' };
  // One notification per run: a newer one replaces it, and alerts again.
  if (typeof tag === 'string' && tag) Object.assign(options, { tag, renotify: true });
  const shown = self.registration.showNotification(title, options);
  // The home-screen icon's badge: the runs that need the owner (left as it is when the push does not say).
  const nav = self.navigator;
  const badge =
    typeof count === 'number' && 'setAppBadge' in nav
      ? (count > 0 ? nav.setAppBadge(count) : nav.clearAppBadge()).catch(() => {})
      : null;
  event.waitUntil(Promise.all([shown, badge]));
});

// Focuses a window of the app (the one already showing `url`, else the focused or visible one, else any) and
// navigates it there; opens a new window when there is none, or when it cannot be navigated (not controlled).
async function openPage(url) {
  const href = ownUrl(url);
  const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  const client =
    windows.find((c) => c.url === href) ||
    windows.find((c) => c.focused) ||
    windows.find((c) => c.visibilityState === 'visible') ||
    windows[0];
  if (client) {
    // Allowed only while handling a tap; the window is navigated either way.
    await client.focus().catch(() => {});
    if (client.url === href) return;
    try {
      if (await client.navigate(href)) return;
    } catch {}
  }
  await self.clients.openWindow(href);
}

// The tap on `notification`. (Headless Chromium cannot tap one: backend/tests/integration/push_ui.rs calls
// this through DevTools.)
function clicked(notification) {
  notification.close();
  return openPage(notification.data && notification.data.url);
}

self.addEventListener('notificationclick', (event) => {
  event.waitUntil(clicked(event.notification).catch(() => {}));
});

// The push service replaced or dropped the subscription (Firefox does; Chromium and Safari hardly ever):
// subscribe again with the same key. The app posts it to the server with the device's name at its next start
// (push.js), and the server lets the old one expire.
self.addEventListener('pushsubscriptionchange', (event) => {
  const old = event.oldSubscription;
  if (event.newSubscription || !old || !old.options) return;
  event.waitUntil(self.registration.pushManager.subscribe(old.options).catch(() => {}));
});
