//! Chromium and chromedriver as installed (Debian's `chromium` and `chromium-driver`), and chromedriver's
//! passage to Chrome DevTools. Shared by the browser tests and the page-load benchmark, which includes this
//! file by path.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use fantoccini::wd::WebDriverCompatibleCommand;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

/// `program` on the `PATH`, if it is there.
pub fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.exists())
}

/// Starts `chromedriver` on `port`, in a process group of its own: killing the group ends it and every
/// Chromium it started (killing chromedriver alone would leave them running).
pub fn chromedriver(chromedriver: &Path, port: u16) -> std::io::Result<Child> {
    Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
}

/// The flags of every headless Chromium here, with its profile in `profile`.
pub fn headless_args(profile: &Path) -> Vec<String> {
    [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect()
}

/// A Chrome DevTools Protocol command to the page, sent through chromedriver (`goog/cdp/execute`).
#[derive(Debug)]
pub struct Cdp {
    /// The method, e.g. `Network.enable`.
    pub cmd: String,
    /// Its parameters.
    pub params: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(&self, base_url: &url::Url, session_id: Option<&str>) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({"cmd": self.cmd, "params": self.params}).to_string()),
        )
    }
}
