//! The local runtime: each run is a child process of the server, in its own process group and its own work
//! dir under the data dir. Without a sandbox agents run as the server's user: not isolated. With
//! `--sandbox gvisor` ([`sandbox`]) each runs in a gVisor sandbox of its own.
//!
//! One supervisor task per run owns the child: it relays stdout/stderr lines, writes follow-ups to stdin as
//! stream-json user messages, notices when the agent is idle (every message it got is done, see
//! [`TurnTracker`]), closes stdin after the idle timeout so Claude exits, enforces the config's timeout, and
//! stops gracefully: interrupt, then SIGTERM, then SIGKILL to the whole process group (to every process of
//! its sandbox, with one), each after the grace period.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use agentfarm_shared::api::RuntimeInfo;
use agentfarm_shared::config::{CredentialMode, Egress};
use agentfarm_shared::runner::RUN_TOKEN_ENV;
use agentfarm_shared::turns::TurnTracker;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::Instrument;

use self::sandbox::Gvisor;
use self::supervisor::Supervisor;
use super::{Adoptee, RunEvents, RunSpec, RunnerSite, Runtime, RuntimeError};

pub mod sandbox;
mod supervisor;

/// How the local runtime starts and treats agents.
#[derive(Debug, Clone)]
pub struct LocalSettings {
    /// Where each run gets its directory (`<runs_dir>/<run id>/{work,home}`).
    pub runs_dir: PathBuf,
    /// The program to run: the agent runner.
    pub agent_command: PathBuf,
    /// What the runner should know about where it runs: the Claude Code program and the GitHub URLs.
    pub runner: RunnerSite,
    /// Variables copied from the server's environment when set; credential names never pass (see
    /// [`is_credential_name`]).
    pub env_passthrough: Vec<String>,
    /// The owner's tokens, handed to agents only in the direct mode ([`RunnerSite::direct`]).
    pub credentials: crate::credentials::OwnerCredentials,
    /// Variables set for every agent.
    pub agent_env: Vec<(String, String)>,
    /// How long an agent that finished its turn waits for a follow-up before its stdin is closed.
    pub idle_timeout: Duration,
    /// How long each stop step (interrupt, SIGTERM) gets before the next.
    pub stop_grace: Duration,
    /// Claude's config dir for configs in the opt-in `shared-volume` credential mode (none: refused).
    pub shared_claude_dir: Option<PathBuf>,
    /// The gVisor sandbox every agent runs in; `None`: agents are plain processes (not isolated).
    pub sandbox: Option<Arc<Gvisor>>,
}

enum Control {
    Input(String, oneshot::Sender<Result<(), RuntimeError>>),
    Stop,
}

/// Runs agents as child processes.
pub struct LocalRuntime {
    settings: LocalSettings,
    agents: Arc<Mutex<HashMap<String, mpsc::Sender<Control>>>>,
}

impl LocalRuntime {
    /// A runtime with these settings.
    pub fn new(settings: LocalSettings) -> Self {
        Self {
            settings,
            agents: Arc::default(),
        }
    }

    fn agent(&self, run_id: &str) -> Result<mpsc::Sender<Control>, RuntimeError> {
        let agents = self.agents.lock().unwrap_or_else(PoisonError::into_inner);
        agents
            .get(run_id)
            .cloned()
            .ok_or_else(|| RuntimeError::NotRunning(run_id.to_owned()))
    }

    fn run_dir(&self, run_id: &str) -> PathBuf {
        self.settings.runs_dir.join(run_id)
    }

    /// The agent's whole environment: the passthrough variables that are set (no credential among them), a
    /// private home and temp dir, Claude's config dir (private in `token` mode, the shared one in
    /// `shared-volume` mode), no updates or telemetry, `--agent-env`, then what reaches the model and git: the
    /// run's capability and the proxies (the owner's tokens in the direct mode). The capability reaches the
    /// agent through its environment: the local runtime has no store of secrets of its own, and the agent's
    /// environment is readable only by the server's user, who holds the real tokens anyway.
    async fn environment(
        &self,
        spec: &RunSpec,
        home: &Path,
    ) -> Result<Vec<(OsString, OsString)>, RuntimeError> {
        let claude_dir = match spec.config.credential_mode {
            CredentialMode::Token => home.join(".claude"),
            CredentialMode::SharedVolume => self.settings.shared_claude_dir.clone().ok_or_else(|| {
                RuntimeError::Failed(
                    "this config uses the shared-volume credential mode, but the server has no --shared-claude-dir".into(),
                )
            })?,
        };
        let tmp = home.join("tmp");
        let passthrough = self
            .settings
            .env_passthrough
            .iter()
            .filter(|name| !is_credential_name(name))
            .filter_map(|name| Some((name.into(), std::env::var_os(name)?)));
        let fixed = [
            ("HOME", home.as_os_str()),
            ("CLAUDE_CONFIG_DIR", claude_dir.as_os_str()),
            ("CLAUDE_CODE_TMPDIR", tmp.as_os_str()),
            ("TMPDIR", tmp.as_os_str()),
            ("DISABLE_UPDATES", "1".as_ref()),
            ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1".as_ref()),
        ]
        .map(|(k, v)| (OsString::from(k), v.to_owned()));
        let extra = self.settings.agent_env.iter().map(|(k, v)| (k.into(), v.into()));
        let access = self
            .access(spec)
            .await?
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()));
        Ok(passthrough.chain(fixed).chain(extra).chain(access).collect())
    }

    /// How the agent of `spec` reaches the model and git: the run's capability, and the owner's tokens only in
    /// the direct mode.
    async fn access(&self, spec: &RunSpec) -> Result<Vec<(String, String)>, RuntimeError> {
        let site = &self.settings.runner;
        let capability = spec.capability.secret().to_owned();
        let mut access = vec![
            ("ANTHROPIC_BASE_URL".to_owned(), site.model_url.clone()),
            (RUN_TOKEN_ENV.to_owned(), capability.clone()),
        ];
        let claude_token = if site.direct {
            let owner = &self.settings.credentials;
            let missing = |err: crate::credentials::Missing| RuntimeError::Failed(err.to_string());
            access.push((
                "GITHUB_TOKEN".to_owned(),
                owner.github.get().await.map_err(missing)?,
            ));
            owner.claude.get().await.map_err(missing)?
        } else {
            capability
        };
        if spec.config.credential_mode == CredentialMode::Token {
            access.push(("CLAUDE_CODE_OAUTH_TOKEN".to_owned(), claude_token));
        }
        Ok(access)
    }

    /// The `runsc run` of `spec`'s agent: the runner and Claude Code bound in from the host, its work dir and
    /// home owned by the sandbox's user, the environment as unsandboxed but with the paths inside.
    async fn sandboxed(
        &self,
        gvisor: &Gvisor,
        spec: &RunSpec,
        dir: &Path,
        spec_file: &Path,
    ) -> Result<Command, RuntimeError> {
        use sandbox::bundle::{self, Agent};
        if spec.config.credential_mode == CredentialMode::SharedVolume {
            return Err(RuntimeError::Failed(
                "the shared-volume credential mode is not available in the gVisor sandbox".into(),
            ));
        }
        let (work, home) = (dir.join("work"), dir.join("home"));
        let mut site = self.settings.runner.clone();
        site.claude_command = bundle::CLAUDE.into();
        write_private(spec_file, &site.spec(spec, None)).await?;
        for path in [&work, &home, &home.join("tmp"), &spec_file.to_owned()] {
            let owner = Some(bundle::AGENT_UID);
            std::os::unix::fs::chown(path, owner, owner).map_err(|err| {
                RuntimeError::Failed(format!("cannot hand {} to the sandbox: {err}", path.display()))
            })?;
        }
        let env = self
            .environment(spec, Path::new(bundle::HOME))
            .await?
            .into_iter()
            .filter(|(key, _)| key != "PATH")
            .map(|(key, value)| format!("{}={}", key.to_string_lossy(), value.to_string_lossy()))
            .chain([format!("PATH={}", bundle::PATH)])
            .collect();
        let agent = Agent {
            bundle_dir: dir.join("sandbox"),
            work,
            home,
            runner: host_program(&self.settings.agent_command.to_string_lossy())?,
            claude: host_program(&self.settings.runner.claude_command)?,
            spec: spec_file.to_owned(),
            env,
            cpu_millis: agentfarm_shared::validate::cpu_millis(&spec.config.cpu)
                .map_err(RuntimeError::Failed)?,
            memory_bytes: agentfarm_shared::validate::memory_bytes(&spec.config.memory)
                .map_err(RuntimeError::Failed)?,
        };
        let proxy_only = spec.config.egress == Egress::ProxyOnly;
        let mut command = gvisor.command(&spec.run_id, proxy_only, &agent).await?;
        // runsc needs nothing of the server's environment, which may hold the owner's tokens.
        command.current_dir(dir).env_clear().env("PATH", bundle::PATH);
        Ok(command)
    }

    async fn start(&self, spec: RunSpec) -> Result<RunEvents, RuntimeError> {
        let dir = self.run_dir(&spec.run_id);
        let (work, home) = (dir.join("work"), dir.join("home"));
        let tmp = home.join("tmp");
        for path in [&dir, &work, &home, &tmp] {
            private_dir(path).await?;
        }
        let spec_file = dir.join("spec.json");
        let mut command = match &self.settings.sandbox {
            None => {
                write_private(&spec_file, &self.settings.runner.spec(&spec, None)).await?;
                let mut command = Command::new(&self.settings.agent_command);
                command
                    .arg("--spec")
                    .arg(&spec_file)
                    .current_dir(&work)
                    .env_clear()
                    .envs(self.environment(&spec, &home).await?);
                command
            }
            Some(gvisor) => self.sandboxed(gvisor, &spec, &dir, &spec_file).await?,
        };
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        die_with_parent(&mut command);
        let spawned = command.spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(err) => {
                if let Some(gvisor) = &self.settings.sandbox {
                    gvisor.clean_up(&spec.run_id).await;
                }
                return Err(RuntimeError::Failed(format!(
                    "cannot start the agent command {}: {err}",
                    self.settings.agent_command.display()
                )));
            }
        };
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(RuntimeError::Failed("the agent's pipes were not set up".into()));
        };

        let (events_tx, events) = mpsc::channel(1024);
        let (control_tx, control) = mpsc::channel(16);
        self.agents
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(spec.run_id.clone(), control_tx);
        let supervisor = Supervisor {
            run_id: spec.run_id.clone(),
            events: events_tx,
            control,
            stdin: Some(stdin),
            turns: TurnTracker::default(),
            idle_timeout: self.settings.idle_timeout,
            stop_grace: self.settings.stop_grace,
            sandbox: self.settings.sandbox.clone(),
        };
        let agents = Arc::clone(&self.agents);
        let deadline = Instant::now() + Duration::from_secs(u64::from(spec.config.timeout_minutes) * 60);
        // In the launching run's span (the service's), as is everything the supervisor starts.
        let supervised = async move {
            let run_id = supervisor.run_id.clone();
            supervisor.run(child, stdout, stderr, deadline).await;
            agents
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&run_id);
        };
        tokio::spawn(supervised.in_current_span());
        Ok(events)
    }
}

impl Runtime for LocalRuntime {
    fn info(&self) -> RuntimeInfo {
        match &self.settings.sandbox {
            None => RuntimeInfo {
                kind: "local".into(),
                isolated: false,
                sandbox: "none".into(),
                description: "Agents run as processes of the server's user on this machine: not isolated."
                    .into(),
            },
            Some(_) => RuntimeInfo {
                kind: "local".into(),
                isolated: true,
                sandbox: "gvisor".into(),
                description:
                    "Agents run on this machine, each in a gVisor sandbox of its own (runsc), with its own \
                              network namespace: they reach only the proxies, DNS and public HTTPS."
                        .into(),
            },
        }
    }

    fn launch(&self, spec: RunSpec) -> BoxFuture<'_, Result<RunEvents, RuntimeError>> {
        self.start(spec).boxed()
    }

    fn stop(&self, run_id: &str) -> BoxFuture<'_, Result<(), RuntimeError>> {
        let agent = self.agent(run_id);
        async move {
            // A supervisor that already ended has nothing left to stop.
            let _ = agent?.send(Control::Stop).await;
            Ok(())
        }
        .boxed()
    }

    fn send_input(&self, run_id: &str, text: String) -> BoxFuture<'_, Result<(), RuntimeError>> {
        let agent = self.agent(run_id);
        let run_id = run_id.to_owned();
        async move {
            let (reply, answer) = oneshot::channel();
            agent?
                .send(Control::Input(text, reply))
                .await
                .map_err(|_| RuntimeError::NotRunning(run_id.clone()))?;
            answer.await.map_err(|_| RuntimeError::NotRunning(run_id))?
        }
        .boxed()
    }

    fn remove(&self, run_id: &str) -> BoxFuture<'_, Result<(), RuntimeError>> {
        let dir = self.run_dir(run_id);
        async move {
            match tokio::fs::remove_dir_all(&dir).await {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(RuntimeError::Failed(format!(
                    "cannot remove {}: {err}",
                    dir.display()
                ))),
                _ => Ok(()),
            }
        }
        .boxed()
    }

    fn release(&self, _run_id: &str) -> BoxFuture<'_, ()> {
        // The work dir stays until the run is deleted; nothing else is held.
        async {}.boxed()
    }

    fn adopt(&self, _runs: Vec<Adoptee>) -> BoxFuture<'_, Vec<(String, RunEvents)>> {
        // Local agents die with the server (see `die_with_parent`; a sandbox with its runsc, and what is left
        // of one is removed at start): there is never anything to re-attach to.
        async { Vec::new() }.boxed()
    }

    fn shut_down(&self) -> BoxFuture<'_, ()> {
        async {
            if let Some(gvisor) = &self.settings.sandbox {
                gvisor.shut_down().await;
            }
        }
        .boxed()
    }
}

/// The absolute path of `command` on the host: itself when it names a path, else the first match on PATH;
/// links resolved, so that the file itself can be bound into a sandbox.
fn host_program(command: &str) -> Result<PathBuf, RuntimeError> {
    let found = if command.contains('/') {
        Some(PathBuf::from(command))
    } else {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(command))
                .find(|candidate| candidate.is_file())
        })
    };
    found
        .and_then(|path| std::fs::canonicalize(path).ok())
        .ok_or_else(|| RuntimeError::Failed(format!("cannot find the program {command} on this machine")))
}

/// Whether a variable's name says it holds a credential (`…TOKEN`, `…KEY`, `…SECRET`, `…PASSWORD`): such
/// variables of the server's are never passed to agents.
pub fn is_credential_name(name: &str) -> bool {
    let name = name.to_ascii_uppercase();
    ["TOKEN", "KEY", "SECRET", "PASSWORD"]
        .iter()
        .any(|suffix| name.ends_with(suffix))
}

/// Writes `value` as JSON to a new file only the server's user can read.
async fn write_private(path: &Path, value: &impl serde::Serialize) -> Result<(), RuntimeError> {
    let failed = |err: String| RuntimeError::Failed(format!("cannot write {}: {err}", path.display()));
    let json = serde_json::to_vec_pretty(value).map_err(|err| failed(err.to_string()))?;
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .await
        .map_err(|err| failed(err.to_string()))?;
    file.write_all(&json)
        .await
        .map_err(|err| failed(err.to_string()))?;
    // tokio writes in the background: only a flush says the bytes reached the file.
    file.flush().await.map_err(|err| failed(err.to_string()))
}

async fn private_dir(path: &Path) -> Result<(), RuntimeError> {
    let mut builder = tokio::fs::DirBuilder::new();
    builder.recursive(true).mode(0o700);
    builder
        .create(path)
        .await
        .map_err(|err| RuntimeError::Failed(format!("cannot create {}: {err}", path.display())))
}

/// Asks Linux to SIGKILL the agent when the server dies, so no agent outlives a crashed server unseen.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn die_with_parent(command: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only calls prctl(2), which is
    // async-signal-safe; it touches no memory shared with the parent.
    unsafe {
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).map_err(std::io::Error::from)
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_command: &mut Command) {}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime(shared: Option<&str>, direct: bool) -> LocalRuntime {
        let credentials = crate::credentials::OwnerCredentials {
            claude: crate::credentials::OwnerCredential::new(
                "the Claude token",
                None,
                "AGENTFARM_SURELY_UNSET_CLAUDE",
            ),
            github: crate::credentials::OwnerCredential::new(
                "the GitHub token",
                None,
                "AGENTFARM_SURELY_UNSET_GITHUB",
            ),
        };
        LocalRuntime::new(LocalSettings {
            runs_dir: "/data/runs".into(),
            agent_command: "agentfarm-runner".into(),
            runner: RunnerSite {
                claude_command: "claude".into(),
                git_url: "http://127.0.0.1:8080/proxy/git".into(),
                control_url: "http://127.0.0.1:8080".into(),
                model_url: "http://127.0.0.1:8080/proxy/anthropic".into(),
                direct,
            },
            env_passthrough: vec!["AGENTFARM_SURELY_UNSET_VARIABLE".into()],
            credentials,
            agent_env: vec![
                ("EXTRA".into(), "1".into()),
                ("ANTHROPIC_BASE_URL".into(), "http://elsewhere".into()),
            ],
            idle_timeout: Duration::ZERO,
            stop_grace: Duration::ZERO,
            shared_claude_dir: shared.map(PathBuf::from),
            sandbox: None,
        })
    }

    fn spec(mode: CredentialMode) -> RunSpec {
        let mut config = agentfarm_shared::config::ConfigSpec::new("c", "task");
        config.credential_mode = mode;
        RunSpec {
            run_id: "r".into(),
            config_id: "c".into(),
            config_version: 1,
            config,
            prompt: "task".into(),
            session_id: "00000000-0000-4000-8000-000000000000".into(),
            branch: "agentfarm/r".into(),
            capability: crate::capability::Capability::mint().unwrap(),
        }
    }

    fn value(env: &[(OsString, OsString)], key: &str) -> Option<String> {
        env.iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.to_string_lossy().into_owned())
    }

    #[tokio::test]
    async fn token_mode_gets_a_private_claude_dir_and_only_the_capability() {
        let spec = spec(CredentialMode::Token);
        let env = runtime(Some("/shared"), false)
            .environment(&spec, Path::new("/data/runs/r/home"))
            .await
            .unwrap();
        assert_eq!(
            value(&env, "CLAUDE_CONFIG_DIR").as_deref(),
            Some("/data/runs/r/home/.claude")
        );
        assert_eq!(value(&env, "HOME").as_deref(), Some("/data/runs/r/home"));
        assert_eq!(value(&env, "EXTRA").as_deref(), Some("1"));
        assert_eq!(value(&env, "AGENTFARM_SURELY_UNSET_VARIABLE"), None);
        let capability = Some(spec.capability.secret().to_owned());
        assert_eq!(value(&env, "CLAUDE_CODE_OAUTH_TOKEN"), capability);
        assert_eq!(value(&env, RUN_TOKEN_ENV), capability);
        assert_eq!(value(&env, "GITHUB_TOKEN"), None);
        assert_eq!(
            value(&env, "ANTHROPIC_BASE_URL").as_deref(),
            Some("http://127.0.0.1:8080/proxy/anthropic"),
            "--agent-env cannot point agents elsewhere"
        );
    }

    #[tokio::test]
    async fn the_direct_mode_needs_the_owners_tokens() {
        let spec = spec(CredentialMode::Token);
        let refused = runtime(None, true)
            .environment(&spec, Path::new("/data/runs/r/home"))
            .await
            .unwrap_err();
        assert!(
            refused.to_string().contains("AGENTFARM_SURELY_UNSET_GITHUB"),
            "{refused}"
        );
    }

    #[test]
    fn credential_names_never_pass() {
        for name in ["GITHUB_TOKEN", "ANTHROPIC_API_KEY", "aws_secret", "DB_PASSWORD"] {
            assert!(is_credential_name(name), "{name}");
        }
        for name in ["PATH", "LANG", "HTTPS_PROXY"] {
            assert!(!is_credential_name(name), "{name}");
        }
    }

    #[tokio::test]
    async fn shared_volume_mode_is_opt_in_on_the_server_too() {
        let home = Path::new("/data/runs/r/home");
        let spec = spec(CredentialMode::SharedVolume);
        let env = runtime(Some("/shared"), false)
            .environment(&spec, home)
            .await
            .unwrap();
        assert_eq!(value(&env, "CLAUDE_CONFIG_DIR").as_deref(), Some("/shared"));
        assert_eq!(value(&env, "CLAUDE_CODE_OAUTH_TOKEN"), None);
        assert!(runtime(None, false).environment(&spec, home).await.is_err());
    }
}
