//! One local agent's supervisor: relays its output, writes follow-ups to its stdin, ends an idle
//! conversation, enforces the timeout, and stops it in steps (interrupt, SIGTERM, SIGKILL), each after the
//! grace period.

use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use agentfarm_shared::claude::{ClaudeEvent, interrupt_line, user_message_line};
use agentfarm_shared::log::LogStream;
use agentfarm_shared::turns::{Activity, TurnTracker};
use chrono::Utc;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tracing::Instrument;

use super::Control;
use super::sandbox::Gvisor;
use crate::runtime::lines::read_lines;
use crate::runtime::{ExitOutcome, RunEvent, RuntimeError};

/// Where a stop is: the next step and when it is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopStep {
    Terminate,
    Kill,
}

pub(super) struct Supervisor {
    pub(super) run_id: String,
    pub(super) events: mpsc::Sender<RunEvent>,
    pub(super) control: mpsc::Receiver<Control>,
    pub(super) stdin: Option<ChildStdin>,
    /// Which messages Claude has not finished: when none, the agent is waiting for input.
    pub(super) turns: TurnTracker,
    pub(super) idle_timeout: Duration,
    pub(super) stop_grace: Duration,
    /// The agent's gVisor sandbox, when it runs in one: signals go to the sandbox's processes, and the
    /// sandbox is cleaned up when the agent ends.
    pub(super) sandbox: Option<Arc<Gvisor>>,
}

impl Supervisor {
    async fn emit(&self, event: RunEvent) {
        // The service dropped the stream: it no longer cares (shutting down); keep supervising anyway.
        let _ = self.events.send(event).await;
    }

    pub(super) async fn run(
        mut self,
        mut child: Child,
        stdout: impl tokio::io::AsyncRead + Unpin + Send + 'static,
        stderr: impl tokio::io::AsyncRead + Unpin + Send + 'static,
        deadline: Instant,
    ) {
        let (lines_tx, mut lines) = mpsc::channel(256);
        tokio::spawn(
            read_lines(BufReader::new(stdout), LogStream::Stdout, lines_tx.clone()).in_current_span(),
        );
        tokio::spawn(read_lines(BufReader::new(stderr), LogStream::Stderr, lines_tx).in_current_span());
        self.emit(RunEvent::Working).await;

        let pgid = child
            .id()
            .and_then(|pid| i32::try_from(pid).ok())
            .map(Pid::from_raw);
        let mut idle_until: Option<Instant> = None;
        let mut stop: Option<(StopStep, Instant)> = None;
        let mut timed_out = false;
        let status = loop {
            tokio::select! {
                Some((stream, text)) = lines.recv() => {
                    let activity = match ClaudeEvent::parse(&text) {
                        Some(event) if stream == LogStream::Stdout => self.turns.observe(&event),
                        _ => None,
                    };
                    self.emit(RunEvent::Line { ts: Utc::now(), stream, text, cursor: None }).await;
                    if activity == Some(Activity::Idle) && stop.is_none() {
                        if self.idle_timeout.is_zero() {
                            // No one may follow up: end the conversation now.
                            self.stdin = None;
                        } else {
                            self.emit(RunEvent::WaitingForInput).await;
                            idle_until = Some(Instant::now() + self.idle_timeout);
                        }
                    }
                }
                Some(control) = self.control.recv() => match control {
                    Control::Input(text, reply) => {
                        let accepted = self.write_input(&text, stop.is_some()).await;
                        if accepted.is_ok() && idle_until.take().is_some() {
                            self.emit(RunEvent::Working).await;
                        }
                        let _ = reply.send(accepted);
                    }
                    Control::Stop => {
                        if stop.is_none() {
                            self.interrupt().await;
                            stop = Some((StopStep::Terminate, Instant::now() + self.stop_grace));
                        }
                    }
                },
                status = child.wait() => break status,
                () = sleep_until(idle_until.unwrap_or(deadline)), if idle_until.is_some() => {
                    // Nobody followed up: closing stdin tells Claude the conversation is over.
                    idle_until = None;
                    self.stdin = None;
                }
                () = sleep_until(deadline), if stop.is_none() => {
                    timed_out = true;
                    self.interrupt().await;
                    stop = Some((StopStep::Terminate, Instant::now() + self.stop_grace));
                }
                () = sleep_until(stop.map_or(deadline, |(_, at)| at)), if stop.is_some() => {
                    stop = match stop {
                        Some((StopStep::Terminate, _)) => {
                            self.signal(pgid, Signal::SIGTERM).await;
                            Some((StopStep::Kill, Instant::now() + self.stop_grace))
                        }
                        _ => {
                            self.signal(pgid, Signal::SIGKILL).await;
                            None
                        }
                    };
                }
            }
        };
        // Whatever the agent left behind in its process group goes with it; that also closes the pipes.
        signal_group(pgid, Signal::SIGKILL);
        if let Some(sandbox) = &self.sandbox {
            sandbox.clean_up(&self.run_id).await;
        }
        self.control.close();
        while let Some((stream, text)) = lines.recv().await {
            self.emit(RunEvent::Line {
                ts: Utc::now(),
                stream,
                text,
                cursor: None,
            })
            .await;
        }
        self.emit(RunEvent::Exited(outcome(status, timed_out))).await;
    }

    async fn write_input(&mut self, text: &str, stopping: bool) -> Result<(), RuntimeError> {
        let not_accepting = || RuntimeError::NotAccepting(self.run_id.clone());
        if stopping {
            return Err(not_accepting());
        }
        let stdin = self.stdin.as_mut().ok_or_else(not_accepting)?;
        let uuid = uuid::Uuid::new_v4().to_string();
        let line = format!("{}\n", user_message_line(text, &uuid));
        match stdin.write_all(line.as_bytes()).await {
            Ok(()) => {
                self.turns.sent(&uuid);
                Ok(())
            }
            Err(_) => {
                self.stdin = None;
                Err(not_accepting())
            }
        }
    }

    /// Sends `signal` to the agent: to the processes in its sandbox (the runner is their first), or to its
    /// process group.
    async fn signal(&self, pgid: Option<Pid>, signal: Signal) {
        match &self.sandbox {
            Some(sandbox) => sandbox.signal(&self.run_id, signal).await,
            None => signal_group(pgid, signal),
        }
    }

    /// Asks Claude to stop its turn, then closes stdin so it exits.
    async fn interrupt(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let line = format!("{}\n", interrupt_line(&format!("stop-{}", self.run_id)));
            // A closed pipe means the agent is already exiting, which is what we want.
            let _ = stdin.write_all(line.as_bytes()).await;
        }
    }
}

fn signal_group(pgid: Option<Pid>, signal: Signal) {
    if let Some(pgid) = pgid {
        // ESRCH: the group is already gone.
        let _ = killpg(pgid, signal);
    }
}

fn outcome(status: std::io::Result<ExitStatus>, timed_out: bool) -> ExitOutcome {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(status) => ExitOutcome {
            code: status.code(),
            signal: status.signal(),
            timed_out,
            ..ExitOutcome::default()
        },
        Err(err) => ExitOutcome {
            timed_out,
            error: Some(format!("lost track of the agent process: {err}")),
            ..ExitOutcome::default()
        },
    }
}
