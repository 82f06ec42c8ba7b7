//! The server's settings: command-line flags, each also readable from an `AGENTFARM_*` environment variable.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use ipnet::IpNet;

use crate::runtime::kube::image::ImageRef;
use crate::tailscale::{WhoisEndpoint, normalize_login};

/// Where the server keeps its database and run dirs unless told otherwise (`serve` and `backup`).
pub const DEFAULT_DATA_DIR: &str = "agentfarm-data";

/// Settings of `agentfarm serve`.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Directory for the database and the runs' work dirs (created if missing, mode 0700).
    #[arg(long, env = "AGENTFARM_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,

    /// Address to listen on. Keep the default loopback address unless a proxy in front needs otherwise;
    /// port 0 picks a free port.
    #[arg(long, env = "AGENTFARM_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// A second address serving only the proxies agents use (model, git, pull requests), e.g. 0.0.0.0:8081 on
    /// a cluster, so that agents reach those and never the app's API (whose identity headers a pod on the
    /// trusted pod network could forge). Without it, the proxies are served on --listen as well.
    #[arg(long, env = "AGENTFARM_PROXY_LISTEN")]
    pub proxy_listen: Option<SocketAddr>,

    /// Where `/metrics` (Prometheus text format) is served, and nothing else: never on --listen, so never
    /// through the proxy in front of the app. Keep it on loopback, or on a cluster behind a NetworkPolicy that
    /// admits only the monitoring namespace; port 0 picks a free port.
    #[arg(long, env = "AGENTFARM_METRICS_LISTEN", default_value = "127.0.0.1:9464")]
    pub metrics_listen: SocketAddr,

    /// The URL users reach the server at through a proxy, e.g. https://agentfarm.tailnet.ts.net; its origin
    /// is the one browsers may send requests from, and its host is allowed.
    #[arg(long, env = "AGENTFARM_PUBLIC_URL", value_parser = parse_origin)]
    pub public_url: Option<String>,

    /// Extra host names accepted in the Host header (IP literals and localhost always are). Comma-separated.
    #[arg(long = "allowed-host", env = "AGENTFARM_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,

    /// A Tailscale login allowed to use the server, e.g. you@example.com (repeatable; comma-separated in the
    /// environment), taken from the Tailscale-User-Login header Tailscale Serve sets and compared
    /// case-insensitively. Without one, no login is required.
    #[arg(long = "allowed-login", env = "AGENTFARM_ALLOWED_LOGINS", value_delimiter = ',', value_parser = parse_login)]
    pub allowed_logins: Vec<String>,

    /// A peer (IP address or CIDR block) whose Tailscale identity headers are believed: the proxy in front
    /// (`tailscale serve` on this machine: loopback; the operator's Ingress proxy: the pod network).
    /// Repeatable; comma-separated in the environment.
    #[arg(
        long = "trusted-proxy",
        env = "AGENTFARM_TRUSTED_PROXIES",
        value_delimiter = ',',
        default_value = "127.0.0.1/32,::1/128",
        value_parser = parse_trusted_proxy
    )]
    pub trusted_proxies: Vec<IpNet>,

    /// tailscaled's LocalAPI: its socket (e.g. /var/run/tailscale/tailscaled.sock) or http://IP:PORT. Each
    /// login must then be the one tailscaled's whois gives for the request's X-Forwarded-For address.
    /// Needs --allowed-login.
    #[arg(long, env = "AGENTFARM_TAILSCALE_WHOIS", value_parser = parse_whois, requires = "allowed_logins")]
    pub tailscale_whois: Option<WhoisEndpoint>,

    /// Most runs with an agent at once; more launches wait as `queued` and start in order.
    #[arg(long, env = "AGENTFARM_MAX_RUNNING", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_running: u32,

    /// Log lines kept per run (older ones are dropped; clients resuming from them get a `gap`).
    #[arg(long, env = "AGENTFARM_LOG_RETENTION", default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(100..))]
    pub log_retention: u64,

    /// Days an ended run and its log are kept after it ended; then they are deleted (hourly), except the
    /// newest run of each config. 0 keeps every run.
    #[arg(long, env = "AGENTFARM_RUN_RETENTION_DAYS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(0..=36_500))]
    pub run_retention_days: u32,

    /// The agent program the local runtime starts: the agent runner, which runs Claude Code.
    #[arg(long, env = "AGENTFARM_AGENT_COMMAND", default_value = "agentfarm-runner")]
    pub agent_command: PathBuf,

    /// The Claude Code program the runner starts.
    #[arg(long, env = "AGENTFARM_CLAUDE_COMMAND", default_value = "claude")]
    pub claude_command: String,

    /// Base URL of git remotes: a repo owner/name is cloned from <URL>/owner/name.git.
    #[arg(long, env = "AGENTFARM_GITHUB_URL", default_value = "https://github.com")]
    pub github_url: String,

    /// Base URL of the GitHub REST API, for pull requests.
    #[arg(
        long,
        env = "AGENTFARM_GITHUB_API_URL",
        default_value = "https://api.github.com"
    )]
    pub github_api_url: String,

    /// Base URL of the Anthropic API the model proxy forwards agents' requests to.
    #[arg(
        long,
        env = "AGENTFARM_ANTHROPIC_URL",
        default_value = "https://api.anthropic.com"
    )]
    pub anthropic_url: String,

    /// A file with the owner's Claude token (`claude setup-token`), e.g. a mounted Secret, read on every use.
    /// Without it, the server's CLAUDE_CODE_OAUTH_TOKEN. Only the server holds it: agents get a per-run
    /// capability, which the model proxy trades for it.
    #[arg(long, env = "AGENTFARM_CLAUDE_TOKEN_FILE")]
    pub claude_token_file: Option<PathBuf>,

    /// A file with the owner's GitHub token, read on every use. Without it, the server's GITHUB_TOKEN. Only the
    /// server holds it: the git proxy and the pull request call use it for agents.
    #[arg(long, env = "AGENTFARM_GITHUB_TOKEN_FILE")]
    pub github_token_file: Option<PathBuf>,

    /// The URL agents reach this server's proxies at (on a cluster, its Service). Default:
    /// http://<listen address>, on loopback when listening on every address.
    #[arg(long, env = "AGENTFARM_AGENT_URL")]
    pub agent_url: Option<String>,

    /// Debugging only: give agents the owner's Claude and GitHub tokens themselves, as before the proxies.
    /// Any agent can then leak them; the settings screen says this is on.
    #[arg(long, env = "AGENTFARM_DIRECT_CREDENTIALS")]
    pub direct_credentials: bool,

    /// Environment variables copied from the server's environment to every agent when set. Comma-separated.
    /// Credentials never pass: a name ending in TOKEN, KEY, SECRET or PASSWORD is dropped (agents get a
    /// per-run capability instead).
    #[arg(
        long = "agent-env-passthrough",
        env = "AGENTFARM_AGENT_ENV_PASSTHROUGH",
        value_delimiter = ',',
        default_value = "PATH,LANG,LC_ALL,TZ,HTTPS_PROXY,HTTP_PROXY,NO_PROXY"
    )]
    pub env_passthrough: Vec<String>,

    /// A variable to set for every agent, KEY=VALUE (repeatable). Visible in the process list: no secrets.
    #[arg(long = "agent-env", value_parser = parse_key_value)]
    pub agent_env: Vec<(String, String)>,

    /// Claude's config dir shared by configs in the opt-in `shared-volume` credential mode (e.g. a `~/.claude`
    /// you logged in with `claude /login`). Risky: agents sharing it can log each other out (rotating refresh
    /// tokens) and plant hooks that run in the others. Without it, such configs are refused at launch.
    #[arg(long, env = "AGENTFARM_SHARED_CLAUDE_DIR")]
    pub shared_claude_dir: Option<PathBuf>,

    /// Seconds an agent that finished its turn waits for a follow-up before it is told the conversation is
    /// over (0: end as soon as the turn ends).
    #[arg(long, env = "AGENTFARM_IDLE_TIMEOUT", default_value_t = 300)]
    pub idle_timeout: u64,

    /// Seconds each step of a stop (interrupt, then SIGTERM) gets before the next (then SIGKILL).
    #[arg(long, env = "AGENTFARM_STOP_GRACE", default_value_t = 10)]
    pub stop_grace: u64,

    /// Web Push settings.
    #[command(flatten)]
    pub push: PushArgs,

    /// Where agents run: `local` (processes of this user: not isolated), `kubernetes` (Jobs on the cluster
    /// from the in-cluster service account or the kubeconfig), or `auto`: Kubernetes when a cluster answers
    /// and has the agents namespace, else local.
    #[arg(long, env = "AGENTFARM_RUNTIME", value_enum, default_value_t = RuntimeChoice::Auto)]
    pub runtime: RuntimeChoice,

    /// The local runtime's sandbox.
    #[command(flatten)]
    pub sandbox: SandboxArgs,

    /// The Kubernetes runtime's settings.
    #[command(flatten)]
    pub kube: KubeArgs,

    /// The built web app (trunk's dist: index.html, wasm, js, css, icons) to serve at / and every path the
    /// API does not route. Default: frontend/dist when it exists in the current directory; without an
    /// index.html there, / shows a placeholder page.
    #[arg(long, env = "AGENTFARM_WEB_DIR")]
    pub web_dir: Option<PathBuf>,
}

/// Which runtime to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RuntimeChoice {
    /// Kubernetes when a cluster answers, else local.
    Auto,
    /// Local processes.
    Local,
    /// Kubernetes Jobs.
    Kubernetes,
}

/// Settings of the local runtime's sandbox (and of `agentfarm doctor --sandbox`).
#[derive(Debug, Clone, Args)]
pub struct SandboxArgs {
    /// What keeps a local agent in: `none` (a process of this user: not isolated) or `gvisor` (a gVisor
    /// sandbox of its own, in its own network namespace; Linux, as root, with runsc, `ip` and `nft`). The
    /// Kubernetes runtime sandboxes agents by RuntimeClass instead.
    #[arg(long = "sandbox", env = "AGENTFARM_SANDBOX", value_enum, default_value_t = SandboxChoice::None)]
    pub kind: SandboxChoice,

    /// gVisor's runsc, for `--sandbox gvisor`.
    #[arg(long, env = "AGENTFARM_RUNSC", default_value = "runsc")]
    pub runsc: PathBuf,

    /// The sandboxed agents' subnet, a /24 of its own on this machine: its `.1` is this machine's address on
    /// the agents' bridge, where the proxies listen.
    #[arg(
        long = "sandbox-subnet",
        env = "AGENTFARM_SANDBOX_SUBNET",
        default_value = "10.213.0.0/24"
    )]
    pub subnet: ipnet::Ipv4Net,
}

/// What keeps a local agent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SandboxChoice {
    /// Nothing: a process of the server's user.
    None,
    /// A gVisor sandbox of its own.
    Gvisor,
}

/// Settings of Web Push notifications.
#[derive(Debug, Clone, Args)]
pub struct PushArgs {
    /// The contact push services see in every request (the VAPID `sub`): `mailto:you@example.com` or an
    /// https URL. Apple refuses pushes without a real one; without it, notifications are off.
    #[arg(long, env = "AGENTFARM_PUSH_CONTACT", value_parser = parse_contact)]
    pub push_contact: Option<String>,

    /// A file with the VAPID private key (the 32-byte P-256 scalar, base64url), e.g. from a Secret. Without
    /// it, a key pair is made on first start and kept in the database.
    #[arg(long, env = "AGENTFARM_VAPID_PRIVATE_KEY_FILE")]
    pub vapid_private_key_file: Option<std::path::PathBuf>,

    /// Extra push service hosts subscriptions may use, besides Apple's, Google's, Mozilla's and Microsoft's
    /// (https only). Comma-separated.
    #[arg(long = "push-host", env = "AGENTFARM_PUSH_HOSTS", value_delimiter = ',')]
    pub push_hosts: Vec<String>,

    /// Days a subscription lives without the device confirming it (the app confirms on every start; Apple
    /// answers 201 for dead ones, so unconfirmed ones are dropped).
    #[arg(long, env = "AGENTFARM_PUSH_SUBSCRIPTION_DAYS", default_value_t = 30)]
    pub push_subscription_days: u32,

    /// Testing only: one plain-http origin (scheme://host:port) allowed as a push service, e.g. a local fake.
    #[arg(long, env = "AGENTFARM_PUSH_INSECURE_ORIGIN", hide = true)]
    pub push_insecure_origin: Option<String>,
}

/// Settings of the Kubernetes runtime (and of `agentfarm doctor`).
#[derive(Debug, Clone, Args)]
pub struct KubeArgs {
    /// The namespace agents run in (Pod Security `restricted` enforced there).
    #[arg(long, env = "AGENTFARM_NAMESPACE", default_value = "agentfarm-agents")]
    pub namespace: String,

    /// The agent image (built from infra/images/agent): `REPOSITORY[:TAG][@sha256:DIGEST]`; pin it by digest.
    /// The default names no real registry, so agents fail to pull until it is set.
    #[arg(
        long,
        env = "AGENTFARM_AGENT_IMAGE",
        default_value = "agentfarm.invalid/agentfarm-agent",
        value_parser = ImageRef::parse
    )]
    pub agent_image: ImageRef,

    /// The agent image tag when --agent-image names neither tag nor digest.
    #[arg(long, env = "AGENTFARM_AGENT_IMAGE_TAG", default_value = env!("CARGO_PKG_VERSION"))]
    pub agent_image_tag: String,

    /// The RuntimeClass for configs that name none: `gvisor` on cloud nodes; Kata classes need KVM nodes.
    #[arg(long, env = "AGENTFARM_RUNTIME_CLASS", default_value = "gvisor")]
    pub runtime_class: String,

    /// The control plane's own namespace, where the Secrets with the owner's tokens live (mounted into the
    /// control plane as --claude-token-file and --github-token-file; never into an agent).
    #[arg(long, env = "AGENTFARM_SYSTEM_NAMESPACE", default_value = "agentfarm-system")]
    pub system_namespace: String,

    /// The Secret holding the `claude setup-token` token, under key `token`.
    #[arg(long, env = "AGENTFARM_CLAUDE_TOKEN_SECRET", default_value = "claude-token")]
    pub claude_token_secret: String,

    /// The Secret holding the GitHub token, under key `token`.
    #[arg(long, env = "AGENTFARM_GITHUB_TOKEN_SECRET", default_value = "github-token")]
    pub github_token_secret: String,

    /// The RWX PersistentVolumeClaim with a shared `~/.claude`, for configs in the opt-in `shared-volume`
    /// credential mode (see the risks in the README). Without it, such configs are refused at launch.
    #[arg(long, env = "AGENTFARM_CLAUDE_HOME_CLAIM")]
    pub claude_home_claim: Option<String>,

    /// A node label agents must run on, KEY=VALUE (repeatable), e.g. agentfarm.dev/role=agents.
    #[arg(long = "agent-node-selector", env = "AGENTFARM_AGENT_NODE_SELECTOR", value_delimiter = ',', value_parser = parse_label)]
    pub node_selector: Vec<(String, String)>,

    /// Seconds a finished Job stays when the server never deletes it (a safety net; the server deletes Jobs
    /// once it has stored their logs).
    #[arg(long, env = "AGENTFARM_JOB_TTL", default_value_t = 7 * 24 * 3600)]
    pub job_ttl: u64,

    /// Ephemeral storage an agent may use for its workspace, a quantity.
    #[arg(long, env = "AGENTFARM_AGENT_STORAGE", default_value = "10Gi", value_parser = parse_quantity)]
    pub agent_storage: String,

    /// A StorageClass for agents' workspaces: each gets its own volume of --agent-storage (a generic
    /// ephemeral volume, deleted with the pod) instead of node-local emptyDir space.
    #[arg(long, env = "AGENTFARM_WORKSPACE_STORAGE_CLASS")]
    pub workspace_storage_class: Option<String>,

    /// The node label that marks nodes with /dev/kvm (where Kata runtime classes can run), KEY=VALUE.
    #[arg(long, env = "AGENTFARM_KVM_NODE_LABEL", default_value = "agentfarm.dev/kvm=true", value_parser = parse_label)]
    pub kvm_node_label: (String, String),
}

impl KubeArgs {
    /// What `agentfarm doctor` checks for these settings.
    pub fn doctor_spec(&self) -> crate::doctor::DoctorSpec {
        use crate::doctor::{DoctorSpec, SecretNeed};
        let secret = |name: &str, purpose: &str| SecretNeed {
            namespace: self.system_namespace.clone(),
            name: name.to_owned(),
            keys: vec!["token".into()],
            purpose: purpose.into(),
        };
        DoctorSpec {
            namespace: self.namespace.clone(),
            runtime_classes: vec![self.runtime_class.clone()],
            secrets: vec![
                secret(
                    &self.claude_token_secret,
                    "the Claude token the model proxy sends for agents (claude setup-token)",
                ),
                secret(
                    &self.github_token_secret,
                    "the GitHub token the git proxy and pull requests use for agents",
                ),
            ],
            pvcs: self.claude_home_claim.iter().cloned().collect(),
            kvm_label: format!("{}={}", self.kvm_node_label.0, self.kvm_node_label.1),
            agent_image: self.agent_image.to_string(),
        }
    }
}

impl Settings {
    /// Settings with every default and this data dir.
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Settings {
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            settings: Settings,
        }
        let mut settings = <Wrapper as clap::Parser>::parse_from(["agentfarm"]).settings;
        settings.data_dir = data_dir.into();
        settings
    }

    /// [`Settings::idle_timeout`] as a duration.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout)
    }

    /// The web app's directory: [`Settings::web_dir`], else `frontend/dist` when it exists here.
    pub fn web_app_dir(&self) -> Option<PathBuf> {
        self.web_dir.clone().or_else(|| {
            let default = PathBuf::from("frontend/dist");
            default.is_dir().then_some(default)
        })
    }

    /// The owner's credentials, from their files or the server's environment.
    pub fn owner_credentials(&self) -> crate::credentials::OwnerCredentials {
        use crate::credentials::OwnerCredential;
        crate::credentials::OwnerCredentials {
            claude: OwnerCredential::new(
                "the Claude token",
                self.claude_token_file.clone(),
                "CLAUDE_CODE_OAUTH_TOKEN",
            ),
            github: OwnerCredential::new("the GitHub token", self.github_token_file.clone(), "GITHUB_TOKEN"),
        }
    }

    /// Where agents reach this server: [`Settings::agent_url`], else the proxies' address (`proxies`), else
    /// the app's (loopback for an unspecified one).
    pub fn agent_url(&self, proxies: Option<SocketAddr>) -> String {
        if let Some(url) = &self.agent_url {
            return url.trim_end_matches('/').to_owned();
        }
        let mut addr = proxies.unwrap_or(self.listen);
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr.ip() {
                IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
            });
        }
        format!("http://{addr}")
    }

    /// [`Settings::stop_grace`] as a duration.
    pub fn stop_grace(&self) -> Duration {
        Duration::from_secs(self.stop_grace)
    }
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    let (key, value) = text.split_once('=').ok_or("expected KEY=VALUE")?;
    if key.is_empty() || key.len() > 253 || value.len() > 63 {
        return Err(format!("{text:?} is not a Kubernetes label"));
    }
    Ok((key.to_owned(), value.to_owned()))
}

fn parse_contact(text: &str) -> Result<String, String> {
    let valid = text
        .strip_prefix("mailto:")
        .is_some_and(|address| address.contains('@') && !address.contains(char::is_whitespace))
        || text.starts_with("https://");
    if valid {
        Ok(text.to_owned())
    } else {
        Err("expected mailto:you@example.com or an https:// URL".into())
    }
}

fn parse_quantity(text: &str) -> Result<String, String> {
    agentfarm_shared::validate::memory_bytes(text).map(|_| text.to_owned())
}

fn parse_key_value(text: &str) -> Result<(String, String), String> {
    let (key, value) = text.split_once('=').ok_or("expected KEY=VALUE")?;
    let valid = !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid {
        return Err(format!("{key:?} is not an environment variable name"));
    }
    Ok((key.to_owned(), value.to_owned()))
}

fn parse_login(text: &str) -> Result<String, String> {
    normalize_login(text).ok_or_else(|| {
        format!("{text:?} is not a Tailscale login such as you@example.com (printable ASCII, no spaces)")
    })
}

/// An address or a CIDR block, as a block (an address is a block of one).
fn parse_trusted_proxy(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    let parsed = if text.contains('/') {
        text.parse::<IpNet>().map(|net| net.trunc()).ok()
    } else {
        text.parse::<IpAddr>().map(IpNet::from).ok()
    };
    parsed.ok_or_else(|| format!("{text:?} is not an IP address or a CIDR block such as 10.244.0.0/16"))
}

/// `http://IP:PORT`, or else the path of a Unix socket.
fn parse_whois(text: &str) -> Result<WhoisEndpoint, String> {
    if let Some(address) = text.strip_prefix("http://") {
        return address
            .trim_end_matches('/')
            .parse()
            .map(WhoisEndpoint::Tcp)
            .map_err(|_| "expected http://IP:PORT (no host name, path or credentials)".into());
    }
    if text.is_empty() || text.contains("://") {
        return Err(
            "expected the path of tailscaled's socket (e.g. /var/run/tailscale/tailscaled.sock) or http://IP:PORT"
                .into(),
        );
    }
    Ok(WhoisEndpoint::Socket(text.into()))
}

/// Accepts `http(s)://host[:port][/]` and returns the origin (`scheme://host[:port]`).
fn parse_origin(text: &str) -> Result<String, String> {
    let (scheme, rest) = text
        .split_once("://")
        .ok_or("expected a URL such as https://agentfarm.example.ts.net")?;
    if scheme != "https" && scheme != "http" {
        return Err("the public URL must be http:// or https://".into());
    }
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
        return Err("the public URL must be just scheme://host[:port]".into());
    }
    Ok(format!("{scheme}://{}", authority.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let settings = Settings::with_data_dir("/tmp/x");
        assert_eq!(settings.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(
            settings.metrics_listen.to_string(),
            "127.0.0.1:9464",
            "metrics on loopback"
        );
        assert_eq!(settings.max_running, 3);
        assert_eq!(settings.log_retention, 5_000);
        assert!(settings.env_passthrough.contains(&"PATH".to_owned()));
        assert!(
            !settings
                .env_passthrough
                .iter()
                .any(|name| crate::runtime::local::is_credential_name(name)),
            "no credential passes to agents by default"
        );
        assert!(!settings.direct_credentials);
        assert_eq!(settings.sandbox.kind, SandboxChoice::None);
        assert_eq!(settings.agent_url(None), "http://127.0.0.1:8080");
        let gateway = "10.213.0.1:41234".parse().ok();
        assert_eq!(settings.agent_url(gateway), "http://10.213.0.1:41234");
        let mut everywhere = settings;
        everywhere.listen = "0.0.0.0:9000".parse().unwrap();
        assert_eq!(everywhere.agent_url(None), "http://127.0.0.1:9000");
        everywhere.agent_url = Some("http://agentfarm.agentfarm-system.svc/".into());
        assert_eq!(
            everywhere.agent_url(gateway),
            "http://agentfarm.agentfarm-system.svc"
        );
    }

    #[test]
    fn origins() {
        assert_eq!(
            parse_origin("https://Farm.tail1.ts.net/").as_deref(),
            Ok("https://farm.tail1.ts.net")
        );
        assert!(parse_origin("ftp://x").is_err());
        assert!(parse_origin("https://x/path").is_err());
        assert!(parse_origin("https://user@x").is_err());
    }

    /// `agentfarm serve <args>`, or clap's error message.
    fn parse(args: &[&str]) -> Result<Settings, String> {
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            settings: Settings,
        }
        let argv = std::iter::once("agentfarm").chain(args.iter().copied());
        <Wrapper as clap::Parser>::try_parse_from(argv)
            .map(|wrapper| wrapper.settings)
            .map_err(|err| err.to_string())
    }

    #[test]
    fn identity_flags() {
        let settings = Settings::with_data_dir("/tmp/x");
        assert!(settings.allowed_logins.is_empty(), "no login required by default");
        let trusted: Vec<String> = settings.trusted_proxies.iter().map(ToString::to_string).collect();
        assert_eq!(trusted, ["127.0.0.1/32", "::1/128"]);
        assert_eq!(settings.tailscale_whois, None);

        let settings = parse(&[
            "--allowed-login",
            " You@Example.com ",
            "--allowed-login=octocat@github,other@example.com",
            "--trusted-proxy",
            "10.244.3.9/16,127.0.0.9",
            "--tailscale-whois",
            "/var/run/tailscale/tailscaled.sock",
        ])
        .unwrap();
        assert_eq!(
            settings.allowed_logins,
            ["you@example.com", "octocat@github", "other@example.com"]
        );
        let trusted: Vec<String> = settings.trusted_proxies.iter().map(ToString::to_string).collect();
        assert_eq!(trusted, ["10.244.0.0/16", "127.0.0.9/32"]);
        assert_eq!(
            settings.tailscale_whois,
            Some(WhoisEndpoint::Socket("/var/run/tailscale/tailscaled.sock".into()))
        );
        let settings = parse(&[
            "--allowed-login=a@b",
            "--tailscale-whois",
            "http://127.0.0.1:41112/",
        ])
        .unwrap();
        assert_eq!(
            settings.tailscale_whois,
            Some(WhoisEndpoint::Tcp("127.0.0.1:41112".parse().unwrap()))
        );
    }

    #[test]
    fn bad_identity_flags_are_refused_naming_the_flag() {
        for (args, flag) in [
            (&["--trusted-proxy", "10.0.0.0/33"][..], "--trusted-proxy"),
            (&["--trusted-proxy", "10.0.0.300"][..], "--trusted-proxy"),
            (&["--trusted-proxy", "localhost"][..], "--trusted-proxy"),
            (&["--trusted-proxy", "127.0.0.1,"][..], "--trusted-proxy"),
            (
                &["--allowed-login", "two words@example.com"][..],
                "--allowed-login",
            ),
            (&["--allowed-login", "jürgen@example.com"][..], "--allowed-login"),
            (&["--allowed-login", ""][..], "--allowed-login"),
            (
                &[
                    "--allowed-login=a@b",
                    "--tailscale-whois",
                    "http://localhost:41112",
                ][..],
                "--tailscale-whois",
            ),
            (
                &[
                    "--allowed-login=a@b",
                    "--tailscale-whois",
                    "http://u:p@127.0.0.1:1",
                ][..],
                "--tailscale-whois",
            ),
            (
                &["--allowed-login=a@b", "--tailscale-whois", "https://127.0.0.1:1"][..],
                "--tailscale-whois",
            ),
            (
                &["--tailscale-whois", "/var/run/tailscale/tailscaled.sock"][..],
                "--allowed-login",
            ),
        ] {
            let error = parse(args).expect_err(&format!("{args:?} is refused"));
            assert!(error.contains(flag), "{args:?}: {error}");
        }
    }

    #[test]
    fn key_values() {
        assert_eq!(parse_key_value("A_B=c=d"), Ok(("A_B".into(), "c=d".into())));
        assert!(parse_key_value("=x").is_err());
        assert!(parse_key_value("A-B=x").is_err());
    }
}
