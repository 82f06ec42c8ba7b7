//! Renders the kustomizations: `kubectl kustomize` when its kustomize is v4 or newer, else the kustomize
//! binary `AGENTFARM_KUSTOMIZE` names (Debian's kubectl is 1.20, whose kustomize predates components;
//! `.ci/run` installs one).

use std::path::{Component, Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value;

use crate::harness::{repo, repo_files};

/// One rendered kustomization.
pub struct Rendering {
    /// What was rendered, e.g. `overlays/hetzner` or `base + components/shared-claude-home`.
    pub name: String,
    /// Its documents, in order.
    pub documents: Vec<Value>,
}

/// Every overlay, and the base with each component.
pub fn every_rendering() -> &'static [Rendering] {
    static RENDERINGS: OnceLock<Vec<Rendering>> = OnceLock::new();
    RENDERINGS.get_or_init(|| {
        let manifests = repo().join("manifests");
        let mut renderings: Vec<Rendering> = subdirectories(&manifests.join("overlays"))
            .into_iter()
            .map(|overlay| Rendering {
                name: format!("overlays/{}", file_name(&overlay)),
                documents: render(&overlay),
            })
            .collect();
        for component in subdirectories(&manifests.join("components")) {
            renderings.push(Rendering {
                name: format!("base + components/{}", file_name(&component)),
                documents: render_composed(&manifests.join("base"), &component),
            });
        }
        assert!(
            renderings.len() >= 3,
            "expected overlays and components under manifests/"
        );
        renderings
    })
}

/// The renderer as a command line to which a directory is appended: an absolute program and its subcommand.
pub fn renderer_command() -> (PathBuf, &'static str) {
    match renderer() {
        Renderer::Kubectl => {
            let kubectl = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                .map(|dir| dir.join("kubectl"))
                .find(|path| path.is_file())
                .expect("kubectl on PATH");
            (kubectl, "kustomize")
        }
        Renderer::Kustomize(binary) => (binary.clone(), "build"),
    }
}

/// Renders the kustomization in `dir`.
pub fn render(dir: &Path) -> Vec<Value> {
    let (program, subcommand) = renderer_command();
    let output = Command::new(program)
        .arg(subcommand)
        .arg(dir)
        .output()
        .expect("run kustomize");
    assert!(
        output.status.success(),
        "rendering {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    yaml_documents(&String::from_utf8_lossy(&output.stdout))
}

/// Renders `base` with `component` through a kustomization in a temporary directory (kustomize takes only
/// relative paths).
fn render_composed(base: &Path, component: &Path) -> Vec<Value> {
    let dir = tempfile::tempdir().expect("temp dir");
    let kustomization = format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - {}\ncomponents:\n  - {}\n",
        relative(dir.path(), base),
        relative(dir.path(), component)
    );
    std::fs::write(dir.path().join("kustomization.yaml"), kustomization).expect("write kustomization");
    render(dir.path())
}

/// `to` relative to `from` (both made absolute).
fn relative(from: &Path, to: &Path) -> String {
    let from = from.canonicalize().expect("canonical path");
    let to = to.canonicalize().expect("canonical path");
    let ups = from
        .components()
        .filter(|part| matches!(part, Component::Normal(_)))
        .count();
    let down: Vec<String> = to
        .components()
        .filter_map(|part| match part {
            Component::Normal(name) => Some(name.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    let mut parts = vec!["..".to_owned(); ups];
    parts.extend(down);
    parts.join("/")
}

/// Every non-empty document of a YAML stream, as JSON values.
pub fn yaml_documents(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|document| Value::deserialize(document).expect("valid YAML"))
        .filter(|document| !document.is_null())
        .collect()
}

/// The YAML files tracked by git (or about to be: untracked but not ignored) under `dir`.
pub fn yaml_files(dir: &str) -> Vec<PathBuf> {
    repo_files(dir)
        .into_iter()
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "yaml" || extension == "yml")
        })
        .collect()
}

enum Renderer {
    Kubectl,
    Kustomize(PathBuf),
}

/// The renderer, found once.
fn renderer() -> &'static Renderer {
    static RENDERER: OnceLock<Renderer> = OnceLock::new();
    RENDERER.get_or_init(|| {
        let kubectl_kustomize_major = Command::new("kubectl")
            .args(["version", "--client", "-o", "json"])
            .output()
            .ok()
            .filter(|output| output.status.success())
            .and_then(|output| serde_json::from_slice::<Value>(&output.stdout).ok())
            .and_then(|version| {
                let text = version["kustomizeVersion"]
                    .as_str()?
                    .trim_start_matches('v')
                    .to_owned();
                text.split('.').next()?.parse::<u32>().ok()
            });
        if kubectl_kustomize_major.is_some_and(|major| major >= 4) {
            return Renderer::Kubectl;
        }
        let kustomize = std::env::var_os("AGENTFARM_KUSTOMIZE")
            .map(PathBuf::from)
            .expect("no kubectl with kustomize v4 or newer: install one, or set AGENTFARM_KUSTOMIZE to a kustomize binary (.ci/run does)");
        Renderer::Kustomize(kustomize)
    })
}

/// Directories directly under `dir`, sorted.
fn subdirectories(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("read {}: {err}", dir.display()))
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .expect("a named directory")
        .to_string_lossy()
        .into_owned()
}
