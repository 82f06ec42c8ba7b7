//! The single-VPS kit (`infra/vps/`): the systemd unit starts the server sandboxed, on loopback behind
//! `tailscale serve`, with the tokens in files, as the server's own command line parses it with the example
//! site settings; the nightly backup unit's command makes a sound copy with the real binary.

use std::collections::BTreeMap;
use std::path::Path;

use agentfarm::settings::SandboxChoice;

use super::settings::settings_from;

fn kit(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../infra/vps")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// The value of `key` in a unit file, continuation lines joined.
fn unit_value(unit: &str, key: &str) -> String {
    let joined = unit.replace("\\\n", " ");
    let prefix = format!("{key}=");
    joined
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {key}= in the unit"))
        .to_owned()
}

#[test]
fn the_unit_starts_the_server_sandboxed_on_loopback_with_the_tokens_in_files() {
    let unit = kit("agentfarm.service");
    let exec = unit_value(&unit, "ExecStart");
    let mut words = exec.split_whitespace().map(str::to_owned);
    assert_eq!(words.next().as_deref(), Some("/usr/local/bin/agentfarm"));
    let environment: BTreeMap<String, String> = kit("agentfarm.env.example")
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (key, value) = line.split_once('=').unwrap();
            (key.to_owned(), value.to_owned())
        })
        .collect();
    assert_eq!(
        unit_value(&unit, "EnvironmentFile"),
        "/etc/agentfarm/agentfarm.env"
    );
    let settings = settings_from("agentfarm.service", words.collect(), &environment);
    assert_eq!(settings.sandbox.kind, SandboxChoice::Gvisor);
    assert!(
        settings.listen.ip().is_loopback(),
        "only tailscale serve reaches it"
    );
    assert!(settings.claude_token_file.is_some() && settings.github_token_file.is_some());
    assert!(!settings.direct_credentials);
    assert_eq!(settings.allowed_logins, ["you@example.com"]);
    assert!(settings.public_url.is_some() && settings.push.push_contact.is_some());
    assert_eq!(
        unit_value(&unit, "KillMode"),
        "mixed",
        "the server removes its sandboxes itself"
    );
}

#[test]
fn the_nightly_backup_makes_a_sound_copy() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    drop(agentfarm::store::Store::open(&agentfarm::store::db_path(&data)).unwrap());
    let backups = dir.path().join("backups");
    let service = kit("agentfarm-backup.service");
    let exec = unit_value(&service, "ExecStart")
        .replace("/usr/local/bin/agentfarm", env!("CARGO_BIN_EXE_agentfarm"))
        .replace("/var/lib/agentfarm", &data.display().to_string())
        .replace("/var/backups/agentfarm", &backups.display().to_string())
        // systemd's escape for a literal %.
        .replace("%%", "%");
    let script = exec
        .strip_prefix("/bin/sh -c '")
        .and_then(|rest| rest.strip_suffix('\''))
        .expect("the backup runs one shell command");
    for night in 0..2 {
        let output = std::process::Command::new("/bin/sh")
            .args(["-c", script])
            .output()
            .unwrap();
        assert!(output.status.success(), "night {night}: {output:?}");
    }
    let copies: Vec<_> = std::fs::read_dir(&backups).unwrap().flatten().collect();
    assert_eq!(copies.len(), 1, "one copy per weekday, replaced a week later");
    let copy = rusqlite::Connection::open(copies[0].path()).unwrap();
    let integrity: String = copy
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let timer = kit("agentfarm-backup.timer");
    assert!(unit_value(&timer, "OnCalendar").contains("03:17"));
}
