//! Web Push in the web app, in headless Chromium: Settings' Notifications section (what it offers, and what
//! it says when push cannot work), the service worker showing a notification for a delivered push (CDP
//! `ServiceWorker.deliverPushMessage`, the way a push service would wake it), and a tap on it opening the
//! run.
//!
//! Headless Chromium has no push service, so `pushManager.subscribe` cannot succeed here: where the flow
//! needs a subscription, the page's `PushManager` is replaced by one that hands out a subscription the test
//! made. Nor can a system notification be tapped, and `getNotifications()` there sometimes misses one just
//! shown: the test attaches to the worker over DevTools, records what it shows, and calls its tap handler.

use std::time::Duration;

use agentfarm_fake_push::FakePush;
use agentfarm_shared::push::{DECLARATIVE_WEB_PUSH, Notification, PushPayload};
use agentfarm_shared::run::RunState;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::browser::{Browser, Viewport};
use crate::harness::{Backend, PATIENCE, TestServer, client_builder, push_to, web_dir};

/// A server with the web app and without notifications (no push contact).
async fn plain_server() -> TestServer {
    TestServer::start_on(Backend::Local, |s| {
        s.web_dir = Some(web_dir());
        s.idle_timeout = 3_600;
    })
    .await
}

/// A server that pushes, to `push` (a local fake push service) among the real ones.
async fn server_pushing_to(push: &FakePush) -> TestServer {
    TestServer::start_on(Backend::Local, |s| {
        s.web_dir = Some(web_dir());
        s.idle_timeout = 3_600;
        push_to(s, push);
    })
    .await
}

/// Stands in for the browser's push service in every page from now on (headless Chromium has none): its
/// `PushManager` hands out the subscription in `localStorage['test-push-sub']` (`PushSubscription.toJSON()`),
/// subscribed while `localStorage['test-push-current']` is set; `test-push-key` records the application
/// server key `subscribe` was given (base64url), `test-push-unsubscribed` counts `unsubscribe()` calls.
const FAKE_PUSH_MANAGER: &str = r"(() => {
  if (!window.PushManager) return;
  const stored = () => JSON.parse(localStorage.getItem('test-push-sub'));
  const current = () => localStorage.getItem('test-push-current') === null ? null : {
    endpoint: stored().endpoint,
    options: null,
    toJSON: stored,
    unsubscribe() {
      localStorage.removeItem('test-push-current');
      localStorage.setItem('test-push-unsubscribed', Number(localStorage.getItem('test-push-unsubscribed')) + 1);
      return Promise.resolve(true);
    },
  };
  PushManager.prototype.getSubscription = () => Promise.resolve(current());
  PushManager.prototype.subscribe = (options) => {
    const bytes = String.fromCharCode(...new Uint8Array(options.applicationServerKey));
    const key = btoa(bytes).replace(/[+]/g, '-').replace(/[/]/g, '_').replace(/=+$/, '');
    localStorage.setItem('test-push-key', options.userVisibleOnly ? key : 'not user-visible');
    localStorage.setItem('test-push-current', '1');
    return Promise.resolve(current());
  };
})();";

/// The next subscription the fake `PushManager` hands out.
async fn hand_out(browser: &Browser, subscription: &Value) {
    let mut json = subscription.clone();
    json["expirationTime"] = Value::Null;
    eval(
        browser,
        &format!(
            "localStorage.setItem('test-push-sub', {})",
            json!(json.to_string())
        ),
    )
    .await;
}

/// The value of the device cookie in the page, if set.
async fn device_cookie(browser: &Browser) -> Option<String> {
    let cookies = eval(browser, "document.cookie").await;
    cookies
        .as_str()
        .unwrap()
        .split("; ")
        .find_map(|c| c.strip_prefix("agentfarm_device=").map(str::to_owned))
}

/// Runs `script` (a JS expression; a promise is awaited) in the page and returns its value.
async fn eval(browser: &Browser, script: &str) -> Value {
    browser
        .client
        .execute(&format!("return ({script});"), vec![])
        .await
        .unwrap_or_else(|e| panic!("{script}: {e}"))
}

/// Clicks `css` (scrolled to the middle, clear of the fixed bars).
async fn click(browser: &Browser, css: &str) {
    let element = browser.find(css).await;
    let arg = serde_json::to_value(&element).unwrap();
    browser
        .client
        .execute("arguments[0].scrollIntoView({block:'center'});", vec![arg])
        .await
        .unwrap();
    element.click().await.unwrap();
}

/// Waits for the Notifications section to settle in `state` (`#push-status[data-state]`); returns its text.
async fn push_status(browser: &Browser, state: &str) -> String {
    let found = browser
        .until(&format!(
            "(s => s && s.dataset.state === {state} && s.textContent)(document.querySelector('#push-status'))",
            state = json!(state)
        ))
        .await;
    found.as_str().unwrap().to_owned()
}

/// Screenshot `name` with the Notifications section in view; it never shows a stray `null` or `undefined`.
async fn screenshot_section(browser: &Browser, name: &str) {
    let text = eval(
        browser,
        "(s => { s.scrollIntoView({block: 'end'}); return s.innerText; })(document.querySelector('#notifications'))",
    )
    .await;
    let text = text.as_str().unwrap();
    assert!(!text.contains("null") && !text.contains("undefined"), "{text}");
    browser.screenshot(name).await;
}

/// A DevTools connection to the browser itself (chromedriver's `debuggerAddress`), for what chromedriver's
/// `goog/cdp/execute` cannot do: receive events.
struct DevTools {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    events: Vec<Value>,
    /// The app's page, its service worker registration and the worker itself ([`DevTools::attach_worker`]):
    /// page session, registration id, worker session.
    app: Option<(String, String, String)>,
}

impl DevTools {
    async fn connect(browser: &Browser) -> DevTools {
        let caps = browser.client.capabilities().unwrap();
        let address = caps["goog:chromeOptions"]["debuggerAddress"]
            .as_str()
            .unwrap_or_else(|| panic!("no debuggerAddress in {caps:?}"));
        let version: Value = client_builder()
            .build()
            .unwrap()
            .get(format!("http://{address}/json/version"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let url = version["webSocketDebuggerUrl"].as_str().unwrap();
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        DevTools {
            ws,
            next_id: 0,
            events: Vec::new(),
            app: None,
        }
    }

    /// One command, to the browser or (with `session`) to an attached target; its result.
    async fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut command = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            command["sessionId"] = json!(session);
        }
        self.ws.send(Message::text(command.to_string())).await.unwrap();
        loop {
            let message = self.read().await;
            if message["id"] == json!(id) {
                assert!(message.get("error").is_none(), "{method}: {message}");
                return message["result"].clone();
            }
            if message.get("method").is_some() {
                self.events.push(message);
            }
        }
    }

    /// The first event `method` (seen already or still to come) whose params satisfy `wanted`.
    async fn event(&mut self, method: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        loop {
            if let Some(at) = self
                .events
                .iter()
                .position(|e| e["method"] == method && wanted(&e["params"]))
            {
                return self.events.remove(at)["params"].clone();
            }
            let message = self.read().await;
            if message.get("method").is_some() {
                self.events.push(message);
            }
        }
    }

    async fn read(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .expect("DevTools answered nothing")
                .expect("DevTools closed the connection")
                .unwrap();
            if let Message::Text(text) = message {
                return serde_json::from_str(&text).unwrap();
            }
        }
    }

    /// Sets the notification permission of `origin`: `granted`, `denied` or `prompt`.
    async fn notifications(&mut self, origin: &str, setting: &str) {
        self.call(
            None,
            "Browser.setPermission",
            json!({"permission": {"name": "notifications"}, "setting": setting, "origin": origin}),
        )
        .await;
    }

    /// Attaches to the page showing `origin` and to its service worker (which DevTools then keeps running),
    /// and records in the worker what it shows ([`DevTools::shown`]) and sets as the app badge.
    async fn attach_worker(&mut self, origin: &str) {
        let attach = async |devtools: &mut DevTools, kind: &str, url: &str| {
            let targets = devtools.call(None, "Target.getTargets", json!({})).await;
            let target = targets["targetInfos"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["type"] == kind && t["url"].as_str().unwrap().starts_with(url))
                .unwrap_or_else(|| panic!("no {kind} at {url}: {targets}"))
                .clone();
            let attached = devtools
                .call(
                    None,
                    "Target.attachToTarget",
                    json!({"targetId": target["targetId"], "flatten": true}),
                )
                .await;
            attached["sessionId"].as_str().unwrap().to_owned()
        };
        let page = attach(self, "page", origin).await;
        self.call(Some(&page), "ServiceWorker.enable", json!({})).await;
        let scope = format!("{origin}/");
        let active = |r: &Value| r["scopeURL"] == scope.as_str() && r["isDeleted"] == false;
        let update = self
            .event("ServiceWorker.workerRegistrationUpdated", |params| {
                params["registrations"].as_array().unwrap().iter().any(active)
            })
            .await;
        let registrations = update["registrations"].as_array().unwrap();
        let registration = registrations.iter().find(|r| active(r)).unwrap();
        let registration = registration["registrationId"].as_str().unwrap().to_owned();
        let worker = attach(self, "service_worker", &format!("{origin}/sw.js")).await;
        self.app = Some((page, registration, worker));
        self.in_worker(RECORDER).await;
    }

    /// Evaluates `expression` in the service worker (a promise is awaited); its value.
    async fn in_worker(&mut self, expression: &str) -> Value {
        let (_, _, worker) = self.app.clone().expect("attach_worker first");
        let answer = self
            .call(
                Some(&worker),
                "Runtime.evaluate",
                json!({"expression": expression, "awaitPromise": true, "returnByValue": true}),
            )
            .await;
        assert!(answer.get("exceptionDetails").is_none(), "{expression}: {answer}");
        answer["result"]["value"].clone()
    }

    /// Delivers `data` as a push message to the worker, as a push service would.
    async fn push(&mut self, origin: &str, data: &str) {
        let (page, registration, _) = self.app.clone().expect("attach_worker first");
        self.call(
            Some(&page),
            "ServiceWorker.deliverPushMessage",
            json!({"origin": origin, "registrationId": registration, "data": data}),
        )
        .await;
    }

    /// Waits until the worker has shown `count` notifications since [`DevTools::attach_worker`]; the last one:
    /// `{title, body, tag, renotify, icon, data: {url}, closed}`.
    async fn shown(&mut self, count: usize) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let shown = self.in_worker("self.shownForTest").await;
            let shown = shown.as_array().unwrap();
            assert!(shown.len() <= count, "more notifications than pushes: {shown:?}");
            if shown.len() == count {
                return shown[count - 1].clone();
            }
            assert!(tokio::time::Instant::now() < deadline, "no notification shown");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Taps the `nth` notification shown (from 1), as the system would: the worker's `notificationclick`
    /// handler (`clicked` in `frontend/sw.js`) gets it. True when the handler closed it.
    async fn tap(&mut self, nth: usize) -> bool {
        let closed = self
            .in_worker(&format!(
                "(n => clicked({{close() {{ n.closed = true; }}, data: n.data}}).then(() => n.closed))\
                 (self.shownForTest[{}])",
                nth - 1
            ))
            .await;
        closed == json!(true)
    }
}

/// Run in the service worker by [`DevTools::attach_worker`]: records each notification shown (once the browser
/// has accepted it) in `self.shownForTest`, and each app badge set in `self.badgesForTest` (0: cleared). Headless
/// Chromium cannot be asked reliably: `getNotifications()` there sometimes returns nothing for a notification
/// `showNotification` has just shown (about one push in five).
const RECORDER: &str = r"(() => {
  const registration = self.registration;
  const show = registration.showNotification.bind(registration);
  self.shownForTest = [];
  self.badgesForTest = [];
  registration.showNotification = (title, options) =>
    show(title, options).then(() => { self.shownForTest.push({ title, ...options, closed: false }); });
  if ('setAppBadge' in navigator) {
    const set = navigator.setAppBadge.bind(navigator);
    const clear = navigator.clearAppBadge.bind(navigator);
    navigator.setAppBadge = (count) => { self.badgesForTest.push(count); return set(count); };
    navigator.clearAppBadge = () => { self.badgesForTest.push(0); return clear(); };
  }
})()";

/// Settings on a desktop browser: with permission not asked yet (or granted, but no subscription), one "Turn
/// on notifications" button and the list of devices; blocked, how to allow them again; without the Push API,
/// that this browser cannot; from a server without notifications, why; on an iPhone outside the Home Screen,
/// "Add to Home Screen first".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_offer_notifications_and_say_what_blocks_them() {
    let push = FakePush::start().await;
    let server = server_pushing_to(&push).await;
    let browser = Browser::start(Viewport::Desktop).await;
    let mut devtools = DevTools::connect(&browser).await;
    let settings = format!("{}/settings", server.url);

    browser.client.goto(&settings).await.unwrap();
    let text = push_status(&browser, "off").await;
    assert!(text.contains("when an agent needs input or finishes"), "{text}");
    let button = browser.find("#notifications #push-enable").await;
    assert_eq!(button.text().await.unwrap(), "Turn on notifications");
    browser.find("#notifications h3").await;
    screenshot_section(&browser, "push-settings-off").await;

    // Blocked: how to allow them again.
    devtools.notifications(&server.url, "denied").await;
    browser.client.refresh().await.unwrap();
    let text = push_status(&browser, "denied").await;
    assert!(text.contains("blocked"), "{text}");
    assert!(text.contains("Notifications → Allow"), "{text}");
    screenshot_section(&browser, "push-settings-denied").await;
    assert_eq!(
        eval(&browser, "document.querySelector('#push-enable') === null").await,
        json!(true)
    );

    // Allowed, and no subscription yet: the button still.
    devtools.notifications(&server.url, "granted").await;
    browser.client.refresh().await.unwrap();
    push_status(&browser, "off").await;
    browser.find("#push-enable").await;

    // No Push API: this browser cannot. (Settings is opened inside the app, so push.js runs in this page.)
    devtools.notifications(&server.url, "prompt").await;
    browser.client.goto(&server.url).await.unwrap();
    browser.find("nav.sidebar").await;
    eval(&browser, "delete window.PushManager").await;
    click(&browser, r#"nav.sidebar a[href="/settings"]"#).await;
    let text = push_status(&browser, "unsupported").await;
    assert_eq!(text, "This browser cannot receive push notifications.");

    // A server without notifications (no --push-contact): says so, with the server's reason.
    let quiet = plain_server().await;
    browser
        .client
        .goto(&format!("{}/settings", quiet.url))
        .await
        .unwrap();
    let (status, answer) = quiet.get("/api/push/key").await;
    assert!(status.is_client_error(), "{status} {answer}");
    let text = push_status(&browser, "server-off").await;
    assert_eq!(
        text,
        format!(
            "The server cannot send notifications: {}.",
            answer["error"]["message"].as_str().unwrap()
        )
    );
    assert_eq!(
        eval(&browser, "document.querySelector('#push-enable') === null").await,
        json!(true)
    );

    // An iPhone outside the Home Screen: add it there first.
    let phone = Browser::start(Viewport::Phone).await;
    phone.client.goto(&settings).await.unwrap();
    let text = push_status(&phone, "home-screen").await;
    assert!(
        text.contains("Add to Home Screen first (Share → Add to Home Screen)"),
        "{text}"
    );
    assert!(text.contains("open agentfarm from the home screen"), "{text}");
    screenshot_section(&phone, "push-settings-iphone-browser").await;
    assert!(!phone.overflows_horizontally().await);
}

/// A push wakes the worker, which shows the notification the payload describes (title, body, one per run by
/// its tag, the run's page to open); a tap focuses the app's window and opens the run there. A payload that
/// cannot be read still shows a notification (iOS revokes subscriptions whose pushes show none), and a page
/// of another origin is never opened: the tap opens the app instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_shows_a_notification_and_a_tap_opens_the_run() {
    let server = plain_server().await;
    let config = server.create_config("Push check", "unused").await;
    let mut socket = server.socket().await;
    let run = server.launch(&config, "Answer, then wait for me").await;
    socket.until_state(&run.id, RunState::WaitingForInput).await;

    let browser = Browser::start(Viewport::Desktop).await;
    let mut devtools = DevTools::connect(&browser).await;
    devtools.notifications(&server.url, "granted").await;
    browser.client.goto(&server.url).await.unwrap();
    browser.until("navigator.serviceWorker.controller !== null").await;
    devtools.attach_worker(&server.url).await;
    let badge_api = devtools.in_worker("'setAppBadge' in navigator").await == json!(true);

    let run_url = format!("{}/runs/{}", server.url, run.id);
    let tag = format!("run-{}", run.id);
    let payload = PushPayload {
        web_push: DECLARATIVE_WEB_PUSH,
        notification: Notification {
            title: "Push check needs you".into(),
            body: "Waiting for input: Answer, then wait for me".into(),
            navigate: run_url.clone(),
            tag: Some(tag.clone()),
            app_badge: Some(1),
        },
        run_id: Some(run.id.clone()),
    };
    devtools
        .push(&server.url, &serde_json::to_string(&payload).unwrap())
        .await;
    assert_eq!(
        devtools.shown(1).await,
        json!({"title": "Push check needs you", "body": "Waiting for input: Answer, then wait for me",
               "tag": tag, "renotify": true, "icon": "/icons/icon-192.png", "data": {"url": run_url},
               "closed": false})
    );
    if badge_api {
        assert_eq!(devtools.in_worker("self.badgesForTest").await, json!([1]));
    }

    // The tap: closes it, and the open window (on the Agents list) goes to the run.
    assert!(devtools.tap(1).await, "closed by the tap");
    browser
        .until(&format!("location.href === {}", json!(run_url)))
        .await;
    browser
        .find(r#"section.page.run[data-state="waiting_for_input"]"#)
        .await;
    assert_eq!(
        browser.client.windows().await.unwrap().len(),
        1,
        "the same window, navigated: no new one"
    );

    // Garbage still shows something, which opens the app; the badge is left as it was.
    devtools.push(&server.url, "not json {").await;
    assert_eq!(
        devtools.shown(2).await,
        json!({"title": "agentfarm", "body": "Something changed: open agentfarm to see it.",
               "icon": "/icons/icon-192.png", "data": {"url": format!("{}/", server.url)}, "closed": false})
    );
    if badge_api {
        assert_eq!(devtools.in_worker("self.badgesForTest").await, json!([1]));
    }

    // A page of another origin: shown, but a tap opens the app, never that page. A badge of 0 clears it.
    let foreign = json!({"web_push": DECLARATIVE_WEB_PUSH, "notification": {
        "title": "Elsewhere", "body": "b", "navigate": "https://example.com/runs/x", "tag": "elsewhere",
        "app_badge": 0}});
    devtools.push(&server.url, &foreign.to_string()).await;
    let shown = devtools.shown(3).await;
    assert_eq!(shown["title"], "Elsewhere");
    assert_eq!(shown["data"], json!({"url": format!("{}/", server.url)}));
    if badge_api {
        assert_eq!(devtools.in_worker("self.badgesForTest").await, json!([1, 0]));
    }
    assert!(devtools.tap(3).await);
    browser
        .until(&format!(
            "location.href === {}",
            json!(format!("{}/", server.url))
        ))
        .await;
    browser.find("nav.tabbar").await;
    assert_eq!(
        eval(&browser, "location.origin").await,
        json!(server.url),
        "still the app"
    );
}

/// Turning on in Settings, end to end with the server and a local fake push service standing in for the
/// browser's: the tap subscribes with the server's key and posts the subscription with the device's name;
/// Settings lists it as "this device" and the cookie names it; "Send test" reaches the push service, and that
/// push, delivered to the worker, shows; every start confirms the subscription again; "Remove" removes it; a
/// subscription the server refuses is said so, with the server's reason, and not kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turning_on_notifications_subscribes_this_device() {
    let push = FakePush::start().await;
    let server = server_pushing_to(&push).await;
    let (_, key) = server.get("/api/push/key").await;
    let key = key["public_key"].as_str().unwrap().to_owned();
    let subscriber = push.subscribe_for(&key);

    let browser = Browser::start(Viewport::Desktop).await;
    let mut devtools = DevTools::connect(&browser).await;
    devtools.notifications(&server.url, "granted").await;
    browser
        .cdp(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({"source": FAKE_PUSH_MANAGER}),
        )
        .await;
    browser
        .client
        .goto(&format!("{}/settings", server.url))
        .await
        .unwrap();
    push_status(&browser, "off").await;
    browser.find("#push-no-devices").await;
    hand_out(&browser, &subscriber.json()).await;

    click(&browser, "#push-enable").await;
    let text = push_status(&browser, "on").await;
    assert!(text.starts_with("Notifications are on for this device"), "{text}");
    assert_eq!(
        eval(&browser, "localStorage.getItem('test-push-key')").await,
        json!(key),
        "subscribed user-visible, with the server's key"
    );
    let (_, devices) = server.get("/api/push/subscriptions").await;
    let devices = devices.as_array().unwrap().clone();
    assert_eq!(devices.len(), 1, "{devices:?}");
    let id = devices[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        devices[0]["device"], "Linux · Chrome",
        "named from the user agent"
    );
    let row = format!("#push-devices li.push-device[data-id={}]", json!(id));
    assert_eq!(
        browser
            .find(&format!("{row} .push-device-name"))
            .await
            .text()
            .await
            .unwrap(),
        "Linux · Chrome"
    );
    assert_eq!(
        browser
            .find(&format!("{row} .this-device"))
            .await
            .text()
            .await
            .unwrap(),
        "this device"
    );
    assert_eq!(
        device_cookie(&browser).await,
        Some(id.clone()),
        "the cookie names this device"
    );
    screenshot_section(&browser, "push-settings-on").await;

    // "Send test": the push service gets it, and delivered to the worker it shows.
    click(&browser, &format!("{row} .push-test")).await;
    let note = browser
        .until(&format!(
            "(e => e && e.textContent.startsWith('Sent') && e.textContent)(document.querySelector({}))",
            json!(format!("{row} .push-note"))
        ))
        .await;
    assert_eq!(note, json!("Sent: it arrives in a few seconds."));
    let delivered = tokio::time::timeout(PATIENCE, push.wait_for(&subscriber, 1))
        .await
        .unwrap();
    let payload: PushPayload = serde_json::from_slice(&delivered[0].plaintext).unwrap();
    assert_eq!(payload.web_push, DECLARATIVE_WEB_PUSH);
    browser.until("navigator.serviceWorker.controller !== null").await;
    devtools.attach_worker(&server.url).await;
    let plaintext = std::str::from_utf8(&delivered[0].plaintext).unwrap();
    devtools.push(&server.url, plaintext).await;
    let shown = devtools.shown(1).await;
    assert_eq!(shown["title"], json!(payload.notification.title));
    assert_eq!(shown["body"], json!(payload.notification.body));

    // Every start confirms the subscription (the server expires unconfirmed ones) and sets the cookie again.
    eval(
        &browser,
        "document.cookie = 'agentfarm_device=; Path=/; Max-Age=0'",
    )
    .await;
    browser.client.goto(&server.url).await.unwrap();
    browser.find("nav.tabbar").await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while device_cookie(&browser).await.is_none() {
        assert!(tokio::time::Instant::now() < deadline, "never confirmed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(device_cookie(&browser).await, Some(id.clone()));

    // "Remove": gone from the server, from the browser, and the cookie with it.
    browser
        .client
        .goto(&format!("{}/settings", server.url))
        .await
        .unwrap();
    push_status(&browser, "on").await;
    click(&browser, &format!("{row} .push-remove")).await;
    push_status(&browser, "off").await;
    browser.find("#push-no-devices").await;
    assert_eq!(server.get("/api/push/subscriptions").await.1, json!([]));
    assert_eq!(
        eval(&browser, "localStorage.getItem('test-push-unsubscribed')").await,
        json!("1")
    );
    assert_eq!(device_cookie(&browser).await, None);

    // The server refuses a subscription (here: a plain-http endpoint of a private address): its reason is
    // shown, and the browser's subscription is dropped again.
    let refused = json!({"endpoint": "http://10.1.2.3/push/x",
                         "keys": {"p256dh": subscriber.p256dh, "auth": subscriber.auth}});
    let (status, answer) = server
        .post(
            "/api/push/subscriptions",
            json!({"endpoint": refused["endpoint"], "keys": refused["keys"], "device": "x"}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"]["field"], "endpoint");
    hand_out(&browser, &refused).await;
    click(&browser, "#push-enable").await;
    let error = browser
        .until("(e => e && e.textContent)(document.querySelector('#push-error[role=alert]'))")
        .await;
    assert_eq!(
        error,
        json!(format!(
            "Could not turn on notifications: {}",
            answer["error"]["message"].as_str().unwrap()
        ))
    );
    push_status(&browser, "off").await;
    assert_eq!(
        eval(&browser, "localStorage.getItem('test-push-unsubscribed')").await,
        json!("2")
    );
    assert_eq!(server.get("/api/push/subscriptions").await.1, json!([]));
    screenshot_section(&browser, "push-settings-refused").await;
}
