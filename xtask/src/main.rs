//! Project tasks, so that a fresh clone needs only cargo (and Node.js for the pinned npm tools):
//!
//! - `cargo xtask run [-- SERVE FLAGS]`: installs the pinned tools, builds the server and the agent runner
//!   (release), and serves agentfarm on the local runtime with a data dir in `.agentfarm/`, printing its URL.
//! - `cargo xtask test`: installs the pinned tools, then checks formatting, lints, and runs every test.
//!
//! Pinned npm tools (the Claude Code CLI) are declared in `package.json`/`package-lock.json` and installed into
//! `node_modules/` with `npm ci`, only when missing or at another version.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let task = args.next().unwrap_or_default();
    let rest: Vec<String> = args.skip_while(|a| a == "--").collect();
    let root = workspace_root();
    match task.as_str() {
        "run" => run(&root, &rest),
        "test" => test(&root, &rest),
        _ => {
            eprintln!(
                "usage: cargo xtask run [-- agentfarm serve flags]\n       cargo xtask test [-- cargo test args]"
            );
            bail!("unknown task {task:?}")
        }
    }
}

fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map_or(manifest.clone(), Path::to_path_buf)
}

/// Runs a command in `dir`, its output going straight to the terminal; fails if it fails.
fn step(dir: &Path, program: &str, args: &[&str], what: &str) -> Result<()> {
    eprintln!("==> {what}");
    let status = Command::new(program)
        .args(args)
        .current_dir(dir)
        .status()
        .with_context(|| format!("cannot run {program}; is it installed?"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

/// The pinned Claude Code CLI, installed with `npm ci` when missing or at another version.
fn ensure_npm_tools(root: &Path) -> Result<PathBuf> {
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("package.json"))?)?;
    let wanted = manifest["devDependencies"]["@anthropic-ai/claude-code"]
        .as_str()
        .context("package.json pins no CLI")?;
    let claude = root.join("node_modules/.bin/claude");
    let installed = Command::new(&claude)
        .arg("--version")
        .output()
        .ok()
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
        .unwrap_or_default();
    if !installed.starts_with(wanted) {
        step(
            root,
            "npm",
            &["ci", "--no-audit", "--no-fund"],
            &format!("installing the pinned Claude Code CLI {wanted} (npm ci)"),
        )?;
    }
    Ok(claude)
}

fn run(root: &Path, extra: &[String]) -> Result<()> {
    let claude = ensure_npm_tools(root)?;
    step(
        root,
        "cargo",
        &[
            "build",
            "--release",
            "--package",
            "agentfarm",
            "--package",
            "agentfarm-runner",
        ],
        "building agentfarm and its agent runner (release)",
    )?;
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let mut command = Command::new(target.join("release/agentfarm"));
    command
        .arg("serve")
        .arg("--data-dir")
        .arg(root.join(".agentfarm/data"))
        .arg("--agent-command")
        .arg(target.join("release/agentfarm-runner"))
        .arg("--claude-command")
        .arg(&claude);
    if std::env::var_os("AGENTFARM_LISTEN").is_none() && !extra.iter().any(|a| a.starts_with("--listen")) {
        let listen = if TcpListener::bind("127.0.0.1:8080").is_ok() {
            "127.0.0.1:8080"
        } else {
            "127.0.0.1:0"
        };
        command.args(["--listen", listen]);
    }
    if is_root() {
        eprintln!(
            "note: running as root, so agents get IS_SANDBOX=1 (Claude Code refuses unattended mode as root otherwise).\n      The local runtime does not isolate agents; prefer a normal user."
        );
        command.args(["--agent-env", "IS_SANDBOX=1"]);
    }
    command.args(extra);
    eprintln!("==> starting agentfarm (Ctrl-C stops it)");
    Err(command.exec()).context("cannot start agentfarm")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

fn test(root: &Path, extra: &[String]) -> Result<()> {
    let claude = ensure_npm_tools(root)?;
    step(
        root,
        "cargo",
        &["fmt", "--all", "--check"],
        "checking formatting (cargo fmt)",
    )?;
    step(
        root,
        "cargo",
        &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"],
        "linting (cargo clippy)",
    )?;
    eprintln!("==> running every test (cargo test --workspace)");
    let mut child = Command::new("cargo")
        .args(["test", "--workspace"])
        .args(extra)
        .env("AGENTFARM_CLAUDE_BIN", &claude)
        .current_dir(root)
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot run cargo")?;
    let mut totals = Totals::default();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line?;
            println!("{line}");
            totals.add(&line);
        }
    }
    let status = child.wait()?;
    // One closing line for every test binary together.
    println!(
        "tests: {} passed, {} failed, {} skipped",
        totals.passed, totals.failed, totals.ignored
    );
    if !status.success() {
        bail!("tests failed ({status})");
    }
    if totals.passed == 0 {
        bail!("no test ran");
    }
    Ok(())
}

/// Sums of the `test result:` lines of every test binary.
#[derive(Default)]
struct Totals {
    passed: u64,
    failed: u64,
    ignored: u64,
}

impl Totals {
    /// Reads `test result: ok. 15 passed; 0 failed; 0 ignored; …`.
    fn add(&mut self, line: &str) {
        let Some(rest) = line.strip_prefix("test result: ") else {
            return;
        };
        for part in rest.split(['.', ';']) {
            let mut words = part.split_whitespace();
            if let (Some(count), Some(kind)) =
                (words.next().and_then(|n| n.parse::<u64>().ok()), words.next())
            {
                match kind {
                    "passed" => self.passed += count,
                    "failed" => self.failed += count,
                    "ignored" => self.ignored += count,
                    _ => {}
                }
            }
        }
    }
}
