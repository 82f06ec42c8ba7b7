// agentfarm's Web Push client. Not part of the first load (README: size budget): Settings adds it to its
// Notifications section (`#notifications`, where it draws everything below the title), and register-sw.js
// loads it at start-up when notifications are allowed. Copied to dist/ unchanged by trunk (index.html); a
// file, so the Content-Security-Policy's `script-src 'self'` covers it. Loading it again (Settings opened
// once more) only draws the section again.
//
// - Turning on (one tap): the permission prompt straight from the tap (iOS asks only from a user gesture),
//   then `pushManager.subscribe` with the server's key (`GET /api/push/key`), then `POST
//   /api/push/subscriptions` with a name for the device.
// - Confirming: every time it loads with permission granted and a subscription, it posts the subscription
//   again (the server expires unconfirmed ones) and sets the `agentfarm_device` cookie to its id: the live
//   connection then tells the server which device it is, and pushes about a run this device has open are not
//   sent.
// - Devices: `GET /api/push/subscriptions`, each with Send test and Remove; this browser's own is marked.
// - What cannot work says why: no HTTPS, iPhone/iPad Safari outside a Home Screen app, an unsupported
//   browser, permission denied (and how to allow it again), notifications off on the server, the server
//   refusing the subscription (its message).
//
// Ids for tests and styles: #push-status[data-state] (insecure, home-screen, unsupported, denied, checking,
// server-off, off, on), #push-enable, #push-error, #push-devices > li.push-device[data-id] with .push-test,
// .push-remove and .this-device.

(() => {
  if (window.agentfarmPush) {
    window.agentfarmPush.show();
    return;
  }

  const COOKIE = 'agentfarm_device';
  const ua = navigator.userAgent;
  // iPadOS Safari presents itself as a Mac; a touch screen tells them apart.
  const ipad = /iPad/.test(ua) || (/Macintosh/.test(ua) && navigator.maxTouchPoints > 1);
  const ios = ipad || /iPhone|iPod/.test(ua);
  const standalone = navigator.standalone === true || matchMedia('(display-mode: standalone)').matches;
  const supported =
    window.isSecureContext &&
    'serviceWorker' in navigator &&
    'PushManager' in window &&
    'Notification' in window;

  // What is known; show() draws it.
  let subscription = null; // this browser's PushSubscription, once known
  let mine = null; // its id on the server
  let devices = null; // [Subscription], or an Error
  let key = null; // the server's key, or the Error asking for it gave (e.g. notifications are off there)
  let error = null; // the last failure, shown above the devices
  let busy = false; // turning on
  let checked = false; // sync() has finished
  const notes = new Map(); // device id → what its last action did

  // "iPhone", "Mac · Safari", "Linux · Chrome": a Home Screen app on iOS has no browser to name.
  function deviceName() {
    const os = ipad
      ? 'iPad'
      : /iPhone|iPod/.test(ua)
        ? 'iPhone'
        : /Android/.test(ua)
          ? 'Android'
          : /CrOS/.test(ua)
            ? 'ChromeOS'
            : /Mac OS X|Macintosh/.test(ua)
              ? 'Mac'
              : /Windows/.test(ua)
                ? 'Windows'
                : /Linux|X11/.test(ua)
                  ? 'Linux'
                  : 'Browser';
    const browser = /Edg/.test(ua)
      ? 'Edge'
      : /OPR\//.test(ua)
        ? 'Opera'
        : /Firefox|FxiOS/.test(ua)
          ? 'Firefox'
          : /Chrome|Chromium|CriOS/.test(ua)
            ? 'Chrome'
            : /Safari/.test(ua) && !standalone
              ? 'Safari'
              : '';
    return browser ? `${os} · ${browser}` : os;
  }

  // The API: JSON in and out; a failure is an Error with the server's message.
  async function api(method, path, body) {
    const init = { method, headers: {} };
    if (body !== undefined) {
      init.headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const response = await fetch(`/api/push${path}`, init);
    const text = await response.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {}
    if (!response.ok) {
      const message = json && json.error && json.error.message;
      const error = new Error(message || `The server answered ${response.status}`);
      error.status = response.status;
      throw error;
    }
    return json;
  }

  function setCookie(id) {
    const secure = location.protocol === 'https:' ? '; Secure' : '';
    const value = id ? `${encodeURIComponent(id)}; Max-Age=31536000` : '; Max-Age=0';
    document.cookie = `${COOKIE}=${value}; Path=/; SameSite=Strict${secure}`;
  }

  // `promise`, or a failure saying `why` after `seconds`.
  function within(seconds, why, promise) {
    const late = new Promise((_, reject) => setTimeout(() => reject(new Error(why)), seconds * 1000));
    return Promise.race([promise, late]);
  }

  // The service worker's registration (register-sw.js registers it when the page has loaded).
  function registration() {
    return within(10, 'the service worker is not running; reload the page', navigator.serviceWorker.ready);
  }

  // Posts `sub` (subscribe, or with `onlyConfirm` re-confirm an earlier one); its id names this device from
  // now on.
  async function confirm(sub, onlyConfirm = false) {
    const { endpoint, expirationTime, keys } = sub.toJSON();
    const saved = await api('POST', '/subscriptions', {
      endpoint,
      expirationTime,
      keys: { p256dh: keys.p256dh, auth: keys.auth },
      device: deviceName(),
      confirm: onlyConfirm,
    });
    subscription = sub;
    mine = saved.id;
    setCookie(mine);
  }

  // At start: this browser's subscription, confirmed to the server.
  async function sync() {
    if (!supported || Notification.permission !== 'granted') {
      setCookie(null);
      return;
    }
    const sub = await (await registration()).pushManager.getSubscription();
    if (!sub) {
      setCookie(null);
      return;
    }
    subscription = sub;
    try {
      await confirm(sub, true);
    } catch (err) {
      if (err.status !== 404) throw err;
      // Removed from another device: this one stays off until turned on again here.
      subscription = null;
      setCookie(null);
      await sub.unsubscribe();
    }
  }

  function base64url(text) {
    const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
    return Uint8Array.from(binary, (c) => c.charCodeAt(0));
  }

  function sameBytes(buffer, bytes) {
    const a = new Uint8Array(buffer);
    return a.length === bytes.length && a.every((b, i) => b === bytes[i]);
  }

  // The tap on "Turn on notifications".
  async function enable() {
    // First, before anything is awaited: iOS shows the prompt only from the tap itself.
    const permission = Notification.requestPermission();
    busy = true;
    error = null;
    draw();
    let created = null;
    try {
      const answer = await permission;
      if (answer !== 'granted') {
        if (answer === 'default') error = 'Notifications were not allowed: tap again to be asked once more.';
        return;
      }
      const [reg, fresh] = await Promise.all([registration(), api('GET', '/key')]);
      const serverKey = base64url(fresh.public_key);
      let sub = await reg.pushManager.getSubscription();
      // One made for another server key (the server's changed) can never receive: replace it.
      const options = sub && sub.options;
      if (options && options.applicationServerKey && !sameBytes(options.applicationServerKey, serverKey)) {
        subscription = null;
        await sub.unsubscribe();
        sub = null;
      }
      if (!sub) {
        // A browser without a reachable push service (e.g. a Chromium without Google's) never answers.
        // One that arrives after giving up is dropped.
        let gaveUp = false;
        const subscribing = reg.pushManager.subscribe({
          userVisibleOnly: true,
          applicationServerKey: serverKey,
        });
        subscribing.then((late) => gaveUp && late.unsubscribe()).catch(() => {});
        sub = await within(30, "this browser's push service did not answer", subscribing).catch((err) => {
          gaveUp = true;
          throw err;
        });
        created = sub;
      }
      await confirm(sub);
    } catch (err) {
      error = `Could not turn on notifications: ${err.message}`;
      // The server refused it (or was not reached): keep no subscription nobody sends to.
      if (created) await created.unsubscribe().catch(() => {});
    } finally {
      busy = false;
      await load();
    }
  }

  async function load() {
    try {
      devices = await api('GET', '/subscriptions');
    } catch (err) {
      devices = err;
    }
    draw();
  }

  async function sendTest(id) {
    notes.set(id, 'Sending…');
    draw();
    try {
      await api('POST', `/subscriptions/${encodeURIComponent(id)}/test`);
      notes.set(id, 'Sent: it arrives in a few seconds.');
    } catch (err) {
      notes.set(id, `Could not send: ${err.message}`);
    }
    draw();
  }

  async function remove(id) {
    notes.set(id, 'Removing…');
    draw();
    try {
      await api('DELETE', `/subscriptions/${encodeURIComponent(id)}`);
      notes.delete(id);
      if (id === mine) {
        const sub = subscription;
        subscription = null;
        mine = null;
        setCookie(null);
        if (sub) await sub.unsubscribe().catch(() => {});
      }
    } catch (err) {
      notes.set(id, `Could not remove: ${err.message}`);
    }
    await load();
  }

  // An element: `attrs` are properties (className, id, onclick, …) or, with a dash, attributes.
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (name.includes('-')) el.setAttribute(name, value);
      else el[name] = value;
    }
    el.append(...children.filter((c) => c !== null && c !== false && c !== undefined));
    return el;
  }

  // How to allow notifications again, where they were blocked.
  function unblockHelp() {
    if (ios) return 'On this iPhone or iPad: Settings → Notifications → agentfarm → Allow Notifications.';
    if (/Firefox/.test(ua)) {
      return (
        'In Firefox: click the permissions icon left of the address, clear "Blocked" for notifications, ' +
        'then reload.'
      );
    }
    if (/Safari/.test(ua) && !/Chrome|Chromium/.test(ua)) {
      return 'In Safari: Safari → Settings → Websites → Notifications, set this site to Allow, then reload.';
    }
    if (/Android/.test(ua)) {
      return 'In Chrome: ⋮ → Settings → Site settings → Notifications, allow this site, then reload.';
    }
    return 'Click the site controls left of the address → Notifications → Allow, then reload.';
  }

  // [state, message, button?]: what this browser can do.
  function status() {
    if (!window.isSecureContext) {
      return [
        'insecure',
        'Notifications need a secure connection: open agentfarm at its https:// address ' +
          '(for example through tailscale serve).',
      ];
    }
    if (ios && !standalone) {
      return [
        'home-screen',
        'On iPhone and iPad, notifications only reach agentfarm as a Home Screen app. ' +
          'Add to Home Screen first (Share → Add to Home Screen), ' +
          'then open agentfarm from the home screen and turn them on here.',
      ];
    }
    if (!supported) return ['unsupported', 'This browser cannot receive push notifications.'];
    if (Notification.permission === 'denied') {
      return ['denied', `Notifications are blocked for agentfarm in this browser. ${unblockHelp()}`];
    }
    if (!checked && Notification.permission === 'granted') return ['checking', 'Checking this device…'];
    if (key instanceof Error) return ['server-off', `The server cannot send notifications: ${key.message}.`];
    if (subscription && Notification.permission === 'granted') {
      return [
        'on',
        'Notifications are on for this device: you are told when an agent needs input or finishes.',
      ];
    }
    return [
      'off',
      'Get told on this device when an agent needs input or finishes.',
      h(
        'button',
        { id: 'push-enable', className: 'btn btn-primary', type: 'button', disabled: busy, onclick: enable },
        busy ? 'Turning on…' : 'Turn on notifications',
      ),
    ];
  }

  function deviceRow(device) {
    const since = new Date(device.created_at);
    const note = notes.get(device.id);
    return h(
      'li',
      { className: 'push-device', 'data-id': device.id },
      h('strong', { className: 'push-device-name' }, device.device || 'Unnamed device'),
      device.id === mine ? ' ' : null,
      device.id === mine ? h('span', { className: 'badge this-device' }, 'this device') : null,
      h(
        'p',
        { className: 'muted push-device-detail' },
        `${device.service}, since ${isNaN(since) ? device.created_at : since.toLocaleDateString()}`,
      ),
      h(
        'div',
        { className: 'actions' },
        h(
          'button',
          { className: 'btn btn-small push-test', type: 'button', onclick: () => sendTest(device.id) },
          'Send test',
        ),
        h(
          'button',
          {
            className: 'btn btn-small btn-danger-outline push-remove',
            type: 'button',
            onclick: () => remove(device.id),
          },
          'Remove',
        ),
      ),
      note ? h('p', { className: 'push-note', role: 'status' }, note) : null,
    );
  }

  function devicesPart() {
    if (devices === null) return h('p', { className: 'muted' }, 'Loading devices…');
    if (devices instanceof Error) {
      const text = `Could not load the devices: ${devices.message}`;
      return h('p', { className: 'load-error', role: 'alert' }, text);
    }
    if (!devices.length) {
      return h('p', { className: 'muted', id: 'push-no-devices' }, 'No device receives notifications yet.');
    }
    return h('ul', { id: 'push-devices', className: 'plain-list' }, ...devices.map(deviceRow));
  }

  // Draws the section's content (#push, after what Yew renders there) when Settings shows it.
  function draw() {
    const section = document.getElementById('notifications');
    if (!section) return;
    const root = document.getElementById('push') || section.appendChild(h('div', { id: 'push' }));
    const [state, message, button] = status();
    const parts = [
      h('p', { id: 'push-status', 'data-state': state }, message),
      button,
      error && h('p', { id: 'push-error', className: 'load-error', role: 'alert' }, error),
      h('h3', { className: 'list-caption' }, 'Devices'),
      devicesPart(),
    ];
    root.replaceChildren(...parts.filter(Boolean));
  }

  const synced = sync()
    .catch((err) => {
      error = `Could not confirm this device to the server: ${err.message}`;
    })
    .finally(() => {
      checked = true;
    });

  // Settings opened: draw what is known at once, the rest once it is.
  function show() {
    draw();
    if (supported) {
      api('GET', '/key')
        .then((answer) => answer.public_key, (err) => err)
        .then((answer) => {
          key = answer;
          draw();
        });
    }
    synced.then(load);
  }

  window.agentfarmPush = { show };
  show();
})();
