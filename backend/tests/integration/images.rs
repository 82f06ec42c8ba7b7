//! The container images (infra/images), checked without Docker: pinned base images, a numeric non-root
//! user, no credentials, the Claude Code version of package.json, updates off, the managed settings, and
//! tool versions that agree with Cargo.lock.

use std::collections::HashMap;

use serde_json::Value;

use crate::harness::{files_under, repo};

const AGENT: &str = "infra/images/agent/Dockerfile";
const CONTROL_PLANE: &str = "infra/images/control-plane/Dockerfile";
const MANAGED_SETTINGS: &str = "infra/images/agent/managed-settings.json";
const CLAUDE_CODE: &str = "@anthropic-ai/claude-code";

fn read(relative: &str) -> String {
    let path = repo().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// One build stage: its base image and its instructions (keyword upper-cased, arguments as written).
struct Stage {
    image: String,
    name: Option<String>,
    instructions: Vec<(String, String)>,
}

/// A Dockerfile split into stages, continuation lines joined and comments dropped.
struct Dockerfile {
    path: &'static str,
    /// `ARG`s declared before the first `FROM`.
    global_args: Vec<String>,
    stages: Vec<Stage>,
}

impl Dockerfile {
    fn load(path: &'static str) -> Dockerfile {
        let text = read(path);
        let mut logical = Vec::new();
        let mut current = String::new();
        for line in text.lines() {
            let trimmed = line.trim();
            if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
                continue;
            }
            if !current.is_empty() && trimmed.starts_with('#') {
                continue; // a comment inside a continued instruction
            }
            match trimmed.strip_suffix('\\') {
                Some(head) => {
                    current.push_str(head.trim());
                    current.push(' ');
                }
                None => {
                    current.push_str(trimmed);
                    logical.push(std::mem::take(&mut current));
                }
            }
        }
        assert!(current.is_empty(), "{path}: a continuation line runs off the end");

        let mut file = Dockerfile {
            path,
            global_args: Vec::new(),
            stages: Vec::new(),
        };
        for instruction in logical {
            let (keyword, args) = instruction
                .split_once(char::is_whitespace)
                .unwrap_or((&instruction, ""));
            let (keyword, args) = (keyword.to_ascii_uppercase(), args.trim().to_owned());
            if keyword == "FROM" {
                let words: Vec<&str> = args
                    .split_whitespace()
                    .filter(|word| !word.starts_with("--"))
                    .collect();
                let name = match words.as_slice() {
                    [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some((*name).to_owned()),
                    [_] => None,
                    _ => panic!("{path}: cannot read `FROM {args}`"),
                };
                file.stages.push(Stage {
                    image: words[0].to_owned(),
                    name,
                    instructions: Vec::new(),
                });
            } else if let Some(stage) = file.stages.last_mut() {
                stage.instructions.push((keyword, args));
            } else if keyword == "ARG" {
                file.global_args.push(args);
            } else {
                panic!("{path}: `{keyword}` before the first FROM");
            }
        }
        assert!(!file.stages.is_empty(), "{path}: no FROM");
        file
    }

    fn final_stage(&self) -> &Stage {
        self.stages.last().expect("at least one stage")
    }

    fn all_instructions(&self) -> impl Iterator<Item = (&str, &str)> {
        self.stages
            .iter()
            .flat_map(|stage| stage.instructions.iter())
            .map(|(keyword, args)| (keyword.as_str(), args.as_str()))
    }
}

impl Stage {
    fn args_of(&self, keyword: &str) -> impl Iterator<Item = &str> {
        self.instructions
            .iter()
            .filter(move |(k, _)| k == keyword)
            .map(|(_, args)| args.as_str())
    }

    /// `ARG` defaults and `ENV` values of this stage, in order (later ones win).
    fn variables(&self) -> HashMap<String, String> {
        let mut vars = HashMap::new();
        for (keyword, args) in &self.instructions {
            if keyword == "ARG" || keyword == "ENV" {
                for (key, value) in key_values(args) {
                    vars.insert(key, expand(&value, &vars));
                }
            }
        }
        vars
    }

    /// The run-time environment the stage sets (`ENV` only).
    fn env(&self) -> HashMap<String, String> {
        self.args_of("ENV").flat_map(key_values).collect()
    }

    /// `RUN` commands with `${VAR}` / `$VAR` replaced by the stage's ARG defaults and ENV values.
    fn expanded_runs(&self) -> Vec<String> {
        let vars = self.variables();
        self.args_of("RUN").map(|run| expand(run, &vars)).collect()
    }
}

/// `KEY=value KEY2="value 2"` (values without spaces unless quoted); a bare `KEY` has an empty value.
fn key_values(args: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut rest = args.trim();
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(rest.len());
        let key = rest[..end].to_owned();
        rest = &rest[end..];
        let value = if let Some(after) = rest.strip_prefix('=') {
            if let Some(quoted) = after.strip_prefix('"') {
                let close = quoted.find('"').expect("closing quote");
                rest = &quoted[close + 1..];
                quoted[..close].to_owned()
            } else {
                let end = after.find(char::is_whitespace).unwrap_or(after.len());
                rest = &after[end..];
                after[..end].to_owned()
            }
        } else {
            String::new()
        };
        pairs.push((key, value));
        rest = rest.trim_start();
    }
    pairs
}

fn expand(text: &str, vars: &HashMap<String, String>) -> String {
    let mut out = text.to_owned();
    for (key, value) in vars {
        out = out.replace(&format!("${{{key}}}"), value);
    }
    // Bare `$KEY`, longest names first so that `$AB` is not read as `$A` + "B".
    let mut keys: Vec<&String> = vars.keys().collect();
    keys.sort_by_key(|key| std::cmp::Reverse(key.len()));
    for key in keys {
        out = out.replace(&format!("${key}"), &vars[key]);
    }
    out
}

fn both() -> [Dockerfile; 2] {
    [Dockerfile::load(AGENT), Dockerfile::load(CONTROL_PLANE)]
}

fn is_hex_digest(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[test]
fn every_base_image_is_pinned_by_version_tag_and_digest() {
    for file in both() {
        // Only base images are declared before the first FROM (`ARG NAME_IMAGE=pin`), so that a build that
        // cannot pull them can pass equivalent images; tool versions stay in the stage that uses them, where
        // the checks below look for them.
        let bases: HashMap<String, String> = file
            .global_args
            .iter()
            .map(String::as_str)
            .flat_map(key_values)
            .collect();
        for (name, pin) in &bases {
            assert!(
                name.ends_with("_IMAGE") && !pin.is_empty(),
                "{}: `ARG {name}` before the first FROM: only base images go there, with the pin as default",
                file.path
            );
        }
        let mut stage_names: Vec<&str> = Vec::new();
        for stage in &file.stages {
            if stage_names.contains(&stage.image.as_str()) {
                continue; // builds on an earlier stage of this file
            }
            let from = stage.image.as_str();
            assert!(
                from.starts_with('$'),
                "{}: `FROM {from}`: name the base through an ARG declared before the first FROM",
                file.path
            );
            let image = expand(from, &bases);
            assert!(
                !image.contains('$'),
                "{}: `FROM {from}`: no ARG with a default before the first FROM",
                file.path
            );
            let (reference, digest) = image
                .split_once("@sha256:")
                .unwrap_or_else(|| panic!("{}: `FROM {image}` has no @sha256: digest", file.path));
            assert!(
                is_hex_digest(digest),
                "{}: `{image}`: the digest must be 64 lowercase hex digits",
                file.path
            );
            let last_segment = reference.rsplit('/').next().expect("rsplit yields one item");
            let (_, tag) = last_segment
                .split_once(':')
                .unwrap_or_else(|| panic!("{}: `{image}` has no tag next to its digest", file.path));
            assert!(
                tag != "latest" && tag.bytes().any(|b| b.is_ascii_digit()),
                "{}: `{image}`: the tag must name a version, not `{tag}`",
                file.path
            );
            if let Some(name) = &stage.name {
                stage_names.push(name);
            }
        }
    }
}

#[test]
fn final_stages_run_as_a_numeric_non_root_user() {
    for file in both() {
        let user = file
            .final_stage()
            .args_of("USER")
            .last()
            .unwrap_or_else(|| panic!("{}: the final stage sets no USER", file.path));
        let ids: Vec<&str> = user.split(':').collect();
        assert!(
            (1..=2).contains(&ids.len())
                && ids
                    .iter()
                    .all(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())),
            "{}: `USER {user}` must be numeric (UID or UID:GID) so that runAsNonRoot can check it",
            file.path
        );
        assert!(
            ids.iter().all(|id| id.parse::<u32>().expect("digits") != 0),
            "{}: `USER {user}` is root",
            file.path
        );
    }
}

#[test]
fn no_api_key_and_nothing_secret_looking_in_the_images() {
    for file in both() {
        for (keyword, args) in file.all_instructions() {
            for forbidden in [
                "ANTHROPIC_API_KEY",
                "ANTHROPIC_AUTH_TOKEN",
                "CLAUDE_CODE_OAUTH_TOKEN=",
            ] {
                assert!(
                    !args.contains(forbidden),
                    "{}: `{keyword} {args}` sets {forbidden}: credentials come from the pod, never the image",
                    file.path
                );
            }
        }
    }
    let settings: Value = serde_json::from_str(&read(MANAGED_SETTINGS)).expect("managed settings are JSON");
    let env = settings["env"].as_object().cloned().unwrap_or_default();
    for key in [
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "CLAUDE_CODE_OAUTH_TOKEN",
    ] {
        assert!(!env.contains_key(key), "managed settings set {key}");
    }
    assert!(
        settings.get("apiKeyHelper").is_none(),
        "managed settings define an apiKeyHelper"
    );

    // Every file of infra/images, plus the files that go into the web app.
    let mut files = files_under(&repo().join("infra/images"));
    files.push(repo().join("frontend/index.html"));
    files.push(repo().join("frontend/Trunk.toml"));
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        for prefix in ["sk-ant-", "ghp_", "gho_", "ghs_", "github_pat_", "-----BEGIN"] {
            assert!(
                !text.contains(prefix),
                "{}: contains `{prefix}`, which looks like a secret",
                path.display()
            );
        }
    }
}

#[test]
fn the_agent_image_installs_the_claude_code_version_of_package_json() {
    let package: Value = serde_json::from_str(&read("package.json")).expect("package.json is JSON");
    let version = package["devDependencies"][CLAUDE_CODE]
        .as_str()
        .expect("package.json pins @anthropic-ai/claude-code");
    assert!(
        !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit() || b == b'.'),
        "package.json must pin an exact version, not `{version}`"
    );

    let agent = Dockerfile::load(AGENT);
    let runs = agent.final_stage().expanded_runs();
    let wanted = format!("{CLAUDE_CODE}@{version}");
    assert!(
        runs.iter().any(|run| run.contains("npm install -g")
            && run.split_whitespace().any(|w| w.trim_matches('"') == wanted)),
        "{AGENT}: no `npm install -g {wanted}` (ARG CLAUDE_CODE_VERSION must equal package.json)"
    );
    for run in &runs {
        for word in run
            .split_whitespace()
            .map(|w| w.trim_matches(|c| c == '"' || c == '\''))
        {
            if let Some(other) = word.strip_prefix(&format!("{CLAUDE_CODE}@")) {
                assert_eq!(other, version, "{AGENT}: installs {word}");
            }
        }
    }
}

#[test]
fn the_agent_image_turns_updates_and_nonessential_traffic_off() {
    let agent = Dockerfile::load(AGENT);
    let env = agent.final_stage().env();
    for key in ["DISABLE_UPDATES", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] {
        assert_eq!(
            env.get(key).map(String::as_str),
            Some("1"),
            "{AGENT}: ENV {key}=1"
        );
    }
}

#[test]
fn the_managed_settings_allow_only_managed_hooks_and_are_installed_read_only() {
    let settings: Value = serde_json::from_str(&read(MANAGED_SETTINGS)).expect("managed settings are JSON");
    assert_eq!(settings["allowManagedHooksOnly"], Value::Bool(true));
    assert!(
        settings.get("hooks").is_none(),
        "the managed settings define no hooks of their own"
    );
    assert_eq!(settings["env"]["DISABLE_UPDATES"], "1");
    let deny = settings["permissions"]["deny"]
        .as_array()
        .expect("permissions.deny is a list");
    assert!(deny.iter().all(Value::is_string));

    let agent = Dockerfile::load(AGENT);
    let stage = agent.final_stage();
    assert!(
        stage
            .args_of("COPY")
            .any(|args| args == format!("{MANAGED_SETTINGS} /etc/claude-code/managed-settings.json")),
        "{AGENT}: copies {MANAGED_SETTINGS} to /etc/claude-code/managed-settings.json"
    );
    assert!(
        stage
            .args_of("RUN")
            .any(|run| run.contains("chmod 0444 /etc/claude-code/managed-settings.json")),
        "{AGENT}: the managed settings are read-only"
    );
}

#[test]
fn entrypoints_ports_and_data_dir() {
    let entrypoint = |file: &Dockerfile| -> Vec<String> {
        let args = file
            .final_stage()
            .args_of("ENTRYPOINT")
            .last()
            .expect("ENTRYPOINT");
        serde_json::from_str(args).expect("ENTRYPOINT in exec (JSON) form")
    };
    let [agent, control_plane] = both();
    assert_eq!(
        entrypoint(&agent),
        ["/usr/bin/tini", "--", "/usr/local/bin/agentfarm-runner"]
    );
    assert_eq!(entrypoint(&control_plane), ["/usr/local/bin/agentfarm", "serve"]);

    let stage = control_plane.final_stage();
    let env = stage.env();
    assert_eq!(env["AGENTFARM_LISTEN"], "0.0.0.0:8080");
    assert_eq!(env["AGENTFARM_DATA_DIR"], "/var/lib/agentfarm");
    assert!(stage.args_of("EXPOSE").any(|ports| ports == "8080"));
    assert!(
        stage
            .args_of("VOLUME")
            .any(|volume| volume.contains("/var/lib/agentfarm"))
    );
}

/// `cargo build -p NAME` must name a package of the workspace, with `--locked`; `COPY` sources must exist.
#[test]
fn builds_name_workspace_packages_and_copy_existing_files() {
    let workspace = read("Cargo.toml");
    let members_line = workspace
        .lines()
        .find(|line| line.trim_start().starts_with("members"))
        .expect("workspace members");
    let members: Vec<&str> = members_line.split('"').skip(1).step_by(2).collect();
    let packages: Vec<String> = members
        .iter()
        .map(|member| {
            let manifest = read(&format!("{member}/Cargo.toml"));
            let name = manifest
                .lines()
                .find_map(|line| line.trim().strip_prefix("name = \""))
                .unwrap_or_else(|| panic!("{member}/Cargo.toml has no name"));
            name.trim_end_matches('"').to_owned()
        })
        .collect();

    for file in both() {
        let mut builds = 0;
        for (keyword, args) in file.all_instructions() {
            if keyword == "RUN" && args.contains("cargo build") {
                builds += 1;
                assert!(
                    args.contains("--locked"),
                    "{}: `{args}` without --locked",
                    file.path
                );
                let command = args
                    .split("&&")
                    .find(|part| part.trim_start().starts_with("cargo build"))
                    .expect("cargo build starts one of the commands");
                let words: Vec<&str> = command.split_whitespace().collect();
                for pair in words.windows(2).filter(|pair| pair[0] == "-p") {
                    assert!(
                        packages.iter().any(|package| package == pair[1]),
                        "{}: `-p {}` is not a workspace package ({packages:?})",
                        file.path,
                        pair[1]
                    );
                }
            }
            if keyword == "COPY" && !args.starts_with("--from") {
                let words: Vec<&str> = args.split_whitespace().filter(|w| !w.starts_with("--")).collect();
                for source in &words[..words.len() - 1] {
                    assert!(
                        repo().join(source).exists(),
                        "{}: COPY source {source} does not exist",
                        file.path
                    );
                }
            }
        }
        assert!(builds > 0, "{}: builds nothing with cargo", file.path);
    }
}

/// trunk fails unless the wasm-bindgen CLI equals the crate in Cargo.lock; keep the pins in step.
#[test]
fn the_web_build_tools_match_cargo_lock_and_trunk_toml() {
    let lock = read("Cargo.lock");
    let mut lines = lock.lines();
    lines
        .find(|line| *line == "name = \"wasm-bindgen\"")
        .expect("wasm-bindgen in Cargo.lock");
    let locked = lines
        .next()
        .and_then(|line| line.strip_prefix("version = \""))
        .map(|v| v.trim_end_matches('"'))
        .expect("a version line after the name");

    let control_plane = Dockerfile::load(CONTROL_PLANE);
    let build = control_plane
        .stages
        .iter()
        .find(|stage| stage.args_of("RUN").any(|run| run.contains("trunk build")))
        .expect("a stage runs trunk build");
    let vars = build.variables();
    assert_eq!(
        vars["WASM_BINDGEN_VERSION"], locked,
        "{CONTROL_PLANE}: wasm-bindgen-cli vs Cargo.lock"
    );
    assert_eq!(
        vars["TRUNK_VERSION"], "0.21.14",
        "trunk 0.22 needs rustc >= 1.96.1"
    );
    assert!(
        build
            .expanded_runs()
            .iter()
            .any(|run| run.contains(&format!("wasm-bindgen-cli@{locked}"))),
        "{CONTROL_PLANE}: installs wasm-bindgen-cli@{locked}"
    );

    let trunk_toml = read("frontend/Trunk.toml");
    assert!(
        trunk_toml
            .lines()
            .any(|line| line.trim() == format!("wasm_bindgen = \"{locked}\"")),
        "frontend/Trunk.toml: [tools] wasm_bindgen = \"{locked}\""
    );
    assert!(
        trunk_toml.lines().any(|line| line.trim() == "offline = true"),
        "frontend/Trunk.toml: [build] offline = true (no tool downloads)"
    );
}

/// Whether `.dockerignore`'s `pattern` (Docker's rules: relative to the context's root, `*` within one path
/// element, `**` across any number, a match on a directory covering everything under it) excludes `path`.
fn docker_ignores(pattern: &str, path: &str) -> bool {
    fn matches(pattern: &[u8], path: &[u8]) -> bool {
        match (pattern.first(), path.first()) {
            (None, None) => true,
            (Some(b'*'), _) if pattern.starts_with(b"**/") => {
                matches(&pattern[3..], path)
                    || path
                        .iter()
                        .position(|&byte| byte == b'/')
                        .is_some_and(|slash| matches(pattern, &path[slash + 1..]))
            }
            (Some(b'*'), _) => {
                matches(&pattern[1..], path)
                    || (path.first().is_some_and(|&byte| byte != b'/') && matches(pattern, &path[1..]))
            }
            (Some(&expected), Some(&byte)) => expected == byte && matches(&pattern[1..], &path[1..]),
            _ => false,
        }
    }
    let pattern = pattern.trim_start_matches('/').trim_end_matches('/');
    let mut prefix = String::new();
    path.split('/').any(|element| {
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(element);
        matches(pattern.as_bytes(), prefix.as_bytes())
    })
}

/// The runbook writes credentials and local state into the working tree (the kubeconfig, the VAPID key
/// backup, database copies, the site overlay): none of it may be committed, nor sent with `COPY . .` into
/// an image build.
#[test]
fn the_runbooks_files_stay_out_of_git_and_out_of_image_builds() {
    let patterns: Vec<String> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect();
    assert!(
        patterns.iter().all(|pattern| !pattern.starts_with('!')),
        "no exceptions, so the list reads as it works"
    );
    let excluded = |path: &str| patterns.iter().any(|pattern| docker_ignores(pattern, path));
    let private = [
        "kubeconfig",
        "vapid-private.key",
        "agentfarm-2026-12-06.db",
        "infra/site/cluster.yaml",
        "infra/site/settings-patch.yaml",
        ".agentfarm/agentfarm.db",
        "registry-token.pem",
        ".ssh/id_ed25519",
        "target/release/agentfarm",
        "frontend/node_modules/x/index.js",
    ];
    for path in private {
        assert!(excluded(path), ".dockerignore lets {path} into the build context");
    }
    for needed in [
        "Cargo.toml",
        "Cargo.lock",
        "backend/src/main.rs",
        "infra/images/agent/managed-settings.json",
        "frontend/index.html",
    ] {
        assert!(!excluded(needed), ".dockerignore keeps {needed} out of the build");
    }

    let ignored_by_git = |path: &str| {
        std::process::Command::new("git")
            .args(["check-ignore", "-q", "--no-index", path])
            .current_dir(repo())
            .status()
            .expect("run git check-ignore")
            .success()
    };
    for path in private.iter().filter(|path| !path.starts_with(".ssh/")) {
        assert!(ignored_by_git(path), ".gitignore lets {path} be committed");
    }
    assert!(!ignored_by_git("infra/cluster.yaml"), "the template is committed");
}

const WORKFLOW: &str = ".github/workflows/images.yml";

/// `check-jsonschema`: `$AGENTFARM_CHECK_JSONSCHEMA`, else on the PATH (`.ci/run` installs it from PyPI).
fn check_jsonschema() -> std::path::PathBuf {
    std::env::var_os("AGENTFARM_CHECK_JSONSCHEMA")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                .map(|dir| dir.join("check-jsonschema"))
                .find(|path| path.is_file())
        })
        .expect(
            "check-jsonschema is needed to validate the workflow offline (pip install check-jsonschema; .ci/run \
             installs it and sets AGENTFARM_CHECK_JSONSCHEMA)",
        )
}

/// Runs the workflow step named `name` (its `run:` script) with bash and `env`; returns what it printed and
/// the files `$GITHUB_OUTPUT` and `$GITHUB_STEP_SUMMARY` it wrote.
fn run_step(workflow: &Value, name: &str, env: &[(&str, &str)]) -> (String, String, String) {
    let steps = workflow["jobs"]["image"]["steps"]
        .as_array()
        .expect("the job's steps");
    let script = steps
        .iter()
        .find(|step| step["name"] == name)
        .and_then(|step| step["run"].as_str())
        .unwrap_or_else(|| panic!("a step {name:?} with a script"));
    let dir = tempfile::tempdir().expect("temp dir");
    let (output, summary) = (dir.path().join("output"), dir.path().join("summary"));
    let ran = std::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("GITHUB_OUTPUT", &output)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567")
        .envs(env.iter().copied())
        .output()
        .expect("run bash");
    assert!(
        ran.status.success(),
        "step {name:?}: {}",
        String::from_utf8_lossy(&ran.stderr)
    );
    let read = |path: &std::path::Path| std::fs::read_to_string(path).unwrap_or_default();
    (
        String::from_utf8_lossy(&ran.stdout).into_owned(),
        read(&output),
        read(&summary),
    )
}

/// The owner's images come from `.github/workflows/images.yml`: valid against GitHub's workflow schema
/// (offline), every action pinned by commit, both images for amd64 and arm64 from their Dockerfiles into the
/// repository owner's own registry, and a summary whose lines are exactly what `infra/bootstrap.sh` reads.
#[test]
fn the_images_workflow_builds_both_images_for_both_architectures_with_pinned_actions() {
    let schema = std::process::Command::new(check_jsonschema())
        .args(["--builtin-schema", "vendor.github-workflows"])
        .arg(repo().join(WORKFLOW))
        .output()
        .expect("run check-jsonschema");
    assert!(
        schema.status.success(),
        "{WORKFLOW} against GitHub's workflow schema:\n{}{}",
        String::from_utf8_lossy(&schema.stdout),
        String::from_utf8_lossy(&schema.stderr)
    );

    let text = read(WORKFLOW);
    for line in text
        .lines()
        .filter(|line| line.trim_start().starts_with("uses:") || line.contains(" uses: "))
    {
        let reference = line.split("uses:").nth(1).unwrap_or_default().trim();
        let (action, rest) = reference
            .split_once('@')
            .unwrap_or_else(|| panic!("unpinned: {line}"));
        let (commit, comment) = rest.split_once(" # ").unwrap_or((rest, ""));
        assert!(
            commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit()),
            "{action} is not pinned by commit: {line}"
        );
        assert!(
            comment.starts_with('v'),
            "{action}: the pin names its release in a comment: {line}"
        );
    }

    let workflow: Value = serde_norway::from_str(&text).expect("YAML");
    assert_eq!(
        workflow["permissions"],
        serde_json::json!({"contents": "read"}),
        "read-only by default"
    );
    let job = &workflow["jobs"]["image"];
    assert_eq!(
        job["permissions"]["packages"], "write",
        "the job may push this repository's packages"
    );
    let images: Vec<&str> = job["strategy"]["matrix"]["image"]
        .as_array()
        .expect("a matrix of images")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for image in ["agent", "control-plane"] {
        assert!(images.contains(&image), "{image} in {images:?}");
        assert!(repo().join(format!("infra/images/{image}/Dockerfile")).is_file());
    }
    let build = job["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|step| step["id"] == "build"))
        .expect("the build step");
    assert_eq!(
        build["with"]["file"],
        "infra/images/${{ matrix.image }}/Dockerfile"
    );
    assert_eq!(build["with"]["push"], true);
    let default_platforms = workflow["on"]["workflow_dispatch"]["inputs"]["platforms"]["default"]
        .as_str()
        .expect("the platforms input");
    assert_eq!(default_platforms, "linux/amd64,linux/arm64");

    // The repository is the owner's, lowercased as registries require; tags name the commit (and the tag).
    let (_, outputs, _) = run_step(
        &workflow,
        "Name and tags",
        &[
            ("IMAGE", "agent"),
            ("OWNER", "Octo-Org"),
            ("REF_TYPE", "tag"),
            ("REF_NAME", "v0.2.0"),
            ("PLATFORMS", "linux/amd64,linux/arm64"),
        ],
    );
    assert!(
        outputs.contains("repository=ghcr.io/octo-org/agentfarm-agent\n"),
        "{outputs}"
    );
    assert!(
        outputs.contains(
            "tags=ghcr.io/octo-org/agentfarm-agent:sha-0123456789ab,ghcr.io/octo-org/agentfarm-agent:v0.2.0\n"
        ),
        "{outputs}"
    );

    // The summary's lines are bootstrap's inputs, pinned by digest.
    let bootstrap = read("infra/bootstrap.sh");
    let digest = format!("sha256:{}", "ab".repeat(32));
    for (image, variable) in [
        ("control-plane", "AGENTFARM_CONTROL_PLANE_IMAGE"),
        ("agent", "AGENTFARM_AGENT_IMAGE"),
    ] {
        let repository = format!("ghcr.io/octo-org/agentfarm-{image}");
        let (printed, _, summary) = run_step(
            &workflow,
            "Digest for infra/bootstrap.sh",
            &[("IMAGE", image), ("REPOSITORY", &repository), ("DIGEST", &digest)],
        );
        let line = format!("export {variable}={repository}@{digest}");
        assert_eq!(printed.trim(), line);
        assert!(summary.contains(&line), "{summary}");
        assert!(
            bootstrap.contains(&format!("=${{{variable}:-}}")),
            "bootstrap reads {variable}"
        );
    }
}
