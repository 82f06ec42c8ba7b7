//! One agent's OCI bundle: a root that holds only the host's program directories (`/usr`, `/etc` and the
//! merged-usr links), read-only, with the agent's work dir and home as its only writable mounts, the runner
//! and Claude Code bound in read-only, its own network namespace and its config's CPU and memory limits.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::runtime::RuntimeError;

/// The user agents run as inside the sandbox: not root, so the host files bound in read-only are readable
/// only where they are readable to everyone (never `/etc/shadow` or a 0600 token file).
pub const AGENT_UID: u32 = 10001;

/// Where the agent finds its work dir, home, runner, Claude Code and spec inside the sandbox.
pub const WORK: &str = "/work";
/// The agent's home.
pub const HOME: &str = "/home/agent";
/// The runner.
pub const RUNNER: &str = "/agentfarm/runner";
/// Claude Code.
pub const CLAUDE: &str = "/agentfarm/claude";
/// The runner's spec.
pub const SPEC: &str = "/agentfarm/spec.json";

/// The PATH inside: the host's program directories, whatever the server's PATH holds.
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One agent, as the local runtime describes it.
#[derive(Debug)]
pub struct Agent {
    /// The directory its bundle is written to (created here).
    pub bundle_dir: PathBuf,
    /// Its work dir on the host.
    pub work: PathBuf,
    /// Its home on the host.
    pub home: PathBuf,
    /// The runner program on the host.
    pub runner: PathBuf,
    /// Claude Code on the host (a single executable).
    pub claude: PathBuf,
    /// The runner's spec on the host.
    pub spec: PathBuf,
    /// `KEY=VALUE` for the runner.
    pub env: Vec<String>,
    /// CPU limit in millicores.
    pub cpu_millis: u64,
    /// Memory limit in bytes.
    pub memory_bytes: u64,
}

/// An agent's bundle: the agent, and where the sandbox puts it.
#[derive(Debug)]
pub struct Bundle<'a> {
    /// The agent.
    pub agent: &'a Agent,
    /// The network namespace to join.
    pub namespace: &'a Path,
    /// The resolvers for `/etc/resolv.conf`.
    pub nameservers: &'a [Ipv4Addr],
    /// The cgroup path, e.g. `/agentfarm-<run id>`.
    pub cgroup: String,
}

/// The host's top-level program directories besides `/usr` and `/etc`: links into `/usr` on a merged-usr
/// system, directories of their own on an older one.
const TOP_LEVEL: [&str; 6] = ["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

impl Bundle<'_> {
    /// Writes the root skeleton and `config.json` (readable by the server's user only: it holds the run's
    /// capability); returns the bundle directory.
    pub async fn write(&self) -> Result<PathBuf, RuntimeError> {
        let failed = |what: &Path, err: std::io::Error| {
            RuntimeError::Failed(format!("cannot prepare the sandbox at {}: {err}", what.display()))
        };
        let dir = &self.agent.bundle_dir;
        let rootfs = dir.join("rootfs");
        let mut binds = vec![
            bind("/usr", "/usr", false),
            bind("/etc", "/etc", false),
            bind(dir.join("resolv.conf"), "/etc/resolv.conf", false),
        ];
        for dir in [
            "usr",
            "etc",
            "proc",
            "dev",
            "sys",
            "tmp",
            "work",
            "home/agent",
            "agentfarm",
        ] {
            let path = rootfs.join(dir);
            std::fs::create_dir_all(&path).map_err(|err| failed(&path, err))?;
        }
        for name in TOP_LEVEL {
            let host = Path::new("/").join(name);
            let inside = rootfs.join(name);
            match std::fs::read_link(&host) {
                Ok(target) if !inside.exists() => {
                    std::os::unix::fs::symlink(&target, &inside).map_err(|err| failed(&inside, err))?;
                }
                Ok(_) => {}
                Err(_) if host.is_dir() => {
                    std::fs::create_dir_all(&inside).map_err(|err| failed(&inside, err))?;
                    binds.push(bind(&host, &format!("/{name}"), false));
                }
                Err(_) => {}
            }
        }
        for file in [RUNNER, CLAUDE, SPEC] {
            let path = rootfs.join(file.trim_start_matches('/'));
            std::fs::write(&path, b"").map_err(|err| failed(&path, err))?;
        }
        let resolv = dir.join("resolv.conf");
        let servers: String = self
            .nameservers
            .iter()
            .map(|server| format!("nameserver {server}\n"))
            .collect();
        std::fs::write(&resolv, servers).map_err(|err| failed(&resolv, err))?;
        binds.extend([
            bind(&self.agent.work, WORK, true),
            bind(&self.agent.home, HOME, true),
            bind(&self.agent.runner, RUNNER, false),
            bind(&self.agent.claude, CLAUDE, false),
            bind(&self.agent.spec, SPEC, false),
        ]);
        crate::runtime::local::write_private(&dir.join("config.json"), &self.config(binds)).await?;
        Ok(dir.clone())
    }

    fn config(&self, binds: Vec<Value>) -> Value {
        let mut mounts = vec![
            json!({"destination": "/proc", "type": "proc", "source": "proc"}),
            json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                   "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
            json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
                   "options": ["nosuid", "noexec", "nodev", "ro"]}),
            json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                   "options": ["nosuid", "nodev", "mode=1777"]}),
        ];
        mounts.extend(binds);
        let period: u64 = 100_000;
        json!({
            "ociVersion": "1.0.2",
            "process": {
                "terminal": false,
                "user": {"uid": AGENT_UID, "gid": AGENT_UID},
                "args": [RUNNER, "--spec", SPEC],
                "env": self.agent.env,
                "cwd": WORK,
                "capabilities": {"bounding": [], "effective": [], "permitted": [], "inheritable": [], "ambient": []},
                "noNewPrivileges": true,
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 65536, "soft": 65536}],
            },
            "root": {"path": "rootfs", "readonly": true},
            "hostname": "agent",
            "mounts": mounts,
            "linux": {
                "namespaces": [
                    {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
                    {"type": "network", "path": self.namespace},
                ],
                "cgroupsPath": self.cgroup,
                "resources": {
                    "memory": {"limit": self.agent.memory_bytes},
                    "cpu": {"quota": self.agent.cpu_millis * period / 1000, "period": period},
                },
            },
        })
    }
}

fn bind(source: impl AsRef<Path>, destination: &str, writable: bool) -> Value {
    let mode = if writable { "rw" } else { "ro" };
    json!({
        "destination": destination,
        "type": "bind",
        "source": source.as_ref(),
        "options": ["rbind", mode, "nosuid", "nodev"],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_agent_gets_its_dirs_writable_and_everything_else_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let agent = Agent {
            bundle_dir: dir.path().join("bundle"),
            work: "/data/runs/r/work".into(),
            home: "/data/runs/r/home".into(),
            runner: "/usr/bin/agentfarm-runner".into(),
            claude: "/opt/claude".into(),
            spec: "/data/runs/r/spec.json".into(),
            env: vec!["HOME=/home/agent".into()],
            cpu_millis: 1500,
            memory_bytes: 1 << 30,
        };
        let bundle = Bundle {
            agent: &agent,
            namespace: Path::new("/run/netns/af0ad507-r"),
            nameservers: &[Ipv4Addr::new(185, 12, 64, 1)],
            cgroup: "/agentfarm-r".into(),
        };
        let written = bundle.write().await.unwrap();
        let config: Value =
            serde_json::from_slice(&std::fs::read(written.join("config.json")).unwrap()).unwrap();
        let writable: Vec<&str> = config["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|mount| mount["type"] == "bind")
            .filter(|mount| mount["options"].as_array().unwrap().contains(&json!("rw")))
            .map(|mount| mount["source"].as_str().unwrap())
            .collect();
        assert_eq!(writable, ["/data/runs/r/work", "/data/runs/r/home"]);
        assert_eq!(config["root"]["readonly"], true);
        assert_eq!(config["process"]["user"]["uid"], AGENT_UID);
        assert_eq!(config["linux"]["resources"]["cpu"]["quota"], 150_000);
        assert_eq!(config["linux"]["resources"]["memory"]["limit"], 1u64 << 30);
        assert_eq!(config["linux"]["namespaces"][4]["path"], "/run/netns/af0ad507-r");
        assert_eq!(
            std::fs::read_to_string(written.join("resolv.conf")).unwrap(),
            "nameserver 185.12.64.1\n"
        );
        assert!(written.join("rootfs/agentfarm/claude").is_file());
    }
}
