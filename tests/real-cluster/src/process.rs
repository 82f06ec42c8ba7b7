//! The cluster's processes: each started in a process group of its own with its output in a log file, and a
//! record of how it was started and its pid, so that another process (`down`, a test) can stop it or start
//! it again.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::layout::Layout;

/// How a process was started, and which one runs now.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// Its name, e.g. `kube-apiserver`.
    pub name: String,
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// The pid (also its process group).
    pub pid: i32,
}

/// Starts `program` with `args` as the process `name`; its output goes to its log.
pub fn start(layout: &Layout, name: &str, program: &Path, args: &[String]) -> Result<Record, Error> {
    std::fs::create_dir_all(layout.processes())?;
    let log_path = layout.log(name);
    if let Some(parent) = log_path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)?;
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .map_err(|source| Error::Spawn {
            program: program.display().to_string(),
            source,
        })?;
    let pid = i32::try_from(child.id()).map_err(|_| Error::Failed(format!("{name}: a pid out of range")))?;
    let record = Record {
        name: name.to_owned(),
        program: program.to_owned(),
        args: args.to_vec(),
        pid,
    };
    std::fs::write(layout.process_record(name), serde_json::to_vec_pretty(&record)?)?;
    // The child is left running: `down` (or a test) ends it through its record. Dropping the handle does not
    // wait for it or kill it.
    drop(child);
    Ok(record)
}

/// The record of process `name`, if it was started.
pub fn record(layout: &Layout, name: &str) -> Result<Option<Record>, Error> {
    match std::fs::read(layout.process_record(name)) {
        Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// Whether `pid` is a live process (a zombie is not: it has exited, and waits only to be reaped).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses and may hold anything.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Whether process `name` runs.
pub fn running(layout: &Layout, name: &str) -> Result<bool, Error> {
    Ok(record(layout, name)?.is_some_and(|record| alive(record.pid)))
}

/// Sends SIGTERM to the process groups of `names`, gives them `grace` to end, then sends SIGKILL; returns once
/// none runs.
pub fn stop(layout: &Layout, names: &[&str], grace: Duration) -> Result<(), Error> {
    let mut pids = Vec::new();
    for name in names {
        if let Some(record) = record(layout, name)?
            && alive(record.pid)
        {
            let _ = killpg(Pid::from_raw(record.pid), Signal::SIGTERM);
            pids.push(record.pid);
        }
    }
    if !wait_until(grace, || pids.iter().all(|pid| !alive(*pid))) {
        for pid in &pids {
            let _ = killpg(Pid::from_raw(*pid), Signal::SIGKILL);
            let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
        }
        if !wait_until(Duration::from_secs(10), || pids.iter().all(|pid| !alive(*pid))) {
            return Err(Error::Failed(format!("{names:?} still run after SIGKILL")));
        }
    }
    Ok(())
}

/// Kills process `name` at once (SIGKILL to its group), as a crash would.
pub fn kill_now(layout: &Layout, name: &str) -> Result<(), Error> {
    if let Some(record) = record(layout, name)? {
        let _ = killpg(Pid::from_raw(record.pid), Signal::SIGKILL);
        if !wait_until(Duration::from_secs(10), || !alive(record.pid)) {
            return Err(Error::Failed(format!("{name} still runs after SIGKILL")));
        }
    }
    Ok(())
}

/// Starts process `name` again as it was started before.
pub fn restart(layout: &Layout, name: &str) -> Result<Record, Error> {
    let record = record(layout, name)?.ok_or_else(|| Error::Failed(format!("{name} was never started")))?;
    stop(layout, &[name], Duration::from_secs(15))?;
    start(layout, name, &record.program, &record.args)
}

/// Polls `done` every 100 ms until it holds or `timeout` passes; whether it held.
pub fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `program` with `args` to completion; its standard output, or an error with what it printed.
pub fn output(program: &str, args: &[&str]) -> Result<String, Error> {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Error::Spawn {
            program: program.to_owned(),
            source,
        })?;
    if !output.status.success() {
        return Err(Error::Failed(format!(
            "{program} {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Runs `program` with `args`; fails with what it printed unless it succeeds.
pub fn run(program: &str, args: &[&str]) -> Result<(), Error> {
    output(program, args).map(drop)
}

/// Runs `program` with `args`, its output going to this process's (for long steps: a build one can follow);
/// fails unless it succeeds.
pub fn run_shown(program: &str, args: &[&str]) -> Result<(), Error> {
    let status = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .status()
        .map_err(|source| Error::Spawn {
            program: program.to_owned(),
            source,
        })?;
    if !status.success() {
        return Err(Error::Failed(format!(
            "{program} {} failed ({status})",
            args.join(" ")
        )));
    }
    Ok(())
}
