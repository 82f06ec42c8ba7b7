//! Driving headless Chromium (Debian's `chromium` + `chromium-driver`) over WebDriver against a real server.

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::{Value, json};
use tokio::process::Child;

use crate::chromium::{self, Cdp};
use crate::harness::PATIENCE;

/// How the page is shown.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Viewport {
    /// A desktop window: a 1280×800 viewport.
    Desktop,
    /// An iPhone: 390×844, device pixel ratio 3, touch, mobile user agent.
    Phone,
}

/// A chromedriver process and one browser session.
pub struct Browser {
    pub client: Client,
    _driver: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    /// Ends chromedriver and the Chromium it started (its own process group): killing chromedriver alone
    /// would leave Chromium running, and writing into its profile dir, after the test.
    fn drop(&mut self) {
        if let Some(pid) = self._driver.id().and_then(|pid| i32::try_from(pid).ok()) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    pub async fn start(viewport: Viewport) -> Browser {
        let driver_bin = which("chromedriver");
        let port = free_port();
        let driver = chromium::chromedriver(&driver_bin, port).unwrap();
        let profile = tempfile::tempdir().unwrap();
        let mut args = chromium::headless_args(profile.path());
        args.push("--window-size=1280,800".into());
        let mut options = json!({"binary": which("chromium"), "args": args});
        if viewport == Viewport::Phone {
            options["mobileEmulation"] = json!({
                "deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 3.0, "mobile": true, "touch": true},
                "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1",
            });
        }
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), options);
        // chromedriver (plain HTTP on loopback) needs a moment to listen: retry the connection until it answers.
        let url = format!("http://127.0.0.1:{port}");
        let client = tokio::time::timeout(PATIENCE, async {
            loop {
                match ClientBuilder::new(HttpConnector::new())
                    .capabilities(caps.clone())
                    .connect(&url)
                    .await
                {
                    Ok(client) => return client,
                    Err(fantoccini::error::NewSessionError::NotW3C(_)) => panic!("chromedriver is not W3C"),
                    Err(_) => tokio::task::yield_now().await,
                }
            }
        })
        .await
        .unwrap();
        let browser = Browser {
            client,
            _driver: driver,
            _profile: profile,
        };
        if viewport == Viewport::Desktop {
            // The window's size includes its frame: the page itself gets 1280×800.
            browser
                .cdp(
                    "Emulation.setDeviceMetricsOverride",
                    json!({"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": false}),
                )
                .await;
        }
        browser
    }

    /// Waits for an element matching `css`.
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
    }

    /// Waits until `script` (a JS expression) is truthy; returns its value.
    pub async fn until(&self, script: &str) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let value = self
                .client
                .execute(&format!("return ({script});"), vec![])
                .await
                .unwrap();
            if !(value.is_null() || value == json!(false) || value == json!(0) || value == json!("")) {
                return value;
            }
            assert!(tokio::time::Instant::now() < deadline, "never true: {script}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Saves a screenshot under `target/e2e/NAME.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.unwrap();
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/e2e");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// True when the page is wider than its viewport.
    pub async fn overflows_horizontally(&self) -> bool {
        let value = self
            .client
            .execute(
                "return document.documentElement.scrollWidth > window.innerWidth + 1;",
                vec![],
            )
            .await
            .unwrap();
        value == json!(true)
    }

    /// Runs a Chrome DevTools Protocol command through chromedriver.
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.client
            .issue_cmd(Cdp {
                cmd: cmd.into(),
                params,
            })
            .await
            .unwrap()
    }
}

fn which(program: &str) -> PathBuf {
    chromium::which(program).unwrap_or_else(|| {
        panic!("{program} is missing: install Debian's chromium and chromium-driver (`.ci/run` does)")
    })
}
