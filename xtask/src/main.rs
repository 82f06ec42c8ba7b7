//! Project tasks, so that a fresh clone needs only cargo (and Node.js for the pinned npm tools):
//!
//! - `cargo xtask run [-- SERVE FLAGS]`: installs the pinned tools, builds the web app, the server and the agent
//!   runner (release), and serves agentfarm on the local runtime with a data dir in `.agentfarm/` and the web
//!   app from `frontend/dist`, printing its URL.
//! - `cargo xtask test`: installs the pinned tools, checks formatting and lints, builds the web app, brings
//!   the real-cluster suite's Kubernetes up (see `cluster`), runs every test (with `AGENTFARM_WEB_DIR`
//!   pointing at the build and `AGENTFARM_CLUSTER_STATE` at the cluster), takes the cluster down whatever
//!   happened, then runs the quick benchmarks.
//! - `cargo xtask cluster build | up | images | bench | down`: the test cluster alone — build its Kubernetes
//!   from `tests/kubernetes` (Go), bring it up with the agent and control-plane images built and imported,
//!   rebuild the images, measure launch → pod running on it (up, bench, down), take it down. Needs root and
//!   the Debian packages `.ci/run` installs.
//! - `cargo xtask web`: builds the web app into `frontend/dist` (`trunk build --release`), with `.br`/`.gz`
//!   siblings of its text and wasm files for the server to send precompressed.
//! - `cargo xtask bench [--quick]`: the benchmarks (release build) as one Markdown table with the page
//!   weight; `--quick` (seconds, small sizes) also runs at the end of `cargo xtask test`. Its page loads
//!   need Chromium and chromedriver, as the browser tests do.
//! - `cargo xtask size`: the first-load bytes of the built web app (wasm + js + css that `index.html` names):
//!   raw, `gzip -9` and `brotli -q 11`, against the 200 KB brotli target. Informational: exits 0.
//! - `cargo xtask icons`: renders `icons/agentfarm.svg` into the PNG icons (needs `rsvg-convert`, Debian
//!   `librsvg2-bin`; the PNGs are committed, so only whoever changes the drawing needs it).
//!
//! Pinned npm tools (the Claude Code CLI, binaryen's `wasm-opt`) are declared in `package.json`/
//! `package-lock.json` and installed into `node_modules/` with `npm ci`, only when missing or at another
//! version. The web build's cargo tools (trunk, wasm-bindgen-cli) are `cargo install`ed only when
//! `--version` differs; the first time takes about ten minutes.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

mod cluster;

/// The npm package of the Claude Code CLI.
const CLAUDE_CODE: &str = "@anthropic-ai/claude-code";
/// trunk 0.22 needs rustc >= 1.96.1; the toolchain is 1.95 (rust-toolchain.toml).
const TRUNK_VERSION: &str = "0.21.14";
/// The target trunk builds the app for.
const WASM_TARGET: &str = "wasm32-unknown-unknown";
/// First-load budget of the web app, brotli-compressed.
const FIRST_LOAD_TARGET_BYTES: u64 = 200_000;
/// The icons rendered from `icons/agentfarm.svg`: file name and edge in pixels. The drawing keeps its art in
/// the central 80 % circle on an opaque background, so the maskable icon is the same rendering.
const ICONS: [(&str, u32); 5] = [
    ("icon-192.png", 192),
    ("icon-512.png", 512),
    ("maskable-512.png", 512),
    ("apple-touch-icon-180.png", 180),
    ("favicon-32.png", 32),
];

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let task = args.next().unwrap_or_default();
    let rest: Vec<String> = args.skip_while(|a| a == "--").collect();
    let root = workspace_root();
    match task.as_str() {
        "run" => run(&root, &rest),
        "test" => test(&root, &rest),
        "web" => build_web(&root).map(|_| ()),
        "size" => size(&root),
        "bench" => {
            let dist = build_web(&root)?;
            bench(&root, &dist, rest.iter().any(|arg| arg == "--quick"))
        }
        "icons" => icons(&root),
        "cluster" => cluster::task(&root, &rest),
        _ => {
            eprintln!(
                "usage: cargo xtask run [-- agentfarm serve flags]\n       cargo xtask test [-- cargo test args]\n       \
                 cargo xtask bench [--quick]\n       cargo xtask cluster build | up | images | bench | down\n       \
                 cargo xtask web | size | icons"
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
    let mut command = Command::new(program);
    command.args(args).current_dir(dir);
    run_step(&mut command, what)
}

/// Runs `command`, its output going straight to the terminal; fails if it fails.
fn run_step(command: &mut Command, what: &str) -> Result<()> {
    eprintln!("==> {what}");
    let program = command.get_program().to_string_lossy().into_owned();
    let status = command
        .status()
        .with_context(|| format!("cannot run {program}; is it installed?"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

/// The first line `program --version` prints with `path` as `PATH`, or nothing when it cannot run.
fn tool_version(program: &str, path: &OsString) -> String {
    Command::new(program)
        .arg("--version")
        .env("PATH", path)
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned()
        })
        .unwrap_or_default()
}

/// The pinned npm tools of `package.json` (the Claude Code CLI, binaryen), installed with `npm ci` when any is
/// missing or at another version. Returns the Claude Code CLI.
fn ensure_npm_tools(root: &Path) -> Result<PathBuf> {
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("package.json"))?)?;
    let pins = manifest["devDependencies"]
        .as_object()
        .context("package.json has no devDependencies")?;
    if !pins.contains_key(CLAUDE_CODE) {
        bail!("package.json pins no Claude Code CLI");
    }
    let claude = root.join("node_modules/.bin/claude");
    let current = |name: &str, wanted: &str| {
        if name == CLAUDE_CODE {
            // Ask the CLI itself: its package can be present while its install step did not run.
            Command::new(&claude)
                .arg("--version")
                .output()
                .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).starts_with(wanted))
        } else {
            installed_npm_version(root, name).as_deref() == Some(wanted)
        }
    };
    let stale: Vec<String> = pins
        .iter()
        .map(|(name, wanted)| (name, wanted.as_str().unwrap_or_default()))
        .filter(|(name, wanted)| !current(name, wanted))
        .map(|(name, wanted)| format!("{name}@{wanted}"))
        .collect();
    if !stale.is_empty() {
        step(
            root,
            "npm",
            &["ci", "--no-audit", "--no-fund"],
            &format!("installing the pinned npm tools {} (npm ci)", stale.join(", ")),
        )?;
    }
    Ok(claude)
}

/// The version of an npm package installed in `node_modules/`.
fn installed_npm_version(root: &Path, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(root.join("node_modules").join(name).join("package.json")).ok()?;
    let manifest: serde_json::Value = serde_json::from_str(&text).ok()?;
    manifest["version"].as_str().map(str::to_owned)
}

/// `PATH` for the web build: `node_modules/.bin` first (binaryen's `wasm-opt`), then cargo's bin dir (trunk,
/// wasm-bindgen), then the inherited one.
fn web_tools_path(root: &Path) -> Result<OsString> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
        .context("neither CARGO_HOME nor HOME is set")?;
    let mut dirs = vec![root.join("node_modules/.bin"), cargo_home.join("bin")];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    Ok(std::env::join_paths(dirs)?)
}

/// The pinned web build tools: the wasm target, trunk, wasm-bindgen-cli (equal to frontend/Trunk.toml, which
/// equals Cargo.lock) and binaryen's `wasm-opt` (package.json). Installs what is missing or at another version
/// and returns the `PATH` to build with.
fn ensure_web_tools(root: &Path) -> Result<OsString> {
    ensure_npm_tools(root)?;
    let path = web_tools_path(root)?;
    let targets = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(root)
        .output()
        .context("cannot run rustup")?;
    if !String::from_utf8_lossy(&targets.stdout)
        .lines()
        .any(|t| t.trim() == WASM_TARGET)
    {
        step(
            root,
            "rustup",
            &["target", "add", WASM_TARGET],
            &format!("adding the {WASM_TARGET} target (rustup)"),
        )?;
    }
    if tool_version("trunk", &path) != format!("trunk {TRUNK_VERSION}") {
        let mut install = Command::new("cargo");
        install
            .args(["install", "--locked", &format!("trunk@{TRUNK_VERSION}")])
            .current_dir(root);
        run_step(
            &mut install,
            &format!("installing trunk {TRUNK_VERSION} (cargo install, about 7 minutes the first time)"),
        )?;
    }
    let bindgen = wasm_bindgen_pin(root)?;
    if tool_version("wasm-bindgen", &path) != format!("wasm-bindgen {bindgen}") {
        // No --locked: its lockfile pins a webpki-roots release missing from the crates.io index.
        let mut install = Command::new("cargo");
        install
            .args(["install", &format!("wasm-bindgen-cli@{bindgen}")])
            .current_dir(root);
        run_step(
            &mut install,
            &format!("installing wasm-bindgen-cli {bindgen} (cargo install, about 2 minutes the first time)"),
        )?;
    }
    let wasm_opt = tool_version("wasm-opt", &path);
    let binaryen = installed_npm_version(root, "binaryen").unwrap_or_default();
    let major = binaryen.split('.').next().unwrap_or_default();
    if major.is_empty() || !wasm_opt.contains(&format!("version {major}")) {
        bail!("wasm-opt on PATH is {wasm_opt:?}, not binaryen {binaryen} from node_modules/.bin");
    }
    Ok(path)
}

/// `[tools] wasm_bindgen` of frontend/Trunk.toml: the wasm-bindgen CLI trunk must find.
fn wasm_bindgen_pin(root: &Path) -> Result<String> {
    let trunk_toml = std::fs::read_to_string(root.join("frontend/Trunk.toml"))?;
    trunk_toml
        .lines()
        .find_map(|line| {
            let value = line
                .trim()
                .strip_prefix("wasm_bindgen")?
                .trim()
                .strip_prefix('=')?;
            Some(value.trim().trim_matches('"').to_owned())
        })
        .context("frontend/Trunk.toml pins no [tools] wasm_bindgen")
}

/// Builds the web app into `frontend/dist` and returns that directory.
fn build_web(root: &Path) -> Result<PathBuf> {
    let path = ensure_web_tools(root)?;
    // Trunk.toml sets `offline = true`, which trunk passes on to cargo: every crate must be here first.
    let mut fetch = Command::new("cargo");
    fetch.arg("fetch").current_dir(root);
    run_step(&mut fetch, "fetching crates for the web build (cargo fetch)")?;
    let frontend = root.join("frontend");
    let mut trunk = Command::new("trunk");
    trunk
        .args(["build", "--release"])
        .env("PATH", &path)
        .current_dir(&frontend);
    run_step(&mut trunk, "building the web app (trunk build --release)")?;
    let dist = frontend.join("dist");
    precompress(&dist);
    Ok(dist)
}

/// Files the server may send precompressed.
fn compressible(name: &str) -> bool {
    [".wasm", ".js", ".css", ".svg", ".webmanifest"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

/// Writes `.gz` (gzip -9) and `.br` (brotli -q 11) siblings of the compressible files in `dist`, for the
/// server to send to clients that accept them. Skipped, with a note, when a compressor is not installed.
fn precompress(dist: &Path) {
    eprintln!("==> precompressing the web app (gzip -9, brotli -q 11)");
    let Ok(entries) = std::fs::read_dir(dist) else {
        return;
    };
    let files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.is_file() && compressible(&path.file_name().unwrap_or_default().to_string_lossy())
        })
        .collect();
    for (program, args) in [
        ("gzip", ["-9", "-n", "-k", "-f"]),
        ("brotli", ["-q", "11", "-k", "-f"]),
    ] {
        for file in &files {
            let done = Command::new(program)
                .args(args)
                .arg(file)
                .status()
                .is_ok_and(|status| status.success());
            if !done {
                eprintln!(
                    "note: `{program}` failed or is missing (Debian: apt-get install {program}); no .{} files",
                    if program == "gzip" { "gz" } else { "br" }
                );
                break;
            }
        }
    }
}

fn run(root: &Path, extra: &[String]) -> Result<()> {
    let claude = ensure_npm_tools(root)?;
    let dist = build_web(root)?;
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
    if std::env::var_os("AGENTFARM_WEB_DIR").is_none() && !extra.iter().any(|a| a.starts_with("--web-dir")) {
        command.arg("--web-dir").arg(&dist);
    }
    // The embedded default, even on a machine whose kubeconfig names a cluster: `-- --runtime auto` or
    // `-- --runtime kubernetes` asks for one.
    if std::env::var_os("AGENTFARM_RUNTIME").is_none() && !extra.iter().any(|a| a.starts_with("--runtime")) {
        command.args(["--runtime", "local"]);
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
    let dist = build_web(root)?;
    // The real-cluster suite's cluster, up for the whole test run and taken down after it, whatever happened.
    let cluster = cluster::Cluster::up(root)?;
    let tested = run_tests(root, extra, &claude, &dist);
    let taken_down = cluster.down();
    tested?;
    taken_down?;
    bench(root, &dist, true)
}

/// `cargo test --workspace --no-fail-fast` with a deadline; the real-cluster suite finds the cluster through
/// `AGENTFARM_CLUSTER_STATE`.
fn run_tests(root: &Path, extra: &[String], claude: &Path, dist: &Path) -> Result<()> {
    let deadline = test_deadline()?;
    eprintln!(
        "==> running every test (cargo test --workspace; stopped after {} minutes)",
        deadline.as_secs() / 60
    );
    let mut child = Command::new("cargo")
        // Every test binary runs even when an earlier one failed, so one run shows every failure.
        .args(["test", "--workspace", "--no-fail-fast"])
        .args(extra)
        .env("AGENTFARM_CLAUDE_BIN", claude)
        .env("AGENTFARM_WEB_DIR", dist)
        .env("AGENTFARM_CLUSTER_STATE", cluster::state_dir())
        .current_dir(root)
        .stdout(Stdio::piped())
        // Its own process group, so the watchdog can stop cargo, the test binaries and what they started.
        .process_group(0)
        .spawn()
        .context("cannot run cargo")?;
    let watchdog = Watchdog::start(child.id(), deadline);
    let mut totals = Totals::default();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line?;
            println!("{line}");
            totals.add(&line);
        }
    }
    let status = child.wait()?;
    let timed_out = watchdog.finish();
    // One closing line for every test binary together.
    println!(
        "tests: {} passed, {} failed, {} skipped",
        totals.passed, totals.failed, totals.ignored
    );
    if timed_out {
        bail!(
            "the tests were stopped after {} minutes; still running then: {}",
            deadline.as_secs() / 60,
            totals.slow.join(", ")
        );
    }
    if !status.success() {
        bail!("tests failed ({status})");
    }
    if totals.passed == 0 {
        bail!("no test ran");
    }
    Ok(())
}

/// How long every test together may take: `AGENTFARM_TEST_MINUTES`, 40 by default. A hung test then fails
/// the run with its name instead of running into CI's own limit with nothing said.
fn test_deadline() -> Result<std::time::Duration> {
    let minutes = match std::env::var("AGENTFARM_TEST_MINUTES") {
        Ok(value) => value
            .parse::<u64>()
            .ok()
            .filter(|minutes| *minutes > 0)
            .with_context(|| {
                format!("AGENTFARM_TEST_MINUTES must be a positive number of minutes, not {value:?}")
            })?,
        Err(_) => 40,
    };
    Ok(std::time::Duration::from_secs(minutes * 60))
}

/// Kills a process group that runs past its deadline.
struct Watchdog {
    done: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<bool>,
}

impl Watchdog {
    fn start(group: u32, deadline: std::time::Duration) -> Self {
        let (done, finished) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            if finished.recv_timeout(deadline) != Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
                return false;
            }
            eprintln!("==> the tests ran past their deadline: stopping them");
            let stopped = Command::new("kill")
                .args(["-KILL", "--", &format!("-{group}")])
                .status();
            if !stopped.is_ok_and(|status| status.success()) {
                eprintln!("==> could not stop process group {group}");
            }
            true
        });
        Self { done, thread }
    }

    /// Whether the deadline passed before this call.
    fn finish(self) -> bool {
        let _ = self.done.send(());
        self.thread.join().unwrap_or(true)
    }
}

/// The first-load files of the web app built in `dist` (every wasm, js and css file that `index.html`
/// names) with their bytes raw, `gzip -9` and `brotli -q 11` (`None` when the tool is missing).
fn first_load(dist: &Path) -> Result<Vec<(String, [Option<u64>; 3])>> {
    let index = std::fs::read_to_string(dist.join("index.html")).with_context(|| {
        format!(
            "no {}/index.html; build the web app first: cargo xtask web",
            dist.display()
        )
    })?;
    let mut files: Vec<(String, PathBuf)> = std::fs::read_dir(dist)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter_map(|path| {
            let name = path.file_name()?.to_string_lossy().into_owned();
            let first_load = [".wasm", ".js", ".css"].iter().any(|ext| name.ends_with(ext))
                && index.contains(&format!("/{name}"));
            (first_load && path.is_file()).then_some((name, path))
        })
        .collect();
    files.sort();
    Ok(files
        .into_iter()
        .map(|(name, path)| {
            let sizes = [
                std::fs::metadata(&path).ok().map(|m| m.len()),
                compressed_len(&path, "gzip", &["-9", "-n", "-c"]),
                compressed_len(&path, "brotli", &["-q", "11", "-c"]),
            ];
            (name, sizes)
        })
        .collect())
}

/// The sum of each column of [`first_load`].
fn first_load_totals(files: &[(String, [Option<u64>; 3])]) -> [Option<u64>; 3] {
    let mut totals = [Some(0u64); 3];
    for (_, sizes) in files {
        for (total, size) in totals.iter_mut().zip(sizes) {
            *total = total.zip(*size).map(|(a, b)| a + b);
        }
    }
    totals
}

/// Runs the benchmarks (`backend/benches/bench`, release build) and adds the page weight of the web app built
/// in `dist`: one Markdown table. `quick` runs them in seconds with small sizes, to keep them working.
fn bench(root: &Path, dist: &Path, quick: bool) -> Result<()> {
    let mut args = vec!["bench", "-p", "agentfarm", "--bench", "bench", "--"];
    if quick {
        args.push("--quick");
    }
    step(
        root,
        "cargo",
        &args,
        if quick {
            "benchmarks, quick mode (cargo bench)"
        } else {
            "benchmarks (cargo bench; a few minutes)"
        },
    )?;
    let totals = first_load_totals(&first_load(dist)?);
    println!(
        "| First load of `{}` (wasm + js + css), brotli (raw / gzip) | ≤ {} B brotli | {} B ({} / {}) | – |",
        dist.strip_prefix(root).unwrap_or(dist).display(),
        bytes(Some(FIRST_LOAD_TARGET_BYTES)),
        bytes(totals[2]),
        bytes(totals[0]),
        bytes(totals[1])
    );
    Ok(())
}

/// Prints the first-load bytes of the built web app, raw and compressed as a server would send them.
fn size(root: &Path) -> Result<()> {
    let files = first_load(&root.join("frontend/dist"))?;
    let width = files
        .iter()
        .map(|(name, _)| name.len())
        .max()
        .unwrap_or(0)
        .max(16);
    println!(
        "{:<width$} {:>10} {:>10} {:>13}",
        "first load (frontend/dist)", "raw", "gzip -9", "brotli -q 11"
    );
    for (name, sizes) in &files {
        println!(
            "{name:<width$} {:>10} {:>10} {:>13}",
            bytes(sizes[0]),
            bytes(sizes[1]),
            bytes(sizes[2])
        );
    }
    let totals = first_load_totals(&files);
    println!(
        "{:<width$} {:>10} {:>10} {:>13}",
        "total",
        bytes(totals[0]),
        bytes(totals[1]),
        bytes(totals[2])
    );
    match totals[2] {
        Some(brotli) => println!(
            "target: at most {} bytes brotli: {}",
            bytes(Some(FIRST_LOAD_TARGET_BYTES)),
            if brotli <= FIRST_LOAD_TARGET_BYTES {
                format!("met ({}% of it)", brotli * 100 / FIRST_LOAD_TARGET_BYTES)
            } else {
                format!(
                    "MISSED by {} bytes",
                    bytes(Some(brotli - FIRST_LOAD_TARGET_BYTES))
                )
            }
        ),
        None => println!(
            "target: at most {} bytes brotli: unknown, `brotli` is not installed (Debian: apt-get install brotli)",
            bytes(Some(FIRST_LOAD_TARGET_BYTES))
        ),
    }
    Ok(())
}

/// Bytes `program args… file` writes to stdout, or nothing when it cannot run.
fn compressed_len(file: &Path, program: &str, args: &[&str]) -> Option<u64> {
    let out = Command::new(program).args(args).arg(file).output().ok()?;
    out.status.success().then_some(out.stdout.len() as u64)
}

/// `1234567` → `1,234,567`; nothing → `-`.
fn bytes(size: Option<u64>) -> String {
    let Some(size) = size else {
        return "-".into();
    };
    let digits = size.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Renders `icons/agentfarm.svg` into every PNG icon the app names (manifest, index.html).
fn icons(root: &Path) -> Result<()> {
    let dir = root.join("icons");
    let source = dir.join("agentfarm.svg");
    for (name, edge) in ICONS {
        let edge = edge.to_string();
        let mut render = Command::new("rsvg-convert");
        render
            .args(["--width", &edge, "--height", &edge, "--output"])
            .arg(dir.join(name))
            .arg(&source);
        run_step(
            &mut render,
            &format!("rendering icons/{name} (rsvg-convert; Debian: librsvg2-bin)"),
        )?;
    }
    Ok(())
}

/// Sums of the `test result:` lines of every test binary.
#[derive(Default)]
struct Totals {
    passed: u64,
    failed: u64,
    ignored: u64,
    /// Tests reported as running for over 60 seconds and not finished since.
    slow: Vec<String>,
}

impl Totals {
    /// Reads `test result: ok. 15 passed; 0 failed; 0 ignored; …`, `test NAME has been running for over 60
    /// seconds` and `test NAME ... ok`.
    fn add(&mut self, line: &str) {
        if let Some(name) = line
            .strip_prefix("test ")
            .and_then(|rest| rest.strip_suffix(" has been running for over 60 seconds"))
        {
            self.slow.push(name.to_owned());
        } else if let Some((name, _)) = line
            .strip_prefix("test ")
            .and_then(|rest| rest.split_once(" ... "))
        {
            self.slow.retain(|slow| slow != name);
        }
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
