//! Time to the first transcript render: headless Chromium opens a run's page under Chrome DevTools' "Fast 4G"
//! network profile, cold (a fresh profile: nothing cached, no service worker) and with the service worker warm
//! (installed, its cache filled, controlling the page), timed by the page itself from the start of the
//! navigation to the first transcript entry in the DOM. The floor: the same loads without throttling.
//!
//! Throttled: every request of the page and of its service worker (see [`throttle_service_workers`]). Not
//! emulated: a phone's slower CPU; this machine's stands in for it. A browser that does not apply the
//! throttling (Debian's Chromium 148 did not, to service workers) is refused: the full run fails, the quick
//! run reports the rows as not measured, saying why.

use std::path::PathBuf;
use std::time::Duration;

use agentfarm_shared::run::Run;
use anyhow::{Context, bail};
use fantoccini::{Client, ClientBuilder};
use futures_util::{SinkExt, StreamExt};
use hyper_util::client::legacy::connect::HttpConnector;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::process::Child;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::chromium::{self, Cdp};
use crate::server::Server;
use crate::stats::{ms, percentile, ratio};
use crate::{Plan, Row};

/// How long chromedriver, Chromium, the run and each page may take before the bench gives up.
const PATIENCE: Duration = Duration::from_secs(60);

/// What "first transcript render" waits for: the first entry the run page's transcript draws for a log line
/// (`frontend/src/components/transcript.rs`: one `.tl[data-seq]` per shown item). The bench agent's lines are
/// plain standard output, drawn as `.tl-plain` entries; a Claude event is drawn by the same path.
const ENTRY: &str = "#transcript .tl[data-seq]";

/// Chrome DevTools' "Fast 4G" preset, as `Network.emulateNetworkConditions` takes it (bytes per second,
/// milliseconds): `Fast4GConditions` in devtools-frontend's `front_end/core/sdk/NetworkManager.ts`, 9 Mbit/s
/// down and 1.5 Mbit/s up, each × 0.9, and a 60 ms round trip × 2.75 (the factors DevTools applies so that
/// its emulation matches a real network of that kind). Chromium holds each response back by the latency (a
/// WebSocket's handshake too) and meters its body at the throughput.
fn fast_4g() -> Value {
    json!({
        "offline": false,
        "latency": 60.0 * 2.75,
        "downloadThroughput": 9.0 * 1000.0 * 1000.0 / 8.0 * 0.9,
        "uploadThroughput": 1.5 * 1000.0 * 1000.0 / 8.0 * 0.9,
        "connectionType": "cellular4g",
    })
}

/// DevTools' "No throttling" (`NoThrottlingConditions`): the floor's loads go through the same DevTools
/// set-up, with nothing held back.
fn no_throttling() -> Value {
    json!({"offline": false, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
}

/// Run in every document before its own scripts: `window.__firstTranscript` resolves to `performance.now()`
/// (milliseconds since the navigation started) in the mutation observer's callback for the DOM change that
/// adds the first [`ENTRY`], a microtask after the app's render, before the browser paints it.
fn observer() -> String {
    format!(
        "window.__firstTranscript = new Promise((resolve) => {{
  new MutationObserver((_, observer) => {{
    if (document.querySelector('{ENTRY}')) {{
      observer.disconnect();
      resolve(performance.now());
    }}
  }}).observe(document, {{ childList: true, subtree: true }});
}});"
    )
}

/// Waits for the first transcript entry of the page just loaded; returns that time and when the page's HTML
/// had arrived (the navigation's `responseEnd`), both in milliseconds since the navigation started.
const FIRST_TRANSCRIPT: &str = "const done = arguments[arguments.length - 1];
window.__firstTranscript.then((transcript) => {
  const navigation = performance.getEntriesByType('navigation')[0];
  done({ transcript, document: navigation.responseEnd });
});";

/// Waits until a service worker is active and controls the page.
const CONTROLLED: &str = "const done = arguments[arguments.length - 1];
navigator.serviceWorker.ready.then(() => navigator.serviceWorker.controller
  ? done(true)
  : navigator.serviceWorker.addEventListener('controllerchange', () => done(true), { once: true }));";

/// One page load, in milliseconds since its navigation started.
#[derive(Debug, Clone, Copy)]
struct Load {
    /// The first transcript entry in the DOM.
    transcript: f64,
    /// The page's HTML received.
    document: f64,
}

/// The loads of one network profile.
#[derive(Debug, Default)]
struct Loads {
    cold: Vec<Load>,
    warm: Vec<Load>,
}

/// The browser did not apply the network conditions: the loads would not measure what the rows say.
#[derive(Debug)]
struct NotThrottled(String);

impl std::fmt::Display for NotThrottled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotThrottled {}

pub async fn measure(plan: Plan) -> anyhow::Result<Vec<Row>> {
    let web = web_dir()?;
    // An agent that prints 20 lines over a second: its run ends with a short transcript stored.
    let server = Server::start_on(None, Some(&web), 20, 1, 1).await?;
    let run = finished_run(&server).await?;
    let page = format!("{}/runs/{run}", server.url);
    let driver = Driver::start()?;
    let measured = async {
        let throttled = loads(&driver, &page, &fast_4g(), plan.page_loads).await?;
        let unthrottled = loads(&driver, &page, &no_throttling(), plan.page_loads).await?;
        anyhow::Ok((throttled, unthrottled))
    };
    let (throttled, unthrottled) = match measured.await {
        Ok(loads) => loads,
        Err(err) => {
            let Some(why) = err.downcast_ref::<NotThrottled>() else {
                return Err(err);
            };
            if !plan.quick {
                return Err(err.context(format!(
                    "this browser ({}) cannot be measured under Fast 4G",
                    browser_version()
                )));
            }
            return Ok(vec![Row {
                measure: "First transcript render, Fast 4G, cold and warm".into(),
                target: "≤ 500 ms (warm)".into(),
                measured: format!("not measured: {why} ({})", browser_version()),
                floor: "–".into(),
            }]);
        }
    };
    Ok(vec![
        row(
            format!(
                "First transcript render, Fast 4G, cold (fresh profile), {} loads, p50 / p90",
                plan.page_loads
            ),
            "–",
            &throttled.cold,
            &unthrottled.cold,
        ),
        row(
            format!(
                "First transcript render, Fast 4G, service worker warm, {} loads, p50 / p90",
                plan.page_loads
            ),
            "≤ 500 ms",
            &throttled.warm,
            &unthrottled.warm,
        ),
    ])
}

/// The row of one kind of load: p50 / p90 of the throttled loads. The floor is the same loads without
/// throttling (what the page costs on this machine with the network's cost taken out, so the ratio is what
/// Fast 4G adds), with when the throttled loads had their HTML (no render can come before it).
fn row(measure: String, target: &str, throttled: &[Load], unthrottled: &[Load]) -> Row {
    let samples = |loads: &[Load], time: fn(&Load) -> f64| -> Vec<u64> {
        loads.iter().map(|load| (time(load) * 1e6) as u64).collect()
    };
    let mut render = samples(throttled, |load| load.transcript);
    let mut document = samples(throttled, |load| load.document);
    let mut floor = samples(unthrottled, |load| load.transcript);
    let p50 = percentile(&mut render, 50.0);
    let floor50 = percentile(&mut floor, 50.0);
    Row {
        measure,
        target: target.into(),
        measured: format!("{} / {}", ms(p50), ms(percentile(&mut render, 90.0))),
        floor: format!(
            "{} / {} without throttling ({} at p50); the HTML in at {} (p50)",
            ms(floor50),
            ms(percentile(&mut floor, 90.0)),
            ratio(p50, floor50),
            ms(percentile(&mut document, 50.0))
        ),
    }
}

/// `count` pairs of loads of `page` under `conditions`, each pair in a browser of its own: the first visit
/// (cold), then, once the service worker controls the page, a new navigation to it (warm).
async fn loads(driver: &Driver, page: &str, conditions: &Value, count: usize) -> anyhow::Result<Loads> {
    // Even the warm page's HTML comes over the network (the service worker answers a navigation
    // network-first): a load that had it sooner than the latency allows was not throttled.
    let latency = conditions["latency"].as_f64().unwrap_or_default();
    let checked = |load: Load| {
        if load.document < latency {
            return Err(anyhow::Error::new(NotThrottled(format!(
                "the page's HTML came in {:.1} ms, under the {latency} ms latency: not throttled",
                load.document
            ))));
        }
        Ok(load)
    };
    let mut loads = Loads::default();
    for _ in 0..count {
        let browser = driver.browser(conditions).await?;
        loads.cold.push(checked(browser.load(page).await?)?);
        browser.client.execute_async(CONTROLLED, vec![]).await?;
        // Leaving the page first, so that opening it again is a navigation like any other, not a reload.
        browser.client.goto("about:blank").await?;
        loads.warm.push(checked(browser.load(page).await?)?);
        browser.close().await?;
    }
    Ok(loads)
}

/// What `chromium --version` prints, for the reason a row is not measured.
fn browser_version() -> String {
    std::process::Command::new("chromium")
        .arg("--version")
        .output()
        .ok()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .filter(|version| !version.is_empty())
        .unwrap_or_else(|| "chromium --version printed nothing".to_owned())
}

/// The built web app: `$AGENTFARM_WEB_DIR`, else `frontend/dist` (`cargo xtask bench` builds it first).
fn web_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::var_os("AGENTFARM_WEB_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../frontend/dist"),
        PathBuf::from,
    );
    let dir = dir
        .canonicalize()
        .with_context(|| format!("no web app at {}: run `cargo xtask web` first", dir.display()))?;
    anyhow::ensure!(
        dir.join("index.html").exists(),
        "{} has no index.html: run `cargo xtask web` first",
        dir.display()
    );
    Ok(dir)
}

/// Launches a run and waits for its end, its lines stored; returns its id.
async fn finished_run(server: &Server) -> anyhow::Result<String> {
    let config = server.config().await?;
    let run = server.launch(&config).await?;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut retry = tokio::time::interval(Duration::from_millis(20));
    loop {
        retry.tick().await;
        let state: Run = server
            .http
            .get(format!("{}/api/runs/{run}", server.url))
            .send()
            .await?
            .json()
            .await?;
        if state.state.is_terminal() {
            anyhow::ensure!(state.last_seq > 0, "run {run} ended without a line");
            return Ok(run);
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "run {run} never ended");
    }
}

/// A chromedriver in its own process group: dropping it kills the group, chromedriver and every Chromium it
/// started (killing chromedriver alone would leave them running).
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id().and_then(|pid| i32::try_from(pid).ok()) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

impl Driver {
    fn start() -> anyhow::Result<Driver> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child =
            chromium::chromedriver(&which("chromedriver")?, port).context("cannot start chromedriver")?;
        Ok(Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        })
    }

    /// A new headless Chromium on a phone-sized screen with a profile of its own, every document observed
    /// ([`observer`]), the page and every service worker under network `conditions`.
    async fn browser(&self, conditions: &Value) -> anyhow::Result<Browser> {
        let profile = tempfile::tempdir()?;
        let options = json!({
            "binary": which("chromium")?,
            "args": chromium::headless_args(profile.path()),
            "mobileEmulation": {
                "deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 3.0, "mobile": true, "touch": true},
            },
        });
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), options);
        let client = self.connect(caps).await?;
        let workers = throttle_service_workers(&client, conditions.clone()).await?;
        let browser = Browser {
            client,
            workers,
            _profile: profile,
        };
        // Chromium applies the conditions to a target's requests only while its Network domain is enabled.
        browser.cdp("Network.enable", json!({})).await?;
        browser
            .cdp("Network.emulateNetworkConditions", conditions.clone())
            .await?;
        browser
            .cdp(
                "Page.addScriptToEvaluateOnNewDocument",
                json!({"source": observer()}),
            )
            .await?;
        Ok(browser)
    }

    /// A session, retried until chromedriver listens.
    async fn connect(&self, caps: serde_json::Map<String, Value>) -> anyhow::Result<Client> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let mut retry = tokio::time::interval(Duration::from_millis(50));
        loop {
            retry.tick().await;
            match ClientBuilder::new(HttpConnector::new())
                .capabilities(caps.clone())
                .connect(&self.url)
                .await
            {
                Ok(client) => return Ok(client),
                Err(err) if tokio::time::Instant::now() > deadline => {
                    bail!("no chromedriver session: {err}")
                }
                Err(_) => {}
            }
        }
    }
}

/// One Chromium session.
struct Browser {
    client: Client,
    /// The task throttling the service workers; ends with the browser, with how many it throttled.
    workers: JoinHandle<anyhow::Result<usize>>,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Opens `page`; returns its [`Load`] once the first transcript entry is there.
    async fn load(&self, page: &str) -> anyhow::Result<Load> {
        self.client.goto(page).await?;
        let times = self.client.execute_async(FIRST_TRANSCRIPT, vec![]).await?;
        let time = |name: &str| {
            times[name]
                .as_f64()
                .with_context(|| format!("no {name} time in {times}"))
        };
        Ok(Load {
            transcript: time("transcript")?,
            document: time("document")?,
        })
    }

    /// A Chrome DevTools Protocol command to the page, through chromedriver.
    async fn cdp(&self, cmd: &str, params: Value) -> anyhow::Result<()> {
        let command = Cdp {
            cmd: cmd.into(),
            params,
        };
        self.client.issue_cmd(command).await?;
        Ok(())
    }

    /// Ends the browser; fails if no service worker ran under the conditions.
    async fn close(self) -> anyhow::Result<()> {
        self.client.close().await?;
        let throttled = self.workers.await??;
        if throttled == 0 {
            return Err(anyhow::Error::new(NotThrottled(
                "no service worker ran under the network conditions".to_owned(),
            )));
        }
        Ok(())
    }
}

/// A DevTools connection to the browser itself (chromedriver's `debuggerAddress`).
struct DevTools {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl DevTools {
    async fn connect(client: &Client) -> anyhow::Result<DevTools> {
        let address = client
            .capabilities()
            .and_then(|caps| caps["goog:chromeOptions"]["debuggerAddress"].as_str())
            .context("chromedriver named no debuggerAddress")?;
        let version: Value = reqwest::get(format!("http://{address}/json/version"))
            .await?
            .json()
            .await?;
        let url = version["webSocketDebuggerUrl"]
            .as_str()
            .with_context(|| format!("no webSocketDebuggerUrl in {version}"))?;
        let (ws, _) = tokio_tungstenite::connect_async(url).await?;
        Ok(DevTools { ws, next_id: 0 })
    }

    /// Sends a command to the browser or (with `session`) to an attached target; returns its id.
    async fn send(&mut self, session: Option<&str>, method: &str, params: Value) -> anyhow::Result<u64> {
        self.next_id += 1;
        let mut command = json!({"id": self.next_id, "method": method, "params": params});
        if let Some(session) = session {
            command["sessionId"] = json!(session);
        }
        self.ws.send(Message::text(command.to_string())).await?;
        Ok(self.next_id)
    }

    /// The next message (an answer or an event); nothing once the browser has gone.
    async fn next(&mut self) -> anyhow::Result<Option<Value>> {
        while let Some(message) = self.ws.next().await {
            match message {
                Ok(Message::Text(text)) => return Ok(Some(serde_json::from_str(&text)?)),
                Ok(_) => {}
                Err(_) => return Ok(None),
            }
        }
        Ok(None)
    }
}

/// Puts every service worker of the browser under network `conditions`, as DevTools does:
/// `Network.emulateNetworkConditions` on the page covers the page's own requests (its document, scripts, REST
/// calls and WebSocket, and those the worker lets through to the network) but not the fetches the worker
/// makes itself (its install, and the network-first page it answers a navigation with), since the worker is
/// a DevTools target of its own. Each one is attached as it starts and held before its script runs until it
/// is throttled. DevTools keeps an attached worker running, so the warm loads find it started. Returns once
/// this is in place; the task ends with the browser.
async fn throttle_service_workers(
    client: &Client,
    conditions: Value,
) -> anyhow::Result<JoinHandle<anyhow::Result<usize>>> {
    let mut devtools = DevTools::connect(client).await?;
    let (ready, in_place) = oneshot::channel();
    let task = tokio::spawn(async move {
        let auto_attach = devtools
            .send(
                None,
                "Target.setAutoAttach",
                json!({
                    "autoAttach": true, "waitForDebuggerOnStart": true, "flatten": true,
                    "filter": [{"type": "service_worker"}],
                }),
            )
            .await?;
        let mut ready = Some(ready);
        let mut throttled = 0;
        while let Some(message) = devtools.next().await? {
            if let Some(error) = message.get("error") {
                bail!("DevTools refused a command: {error}");
            }
            if message["id"] == json!(auto_attach) {
                ready.take().map(|ready| ready.send(()));
            } else if message["method"] == "Target.attachedToTarget" {
                let session = message["params"]["sessionId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                devtools.send(Some(&session), "Network.enable", json!({})).await?;
                devtools
                    .send(
                        Some(&session),
                        "Network.emulateNetworkConditions",
                        conditions.clone(),
                    )
                    .await?;
                devtools
                    .send(Some(&session), "Runtime.runIfWaitingForDebugger", json!({}))
                    .await?;
                throttled += 1;
            }
        }
        Ok(throttled)
    });
    match tokio::time::timeout(PATIENCE, in_place).await {
        Ok(Ok(())) => Ok(task),
        // The task ended before the auto-attach was in place: its error says why.
        Ok(Err(_)) => Err(task
            .await?
            .err()
            .unwrap_or_else(|| anyhow::anyhow!("DevTools closed"))),
        Err(_) => bail!("DevTools never answered Target.setAutoAttach"),
    }
}

fn which(program: &str) -> anyhow::Result<PathBuf> {
    chromium::which(program)
        .with_context(|| format!("{program} is missing: install Debian's chromium and chromium-driver"))
}
