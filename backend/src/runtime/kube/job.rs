//! The Job for one run: what the agent's pod is allowed to do, written down once. Pure: settings and a run in,
//! a `batch/v1` Job out.

use std::collections::BTreeMap;

use agentfarm_shared::config::{CredentialMode, EGRESS_LABEL};
use agentfarm_shared::runner::RUN_TOKEN_ENV;
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, EmptyDirVolumeSource, EnvVar, EnvVarSource, EphemeralVolumeSource,
    PersistentVolumeClaimSpec, PersistentVolumeClaimTemplate, PersistentVolumeClaimVolumeSource,
    PodSecurityContext, PodSpec, PodTemplateSpec, ResourceRequirements, SeccompProfile, Secret,
    SecretKeySelector, SecurityContext, Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::KubeSettings;
use crate::runtime::RunSpec;

/// The label every object agentfarm makes carries.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "agentfarm");
/// The label naming the run.
pub const RUN_LABEL: &str = "agentfarm.dev/run";
/// The label naming the config.
pub const CONFIG_LABEL: &str = "agentfarm.dev/config";
/// The annotation with the config version.
pub const CONFIG_VERSION_ANNOTATION: &str = "agentfarm.dev/config-version";
/// The pod finalizer that keeps a finished pod (and its log) until the server has archived the log.
pub const ARCHIVE_FINALIZER: &str = "agentfarm.dev/archive-logs";
/// The agent's container.
pub const CONTAINER: &str = "agent";
/// The user and group the agent image runs as.
const AGENT_UID: i64 = 10001;
/// The key holding the token in every Secret.
pub const TOKEN_KEY: &str = "token";

/// Where things live in the agent's pod.
mod paths {
    pub const WORKSPACE: &str = "/workspace";
    pub const HOME: &str = "/home/agent";
    pub const TMP: &str = "/tmp";
    pub const PRIVATE_CLAUDE: &str = "/home/agent/.claude";
    pub const SHARED_CLAUDE: &str = "/claude-home";
}

/// The name of run `run_id`'s Job: the same every time, so creating it twice cannot make two.
pub fn job_name(run_id: &str) -> String {
    format!("agent-{run_id}")
}

/// The name of the Secret holding run `run_id`'s capability (owned by its Job, so it goes with it).
pub fn capability_secret_name(run_id: &str) -> String {
    format!("agent-{run_id}-capability")
}

/// The Secret holding `spec`'s capability, for its pod's environment. A Secret rather than a value in the
/// Job: reading Jobs and pods (`kubectl get -o yaml`, events, a dashboard) is more widely granted than
/// reading Secrets, and the Secret is never printed with them.
pub fn capability_secret(spec: &RunSpec) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(capability_secret_name(&spec.run_id)),
            labels: Some(BTreeMap::from([
                (MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned()),
                (RUN_LABEL.to_owned(), spec.run_id.clone()),
            ])),
            ..ObjectMeta::default()
        },
        string_data: Some(BTreeMap::from([(
            TOKEN_KEY.to_owned(),
            spec.capability.secret().to_owned(),
        )])),
        type_: Some("Opaque".into()),
        ..Secret::default()
    }
}

/// The label selector matching every object agentfarm makes.
pub fn managed_selector() -> String {
    format!("{}={}", MANAGED_BY.0, MANAGED_BY.1)
}

/// Why a Job cannot be made for a run.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The config asks for the shared-volume credential mode, which the server does not offer.
    #[error("this config uses the shared-volume credential mode, but the server has no --claude-home-claim")]
    NoSharedVolume,
    /// The runner spec could not be written.
    #[error("cannot write the runner spec: {0}")]
    Spec(#[from] serde_json::Error),
}

/// The Job that runs `spec`.
pub fn job(spec: &RunSpec, settings: &KubeSettings) -> Result<Job, JobError> {
    let runner_spec = settings.runner.spec(spec, Some(settings.idle_timeout));
    // The egress label is what the agents' NetworkPolicies select on (manifests/base/agents/networkpolicy.yaml).
    let labels = BTreeMap::from([
        (MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned()),
        (RUN_LABEL.to_owned(), spec.run_id.clone()),
        (CONFIG_LABEL.to_owned(), spec.config_id.clone()),
        (EGRESS_LABEL.to_owned(), spec.config.egress.as_str().to_owned()),
    ]);
    let annotations = BTreeMap::from([(
        CONFIG_VERSION_ANNOTATION.to_owned(),
        spec.config_version.to_string(),
    )]);
    let meta = |finalizers: Option<Vec<String>>| ObjectMeta {
        labels: Some(labels.clone()),
        annotations: Some(annotations.clone()),
        finalizers,
        ..ObjectMeta::default()
    };

    let shared_volume = spec.config.credential_mode == CredentialMode::SharedVolume;
    let claude_dir = if shared_volume {
        paths::SHARED_CLAUDE
    } else {
        paths::PRIVATE_CLAUDE
    };
    let mut env = vec![
        plain("AGENTFARM_RUN_SPEC", serde_json::to_string(&runner_spec)?),
        plain("HOME", paths::HOME),
        plain("CLAUDE_CONFIG_DIR", claude_dir),
        plain("TMPDIR", paths::TMP),
        plain("CLAUDE_CODE_TMPDIR", paths::TMP),
        plain("DISABLE_UPDATES", "1"),
        plain("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
    ];
    env.extend(
        settings
            .agent_env
            .iter()
            .map(|(name, value)| plain(name, value.as_str())),
    );
    // What reaches the model and git, after --agent-env so that nothing there overrides it: the run's own
    // capability, from its Secret; the owner's tokens only in the direct mode.
    let capability = capability_secret_name(&spec.run_id);
    env.push(plain("ANTHROPIC_BASE_URL", settings.runner.model_url.as_str()));
    env.push(secret(RUN_TOKEN_ENV, &capability));
    let claude_token = if settings.runner.direct {
        env.push(secret("GITHUB_TOKEN", &settings.github_token_secret));
        settings.claude_token_secret.as_str()
    } else {
        capability.as_str()
    };
    if !shared_volume {
        env.push(secret("CLAUDE_CODE_OAUTH_TOKEN", claude_token));
    }

    let size = |limit: &str| EmptyDirVolumeSource {
        size_limit: Some(Quantity(limit.to_owned())),
        ..EmptyDirVolumeSource::default()
    };
    let workspace = match &settings.workspace_storage_class {
        Some(class) => Volume {
            name: "workspace".into(),
            ephemeral: Some(EphemeralVolumeSource {
                volume_claim_template: Some(PersistentVolumeClaimTemplate {
                    metadata: Some(ObjectMeta {
                        labels: Some(labels.clone()),
                        ..ObjectMeta::default()
                    }),
                    spec: PersistentVolumeClaimSpec {
                        access_modes: Some(vec!["ReadWriteOnce".into()]),
                        storage_class_name: Some(class.clone()),
                        resources: Some(VolumeResourceRequirements {
                            requests: Some(BTreeMap::from([(
                                "storage".to_owned(),
                                Quantity(settings.ephemeral_storage.clone()),
                            )])),
                            limits: None,
                        }),
                        ..PersistentVolumeClaimSpec::default()
                    },
                }),
            }),
            ..Volume::default()
        },
        None => empty_dir("workspace", size(&settings.ephemeral_storage)),
    };
    let mut volumes = vec![
        workspace,
        empty_dir("home", size("1Gi")),
        empty_dir("tmp", size("2Gi")),
    ];
    let mut mounts = vec![
        mount("workspace", paths::WORKSPACE),
        mount("home", paths::HOME),
        mount("tmp", paths::TMP),
    ];
    if shared_volume {
        let claim = settings
            .claude_home_claim
            .clone()
            .ok_or(JobError::NoSharedVolume)?;
        volumes.push(Volume {
            name: "claude-home".into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim,
                read_only: Some(false),
            }),
            ..Volume::default()
        });
        mounts.push(mount("claude-home", paths::SHARED_CLAUDE));
    }

    let quantities = |cpu: &str, memory: &str, storage: &str| {
        Some(BTreeMap::from([
            ("cpu".to_owned(), Quantity(cpu.to_owned())),
            ("memory".to_owned(), Quantity(memory.to_owned())),
            ("ephemeral-storage".to_owned(), Quantity(storage.to_owned())),
        ]))
    };
    let config = &spec.config;
    let container = Container {
        name: CONTAINER.into(),
        image: Some(
            settings
                .image
                .for_agent(config.image_tag.as_deref(), &settings.default_image_tag),
        ),
        image_pull_policy: Some("IfNotPresent".into()),
        working_dir: Some(paths::WORKSPACE.into()),
        env: Some(env),
        // Follow-ups arrive on stdin through `pods/attach`; it stays open across attach sessions, so the
        // runner ends the conversation itself after the idle timeout.
        stdin: Some(true),
        stdin_once: Some(false),
        tty: Some(false),
        resources: Some(ResourceRequirements {
            requests: quantities(&config.cpu, &config.memory, "1Gi"),
            limits: quantities(&config.cpu, &config.memory, &settings.ephemeral_storage),
            ..ResourceRequirements::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            privileged: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            run_as_user: Some(AGENT_UID),
            run_as_group: Some(AGENT_UID),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                add: None,
            }),
            seccomp_profile: Some(runtime_default()),
            ..SecurityContext::default()
        }),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        ..Container::default()
    };
    let pod = PodSpec {
        runtime_class_name: Some(
            config
                .runtime_class
                .clone()
                .unwrap_or_else(|| settings.default_runtime_class.clone()),
        ),
        restart_policy: Some("Never".into()),
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        host_network: Some(false),
        host_pid: Some(false),
        host_ipc: Some(false),
        termination_grace_period_seconds: Some(seconds(settings.stop_grace)),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(AGENT_UID),
            run_as_group: Some(AGENT_UID),
            fs_group: Some(AGENT_UID),
            seccomp_profile: Some(runtime_default()),
            ..PodSecurityContext::default()
        }),
        node_selector: (!settings.node_selector.is_empty()).then(|| settings.node_selector.clone()),
        containers: vec![Container {
            volume_mounts: Some(mounts),
            ..container
        }],
        volumes: Some(volumes),
        ..PodSpec::default()
    };
    Ok(Job {
        metadata: ObjectMeta {
            name: Some(job_name(&spec.run_id)),
            namespace: Some(settings.namespace.clone()),
            ..meta(None)
        },
        spec: Some(JobSpec {
            // An agent pushes: running it again on its own is never safe.
            backoff_limit: Some(0),
            active_deadline_seconds: Some(i64::from(config.timeout_minutes) * 60),
            ttl_seconds_after_finished: Some(i32::try_from(settings.job_ttl.as_secs()).unwrap_or(i32::MAX)),
            template: PodTemplateSpec {
                metadata: Some(meta(Some(vec![ARCHIVE_FINALIZER.into()]))),
                spec: Some(pod),
            },
            ..JobSpec::default()
        }),
        status: None,
    })
}

fn seconds(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

fn runtime_default() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".into(),
        localhost_profile: None,
    }
}

fn plain(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        value_from: None,
    }
}

fn secret(name: &str, secret: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.into(),
                key: TOKEN_KEY.into(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
    }
}

fn empty_dir(name: &str, source: EmptyDirVolumeSource) -> Volume {
    Volume {
        name: name.into(),
        empty_dir: Some(source),
        ..Volume::default()
    }
}

fn mount(volume: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: volume.into(),
        mount_path: path.into(),
        ..VolumeMount::default()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use agentfarm_shared::config::ConfigSpec;

    use super::*;
    use crate::runtime::RunnerSite;
    use crate::runtime::kube::image::ImageRef;

    fn settings() -> KubeSettings {
        KubeSettings {
            namespace: "agentfarm-agents".into(),
            image: ImageRef::parse("registry.example/agentfarm-agent").expect("an image"),
            default_image_tag: "1.0.0".into(),
            default_runtime_class: "gvisor".into(),
            claude_token_secret: "claude-token".into(),
            github_token_secret: "github-token".into(),
            claude_home_claim: Some("claude-home".into()),
            node_selector: BTreeMap::from([("agentfarm.dev/role".into(), "agents".into())]),
            runner: RunnerSite {
                claude_command: "claude".into(),
                git_url: "http://agentfarm.agentfarm-system.svc/proxy/git".into(),
                control_url: "http://agentfarm.agentfarm-system.svc".into(),
                model_url: "http://agentfarm.agentfarm-system.svc/proxy/anthropic".into(),
                direct: false,
            },
            agent_env: vec![("TZ".into(), "UTC".into())],
            idle_timeout: Duration::from_secs(300),
            stop_grace: Duration::from_secs(10),
            job_ttl: Duration::from_secs(7 * 24 * 3600),
            ephemeral_storage: "10Gi".into(),
            workspace_storage_class: None,
            creates_per_minute: 20,
        }
    }

    fn run(config: ConfigSpec) -> RunSpec {
        RunSpec {
            run_id: "01jz0000000000000000000000".into(),
            config_id: "fix-bugs".into(),
            config_version: 3,
            config,
            prompt: "Fix the bugs".into(),
            session_id: "00000000-0000-4000-8000-000000000000".into(),
            branch: "agentfarm/01jz0000000000000000000000".into(),
            capability: crate::capability::Capability::mint().expect("randomness"),
        }
    }

    /// The whole Job, pinned: a change to what an agent may do shows up in review as a change to this file.
    /// `AGENTFARM_UPDATE_GOLDEN=1 cargo test` rewrites it.
    #[test]
    fn the_job_matches_the_golden_file() {
        let mut config = ConfigSpec::new("Fix bugs", "Fix the bugs");
        config.repos = vec!["octo/app".into()];
        let made = job(&run(config), &settings()).unwrap();
        let yaml = serde_norway::to_string(&made).unwrap();
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/runtime/kube/job.golden.yaml");
        if std::env::var_os("AGENTFARM_UPDATE_GOLDEN").is_some() {
            std::fs::write(path, &yaml).unwrap();
        }
        assert_eq!(yaml, std::fs::read_to_string(path).unwrap());
    }

    #[test]
    fn the_shared_volume_mode_mounts_the_claim_and_drops_the_token() {
        let mut config = ConfigSpec::new("Shared", "task");
        config.credential_mode = CredentialMode::SharedVolume;
        config.runtime_class = Some("kata-clh".into());
        let made = job(&run(config.clone()), &settings()).unwrap();
        let pod = made.spec.unwrap().template.spec.unwrap();
        assert_eq!(pod.runtime_class_name.as_deref(), Some("kata-clh"));
        let env = pod.containers[0].env.clone().unwrap();
        assert!(env.iter().all(|var| var.name != "CLAUDE_CODE_OAUTH_TOKEN"));
        assert!(
            env.iter()
                .any(|var| var.name == "CLAUDE_CONFIG_DIR" && var.value.as_deref() == Some("/claude-home"))
        );
        let claim = pod
            .volumes
            .unwrap()
            .into_iter()
            .find_map(|v| v.persistent_volume_claim);
        assert_eq!(claim.map(|c| c.claim_name).as_deref(), Some("claude-home"));

        let without = KubeSettings {
            claude_home_claim: None,
            ..settings()
        };
        let on_a_volume = KubeSettings {
            workspace_storage_class: Some("hcloud-volumes".into()),
            ..settings()
        };
        let made = job(&run(config.clone()), &on_a_volume).unwrap();
        let workspace = made
            .spec
            .unwrap()
            .template
            .spec
            .unwrap()
            .volumes
            .unwrap()
            .remove(0);
        let claim = workspace.ephemeral.unwrap().volume_claim_template.unwrap().spec;
        assert_eq!(claim.storage_class_name.as_deref(), Some("hcloud-volumes"));
        assert!(matches!(
            job(&run(config), &without),
            Err(JobError::NoSharedVolume)
        ));
    }

    /// A label value: empty, or at most 63 of `[A-Za-z0-9._-]` starting and ending with a letter or digit.
    fn valid_label_value(value: &str) -> bool {
        let edge = |b: Option<&u8>| b.is_none_or(u8::is_ascii_alphanumeric);
        value.len() <= 63
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && edge(value.as_bytes().first())
            && edge(value.as_bytes().last())
    }

    /// A DNS label as Kubernetes object names need: `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`, at most 63 characters.
    fn valid_name(value: &str) -> bool {
        agentfarm_shared::validate::rfc1123_label(value).is_ok()
    }

    /// Characters random names are drawn from: ASCII, separators, Unicode that lowercases oddly or is wide,
    /// right-to-left marks, and control characters.
    const ALPHABET: &[char] = &[
        'a', 'Z', 'q', '0', '9', '-', '_', '.', '/', ' ', '\t', '\n', '\0', '\u{1b}', '%', '2', 'F', ':',
        'é', 'ß', 'İ', 'ﬁ', 'Ⅻ', '日', '🙂', '\u{202e}', '\u{200b}', 'ａ', 'K', '\u{212a}',
    ];

    /// splitmix64: a small seeded generator, so a failure names an input that reproduces.
    struct Seeded(u64);

    impl Seeded {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, bound: usize) -> usize {
            usize::try_from(self.next() % bound as u64).unwrap()
        }
    }

    /// CI-02 (names and labels from any text): 10,000 seeded random names (up to 200 characters of ASCII,
    /// Unicode and control characters). Whenever a name gives a config id, the id is a valid object name, and
    /// the Job for a run of that config has a valid name and only valid label values, which are ours (the
    /// managed-by mark, the run id, the derived id: never the owner's text), and annotations under 1 KiB.
    #[test]
    fn ci_02_names_and_labels_from_any_text() {
        let mut rng = Seeded(0x0a6e_27fa_2000_0002);
        let mut ids = 0;
        for _ in 0..10_000 {
            let length = rng.below(201);
            let name: String = (0..length).map(|_| ALPHABET[rng.below(ALPHABET.len())]).collect();
            let Some(id) = ConfigSpec::new(&name, "task").derived_id() else {
                continue;
            };
            ids += 1;
            assert!(valid_name(&id), "{name:?} gave the id {id:?}");
            let run_id = ulid::Ulid::new().to_string().to_ascii_lowercase();
            assert!(valid_name(&job_name(&run_id)), "{run_id}");
            let spec = RunSpec {
                run_id: run_id.clone(),
                config_id: id.clone(),
                branch: format!("agentfarm/{run_id}"),
                ..run(ConfigSpec::new(&name, "task"))
            };
            let made = job(&spec, &settings()).unwrap();
            let template = made
                .spec
                .as_ref()
                .and_then(|spec| spec.template.metadata.as_ref());
            for meta in [Some(&made.metadata), template].into_iter().flatten() {
                for (key, value) in meta.labels.iter().flatten() {
                    assert!(valid_label_value(value), "{name:?}: label {key}={value:?}");
                    assert!(
                        [MANAGED_BY.1, &run_id, &id, spec.config.egress.as_str()].contains(&value.as_str()),
                        "{name:?}: label {key}={value:?} is none of ours"
                    );
                }
                for (key, value) in meta.annotations.iter().flatten() {
                    assert!(
                        value.len() <= 1024,
                        "{name:?}: annotation {key} is {} bytes",
                        value.len()
                    );
                }
            }
        }
        assert!(
            ids > 5_000,
            "only {ids} of the names gave an id: the generator is too narrow"
        );
    }
}
