//! `agentfarm doctor --sandbox gvisor`: checks what the local runtime's gVisor sandbox needs on this machine
//! (root, runsc that starts a sandbox, `ip` and `nft`, IP forwarding) and says how to fix what is missing.

use std::path::Path;
use std::time::Duration;

use agentfarm_shared::api::{Check, CheckStatus, DoctorReport};
use tokio::process::Command;

use super::check;

/// How long one probe (a command) may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// The single-VPS recipe.
const RECIPE: &str = "infra/README.md (One VPS, no Kubernetes)";

/// Runs every check for a sandbox run by `runsc`. Never fails: problems are rows.
pub async fn run(runsc: &Path) -> DoctorReport {
    let mut checks = vec![privileges()];
    checks.push(
        probe(
            "runsc",
            Command::new(runsc).arg("--version"),
            None,
            &format!("install gVisor's runsc (apt install runsc, or gVisor's own release: see {RECIPE})"),
        )
        .await,
    );
    checks.push(sandbox_starts(runsc).await);
    checks.push(
        probe(
            "ip (iproute2)",
            Command::new("ip").args(["-brief", "link", "show", "lo"]),
            Some("works: it makes the agents' bridge, namespaces and veth pairs"),
            "apt install iproute2",
        )
        .await,
    );
    checks.push(
        probe(
            "nftables",
            Command::new("nft").args(["list", "tables"]),
            Some("works: it holds the agents' egress rules"),
            "apt install nftables (the kernel needs nf_tables, as every current distribution's has)",
        )
        .await,
    );
    let forwarding = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap_or_default();
    checks.push(forwarding_check(&forwarding));
    DoctorReport { checks }
}

fn privileges() -> Check {
    if nix::unistd::geteuid().is_root() {
        check("Privileges", CheckStatus::Pass, "running as root", None)
    } else {
        check(
            "Privileges",
            CheckStatus::Fail,
            "not root: runsc, network namespaces and nftables need root",
            Some(format!(
                "run the server as root, as the systemd unit in {RECIPE} does"
            )),
        )
    }
}

/// Whether runsc starts a sandbox here: `uname -r` inside says gVisor's kernel.
async fn sandbox_starts(runsc: &Path) -> Check {
    let state = std::env::temp_dir().join(format!("agentfarm-doctor-{}", std::process::id()));
    let mut command = Command::new(runsc);
    command
        .arg("--root")
        .arg(&state)
        .args(["--network=none", "do", "uname", "-r"]);
    let fix = format!(
        "runsc is there but cannot start a sandbox: its error says why (a platform this machine lacks, \
         cgroups); see {RECIPE}"
    );
    let mut result = probe("gVisor sandbox", &mut command, None, &fix).await;
    // runsc made it for this one sandbox, which has ended.
    let _ = std::fs::remove_dir_all(&state);
    if result.status == CheckStatus::Pass {
        result.detail = format!("a sandbox started; its kernel says {}", result.detail);
    }
    result
}

/// Runs `command`; passes with `detail`, or else the first line it printed.
async fn probe(name: &str, command: &mut Command, detail: Option<&str>, fix: &str) -> Check {
    command.kill_on_drop(true);
    let failed = |detail: String| check(name, CheckStatus::Fail, detail, Some(fix.to_owned()));
    match tokio::time::timeout(PROBE_TIMEOUT, command.output()).await {
        Err(_) => failed(format!("no answer within {PROBE_TIMEOUT:?}")),
        Ok(Err(err)) => failed(format!("cannot run it: {err}")),
        Ok(Ok(output)) if !output.status.success() => failed(format!(
            "{}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )),
        Ok(Ok(output)) => {
            let said = String::from_utf8_lossy(&output.stdout);
            let first = said.lines().next().unwrap_or("ok").trim();
            check(name, CheckStatus::Pass, detail.unwrap_or(first), None)
        }
    }
}

/// `value`: the content of `/proc/sys/net/ipv4/ip_forward`.
fn forwarding_check(value: &str) -> Check {
    if value.trim() == "1" {
        check(
            "IP forwarding",
            CheckStatus::Pass,
            "on: agents reach the internet through NAT",
            None,
        )
    } else {
        check(
            "IP forwarding",
            CheckStatus::Fail,
            "off: agents reach the proxies on this machine, but nothing beyond it",
            Some("echo net.ipv4.ip_forward=1 > /etc/sysctl.d/90-agentfarm.conf && sysctl --system".into()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarding_must_be_on() {
        assert_eq!(forwarding_check("1\n").status, CheckStatus::Pass);
        let off = forwarding_check("0\n");
        assert_eq!(off.status, CheckStatus::Fail);
        assert!(off.fix.unwrap().contains("ip_forward=1"));
    }

    #[tokio::test]
    async fn a_missing_runsc_fails_with_its_fix() {
        let report = run(Path::new("/nonexistent/runsc")).await;
        let runsc = report.checks.iter().find(|check| check.name == "runsc").unwrap();
        assert_eq!(runsc.status, CheckStatus::Fail);
        assert!(runsc.fix.as_deref().unwrap().contains("apt install runsc"));
        assert!(report.failed());
    }
}
