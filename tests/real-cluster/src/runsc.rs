//! Debian's gVisor (`runsc`, 2022) as the binary of containerd's runc shim, for RuntimeClass `gvisor`.
//!
//! Debian ships no `containerd-shim-runsc-v1`, so the runc v2 shim runs `runsc` in runc's place, and runc's
//! shim understands one container per runtime instance: it waits for the pid in `--pid-file`, which for a
//! container that joins a pod's sandbox is the whole sandbox's, and it hands that container's stdio to
//! `create`, which runsc reads only at `start`. So this wrapper gives each container a gVisor sandbox of its
//! own (it rewrites the CRI annotations that would join it to the pod's), in the pod's network namespace
//! with host networking there (gVisor's own netstack refuses to start in this VM: the 2022 runsc takes any
//! namespace for the root one on kernels that expose `/proc/sys/net/core/rmem_default` everywhere). Agent
//! pods have one container, so each agent still runs in its own gVisor kernel.
//!
//! It also translates one message: the shim knows a container is already gone by runc's words "container not
//! running"; runsc says "sandbox is not running", and without the translation the CRI never finishes
//! handling a container's exit.

use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::layout::RUNSC_PLATFORM;

/// The wrapper's file name: `agentfarm-cluster` acts as the wrapper when called by this name.
pub const WRAPPER: &str = "runsc-wrapper";

/// Debian's runsc.
const RUNSC: &str = "/usr/bin/runsc";

/// Runs runsc for the shim with `args` (the shim's arguments); returns the exit code when it does not exec.
pub fn wrap(args: &[String]) -> i32 {
    if let Some(bundle) = bundle(args) {
        let config = std::path::Path::new(&bundle).join("config.json");
        if let Err(err) = own_sandbox(&config) {
            eprintln!("{WRAPPER}: {}: {err}", config.display());
            return 1;
        }
    }
    let mut command = Command::new(RUNSC);
    command
        .arg("--network=host")
        .arg(format!("--platform={RUNSC_PLATFORM}"))
        .args(args);
    if subcommand(args) != Some("kill") {
        let err = command.exec();
        eprintln!("{WRAPPER}: cannot run {RUNSC}: {err}");
        return 1;
    }
    match command.output() {
        Ok(output) if output.status.success() => 0,
        Ok(output) => {
            let said = String::from_utf8_lossy(&output.stderr);
            if said.contains("is not running") || said.contains("not found") {
                eprintln!("container not running ({})", said.trim());
            } else {
                eprint!("{said}");
            }
            output.status.code().unwrap_or(1)
        }
        Err(err) => {
            eprintln!("{WRAPPER}: cannot run {RUNSC}: {err}");
            1
        }
    }
}

/// The value of `--bundle`, `-bundle` or `-b`, in either form.
fn bundle(args: &[String]) -> Option<String> {
    let mut previous: Option<&str> = None;
    for arg in args {
        if matches!(previous, Some("--bundle" | "-bundle" | "-b")) {
            return Some(arg.clone());
        }
        if let Some(value) = arg
            .strip_prefix("--bundle=")
            .or_else(|| arg.strip_prefix("-bundle="))
        {
            return Some(value.to_owned());
        }
        previous = Some(arg);
    }
    None
}

/// The runsc command: the first word that is neither a flag nor a global flag's value.
fn subcommand(args: &[String]) -> Option<&str> {
    let mut skip_value = false;
    for arg in args {
        if skip_value {
            skip_value = false;
            continue;
        }
        if arg.starts_with('-') {
            skip_value =
                !arg.contains('=') && matches!(arg.as_str(), "--root" | "--log" | "--log-format" | "--criu");
            continue;
        }
        return Some(arg);
    }
    None
}

/// Makes the container a sandbox of its own in its OCI config.
fn own_sandbox(config: &std::path::Path) -> Result<(), std::io::Error> {
    let Ok(text) = std::fs::read(config) else {
        return Ok(());
    };
    let mut spec: serde_json::Value = serde_json::from_slice(&text)?;
    if let Some(annotations) = spec
        .get_mut("annotations")
        .and_then(serde_json::Value::as_object_mut)
    {
        annotations.insert("io.kubernetes.cri.container-type".to_owned(), "sandbox".into());
        annotations.remove("io.kubernetes.cri.sandbox-id");
    }
    let rewritten = config.with_extension("json.runsc");
    std::fs::write(&rewritten, serde_json::to_vec(&spec)?)?;
    std::fs::rename(rewritten, config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|arg| (*arg).to_owned()).collect()
    }

    #[test]
    fn the_shims_arguments_are_read_as_runsc_reads_them() {
        let create = strings(&[
            "--root",
            "/state/runsc",
            "--log",
            "/x/log.json",
            "create",
            "--bundle",
            "/b/1",
            "id",
        ]);
        assert_eq!(subcommand(&create), Some("create"));
        assert_eq!(bundle(&create).as_deref(), Some("/b/1"));
        let kill = strings(&["--root=/state/runsc", "kill", "--all", "id", "9"]);
        assert_eq!(subcommand(&kill), Some("kill"));
        assert_eq!(bundle(&kill), None);
        assert_eq!(
            bundle(&strings(&["create", "-bundle=/b/2"])).as_deref(),
            Some("/b/2")
        );
    }

    #[test]
    fn a_container_that_would_join_a_sandbox_gets_its_own() {
        let dir = std::env::temp_dir().join(format!("runsc-wrapper-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("config.json");
        std::fs::write(
            &config,
            r#"{"annotations":{"io.kubernetes.cri.container-type":"container","io.kubernetes.cri.sandbox-id":"abc","other":"kept"}}"#,
        )
        .unwrap();
        own_sandbox(&config).unwrap();
        let spec: serde_json::Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
        assert_eq!(spec["annotations"]["io.kubernetes.cri.container-type"], "sandbox");
        assert!(spec["annotations"].get("io.kubernetes.cri.sandbox-id").is_none());
        assert_eq!(spec["annotations"]["other"], "kept");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
