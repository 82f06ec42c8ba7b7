//! checkov (PyPI; `.ci/run` installs it, pinned) on every rendering of the manifests and on both
//! Dockerfiles: every check that fails has a one-line reason in `manifests/README.md` ("checkov: what stays
//! and why"), and every reason there still answers a failure.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::Value;

use crate::harness::repo;

/// The README section listing each failure that stays: `| CHECK | RESOURCE | reason |` rows.
const SECTION: &str = "## checkov: what stays and why";

/// checkov: `$AGENTFARM_CHECKOV`, else on the PATH.
fn checkov() -> PathBuf {
    std::env::var_os("AGENTFARM_CHECKOV")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                .map(|dir| dir.join("checkov"))
                .find(|path| path.is_file())
        })
        .expect("checkov is needed (pip install checkov; .ci/run installs it and sets AGENTFARM_CHECKOV)")
}

/// The failures of one checkov run over `files` in `framework`: check id → the resources it failed on.
fn failures(framework: &str, files: &[PathBuf]) -> BTreeSet<(String, String)> {
    let mut command = std::process::Command::new(checkov());
    command.args([
        "--framework",
        framework,
        "--quiet",
        "--skip-download",
        "--output",
        "json",
    ]);
    for file in files {
        command.arg("--file").arg(file);
    }
    // No telemetry, no call home (this machine reaches no such service anyway).
    command
        .env("BC_SKIP_MAPPING", "TRUE")
        .env("CHECKOV_RUN_SCA_PACKAGE_SCAN_V2", "false");
    let output = command.current_dir(repo()).output().expect("run checkov");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "checkov printed no JSON ({err}):\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let reports = match report {
        Value::Array(reports) => reports,
        report => vec![report],
    };
    let mut found = BTreeSet::new();
    for report in &reports {
        assert_eq!(
            report["summary"]["parsing_errors"], 0,
            "checkov could not parse a file: {}",
            report["summary"]
        );
        for failed in report["results"]["failed_checks"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let resource = failed["resource"].as_str().unwrap_or_default();
            // A Dockerfile's resource is its path and instruction; the path is what names it here.
            let resource = resource.strip_prefix("/").unwrap_or(resource).to_owned();
            found.insert((
                failed["check_id"].as_str().unwrap_or_default().to_owned(),
                resource,
            ));
        }
    }
    found
}

/// The rows of the README's section: (check, resource) → reason.
fn explained() -> BTreeMap<(String, String), String> {
    let readme =
        std::fs::read_to_string(repo().join("manifests/README.md")).expect("read manifests/README.md");
    let section = readme
        .split(SECTION)
        .nth(1)
        .unwrap_or_else(|| panic!("manifests/README.md has no section {SECTION:?}"));
    let section = section.split("\n## ").next().unwrap_or_default();
    section
        .lines()
        .filter(|line| line.starts_with("| CKV"))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            assert_eq!(cells.len(), 3, "a row is | CHECK | RESOURCE | reason |: {line}");
            assert!(!cells[2].is_empty(), "a reason for {line}");
            (
                (cells[0].to_owned(), cells[1].trim_matches('`').to_owned()),
                cells[2].to_owned(),
            )
        })
        .collect()
}

#[test]
fn every_checkov_failure_left_is_explained() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut manifests = Vec::new();
    for (index, rendering) in super::render::every_rendering().iter().enumerate() {
        let path = dir.path().join(format!("rendering-{index}.yaml"));
        let text: String = rendering
            .documents
            .iter()
            .map(|document| format!("---\n{}", serde_norway::to_string(document).expect("YAML")))
            .collect();
        std::fs::write(&path, text).expect("write a rendering");
        manifests.push(path);
    }
    let mut found = failures("kubernetes", &manifests);
    found.extend(failures(
        "dockerfile",
        &[
            PathBuf::from("infra/images/agent/Dockerfile"),
            PathBuf::from("infra/images/control-plane/Dockerfile"),
        ],
    ));
    let explained = explained();
    let unexplained: Vec<String> = found
        .iter()
        .filter(|failure| !explained.contains_key(*failure))
        .map(|(check, resource)| format!("| {check} | `{resource}` | … |"))
        .collect();
    assert!(
        unexplained.is_empty(),
        "checkov failures without a reason in manifests/README.md ({SECTION}):\n{}",
        unexplained.join("\n")
    );
    let stale: Vec<String> = explained
        .keys()
        .filter(|row| !found.contains(*row))
        .map(|(check, resource)| format!("{check} {resource}"))
        .collect();
    assert!(stale.is_empty(), "rows that no failure needs any more: {stale:?}");
}
