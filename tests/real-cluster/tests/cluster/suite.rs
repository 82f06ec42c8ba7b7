//! What every test of the suite shares: the cluster `agentfarm-cluster up` brought up (its state in
//! `$AGENTFARM_CLUSTER_STATE`, else the default), the fake model and fake GitHub on the host's bridge address,
//! where the pods reach them, and the control plane applied with `kubectl apply --server-side -k
//! manifests/overlays/local` and running in the cluster from the image built from its Dockerfile. Tests take
//! turns: they share one control plane and one node.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use agentfarm_app_client::App;
use agentfarm_fake_github::FakeGithub;
use agentfarm_fake_model::{FAKE_OAUTH_TOKEN, FakeModel, Port};
use agentfarm_real_cluster::components::kubectl;
use agentfarm_real_cluster::layout::{DEFAULT_STATE, GATEWAY, Layout};
use tokio::sync::{Mutex, MutexGuard};

/// The agents' namespace.
pub const AGENTS: &str = "agentfarm-agents";
/// The control plane's namespace.
pub const SYSTEM: &str = "agentfarm-system";
/// The app's address: its Service's fixed ClusterIP (manifests/overlays/local), its origin too.
pub const APP_URL: &str = "http://10.43.0.80";
/// The token the fake GitHub accepts, stored as the Secret `github-token`.
pub const GITHUB_TOKEN: &str = "ghp_agentfarmclustertesttoken0000000000";
/// Where the overlay points agents for the model and for git (manifests/overlays/local).
const MODEL_PORT: u16 = 18081;
const GITHUB_PORT: u16 = 18082;

/// The suite's shared cluster.
pub struct Suite {
    /// The cluster's state directory.
    pub layout: Layout,
    /// The fake Anthropic API the agents' Claude Code talks to.
    pub model: FakeModel,
    /// The fake GitHub the agents clone from, push to and open pull requests on.
    pub github: FakeGithub,
    /// The repository root.
    pub repo: PathBuf,
    /// Sets this run of the suite's config names apart from an earlier run's on the same cluster.
    tag: String,
    turns: Mutex<()>,
    /// Runs the fakes' servers for the whole suite (each test has a runtime of its own).
    runtime: tokio::runtime::Runtime,
}

static SUITE: OnceLock<Suite> = OnceLock::new();

/// The suite's cluster, set up by the first test that asks (on a thread of its own: the set-up starts the fakes'
/// runtime, which cannot be done from inside the asking test's runtime).
pub fn suite() -> &'static Suite {
    SUITE.get_or_init(|| {
        std::thread::spawn(Suite::start)
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

impl Suite {
    fn start() -> Suite {
        let state = std::env::var_os("AGENTFARM_CLUSTER_STATE")
            .map_or_else(|| PathBuf::from(DEFAULT_STATE), PathBuf::from);
        let layout = Layout::new(state);
        assert!(
            layout.admin_kubeconfig().is_file(),
            "no test cluster at {}: `cargo xtask test` brings one up around this suite, `cargo xtask cluster up` \
             by hand (the machine needs root, containerd, runc, runsc, buildah: see tests/real-cluster)",
            layout.state.display()
        );
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .canonicalize()
            .expect("the repository");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime for the fakes");
        let (model, github) = runtime.block_on(async {
            let on_bridge = |port| SocketAddr::from((GATEWAY, port));
            (
                FakeModel::start_on(Port::bind_to("fake model", on_bridge(MODEL_PORT)).await),
                FakeGithub::start_on(
                    GITHUB_TOKEN,
                    Port::bind_to("fake github", on_bridge(GITHUB_PORT)).await,
                ),
            )
        });
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("a clock after 1970");
        let suite = Suite {
            layout,
            model,
            github,
            repo,
            tag: format!("{:x}", started.as_secs()),
            turns: Mutex::new(()),
            runtime,
        };
        suite.deploy();
        // Ready behind its Service: kube-proxy may program the ClusterIP a moment after the rollout ends (and
        // until then this VM's gateway answers port 80 itself).
        suite.runtime.block_on(suite.app_ready(Duration::from_secs(120)));
        suite
    }

    /// Applies the overlay (server-side, as the runbook's bootstrap does), the owner's token Secrets (which only
    /// the control plane mounts), and waits for the control plane.
    fn deploy(&self) {
        let overlay = self.repo.join("manifests/overlays/local");
        self.kubectl(&[
            "apply",
            "--server-side",
            "--field-manager=agentfarm-tests",
            "-k",
            &overlay.display().to_string(),
        ]);
        self.set_secret("claude-token", FAKE_OAUTH_TOKEN);
        self.set_secret("github-token", GITHUB_TOKEN);
        self.kubectl(&[
            "-n",
            SYSTEM,
            "rollout",
            "status",
            "deploy/agentfarm-control-plane",
            "--timeout=300s",
        ]);
    }

    /// Creates or replaces the owner's token Secret `name` (key `token`) in the control plane's namespace.
    pub fn set_secret(&self, name: &str, token: &str) {
        let secret = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": SYSTEM},
            "stringData": {"token": token},
        });
        self.apply(&secret);
    }

    /// Applies `object` (server-side, as the tests' field manager).
    pub fn apply(&self, object: &serde_json::Value) {
        self.try_kubectl_on(
            &["apply", "--server-side", "--field-manager=agentfarm-tests"],
            object,
        )
        .unwrap_or_else(|err| panic!("{err}"));
    }

    /// Runs kubectl `args` on `object` (given as `-f FILE`); its output, or kubectl's words when it fails.
    pub fn try_kubectl_on(&self, args: &[&str], object: &serde_json::Value) -> Result<String, String> {
        let file = tempfile::NamedTempFile::new().expect("a temporary file");
        std::fs::write(file.path(), object.to_string()).expect("write the object");
        let path = file.path().display().to_string();
        let mut args = args.to_vec();
        args.extend(["-f", &path]);
        self.try_kubectl(&args)
    }

    /// Object `kind`/`name` (in `namespace`, when namespaced) as it is now, to put back with
    /// [`Suite::recreate`] after a test removed it.
    pub fn save(&self, namespace: Option<&str>, kind: &str, name: &str) -> serde_json::Value {
        let mut args = vec!["get", kind, name, "-o", "json"];
        if let Some(namespace) = namespace {
            args.extend(["-n", namespace]);
        }
        let mut object: serde_json::Value = serde_json::from_str(&self.kubectl(&args)).expect("an object");
        if let Some(metadata) = object["metadata"].as_object_mut() {
            for field in [
                "resourceVersion",
                "uid",
                "creationTimestamp",
                "managedFields",
                "generation",
            ] {
                metadata.remove(field);
            }
        }
        object
    }

    /// Creates `object` (as [`Suite::save`] kept it) again.
    pub fn recreate(&self, object: &serde_json::Value) {
        self.try_kubectl_on(&["create"], object)
            .unwrap_or_else(|err| panic!("{err}"));
    }

    /// A config name of this run of the suite (the control plane's store outlives it when the cluster is kept).
    pub fn named(&self, name: &str) -> String {
        format!("{name} {}", self.tag)
    }

    /// Waits for this test's turn on the cluster.
    pub async fn turn(&self) -> MutexGuard<'_, ()> {
        self.turns.lock().await
    }

    /// Runs our kubectl as the admin; its output (the test fails with kubectl's words when it fails).
    pub fn kubectl(&self, args: &[&str]) -> String {
        kubectl(&self.layout, args).unwrap_or_else(|err| panic!("{err}"))
    }

    /// Runs our kubectl as the admin; its output, or kubectl's words when it fails.
    pub fn try_kubectl(&self, args: &[&str]) -> Result<String, String> {
        kubectl(&self.layout, args).map_err(|err| err.to_string())
    }

    /// A client of the cluster's API as the admin (each test's own: clients belong to a runtime).
    pub async fn kube(&self) -> kube::Client {
        let kubeconfig =
            kube::config::Kubeconfig::read_from(self.layout.admin_kubeconfig()).expect("the kubeconfig");
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
                .await
                .expect("a client configuration");
        kube::Client::try_from(config).expect("a client")
    }

    /// The app in the cluster, through its Service.
    pub fn app(&self) -> App {
        App::new(APP_URL)
    }

    /// Waits until the control plane answers `/readyz` (after a restart), up to `timeout`, and returns a client
    /// whose connection reached it.
    pub async fn app_ready(&self, timeout: Duration) -> App {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // A new client, so a new connection, on every try: until kube-proxy routes the ClusterIP, this VM's
            // gateway answers port 80 itself and keeps that connection alive, and a pooled client would go on
            // asking the gateway long after the Service works.
            let app = self.app();
            let ready = app.http.get(format!("{}/readyz", app.url)).send().await;
            if ready.is_ok_and(|response| response.status().is_success()) {
                return app;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the control plane never got ready"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
