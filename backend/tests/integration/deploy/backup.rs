//! The nightly backup (`manifests/base/control-plane/backup.yaml`): a CronJob on the control plane's node
//! that mounts the control plane's own data volume and a second volume, and whose script, run here with the
//! real `agentfarm` binary, writes a sound copy of a real database and keeps the newest 14.

use std::process::Command;

use super::objects::{Object, rendering};

/// The script of the backup container, with `/data` and `/backups` moved to `data` and `backups`.
fn script(objects: &[Object], data: &std::path::Path, backups: &std::path::Path) -> String {
    let cron = objects
        .iter()
        .find(|object| object.kind() == "CronJob" && object.name() == "agentfarm-backup")
        .expect("the CronJob agentfarm-backup");
    let container = &cron.pod_spec().expect("a pod spec").containers[0];
    assert_eq!(
        container.command.as_deref(),
        Some(&["/bin/sh".to_owned(), "-c".to_owned()][..])
    );
    container.args.as_ref().expect("the script")[0]
        .replace("/data", &data.display().to_string())
        .replace("/backups", &backups.display().to_string())
}

#[test]
fn the_backup_runs_beside_the_control_plane_onto_a_second_volume() {
    let objects = rendering("overlays/hetzner");
    let cron = objects
        .iter()
        .find(|object| object.kind() == "CronJob")
        .expect("a backup CronJob");
    let pod = cron.pod_spec().expect("pod spec");
    let deployment = objects
        .iter()
        .find(|object| object.kind() == "Deployment" && object.name() == "agentfarm-control-plane")
        .expect("the control plane");
    let control_plane = deployment.pod_spec().expect("pod spec");
    let claim = |spec: &k8s_openapi::api::core::v1::PodSpec, volume: &str| {
        spec.volumes
            .iter()
            .flatten()
            .find(|candidate| candidate.name == volume)
            .and_then(|candidate| candidate.persistent_volume_claim.as_ref())
            .map(|source| source.claim_name.clone())
    };
    assert_eq!(
        claim(pod, "data"),
        claim(control_plane, "data"),
        "the control plane's database"
    );
    let backups = claim(pod, "backups").expect("a volume for the copies");
    assert_ne!(
        Some(&backups),
        claim(control_plane, "data").as_ref(),
        "a second volume"
    );
    assert!(
        objects
            .iter()
            .any(|object| object.kind() == "PersistentVolumeClaim" && object.name() == backups),
        "the PVC {backups} is part of the manifests"
    );
    // ReadWriteOnce: only a pod on the control plane's node may mount its volume.
    let term = &pod
        .affinity
        .as_ref()
        .and_then(|affinity| affinity.pod_affinity.as_ref())
        .and_then(|affinity| {
            affinity
                .required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .expect("a required podAffinity")[0];
    assert_eq!(term.topology_key, "kubernetes.io/hostname");
    let wanted = term
        .label_selector
        .as_ref()
        .and_then(|selector| selector.match_labels.clone())
        .expect("matchLabels");
    let labels = deployment
        .pod_spec()
        .and_then(|_| match deployment {
            Object::Deployment(deployment) => deployment
                .spec
                .as_ref()?
                .template
                .metadata
                .as_ref()?
                .labels
                .clone(),
            _ => None,
        })
        .expect("the control plane's pod labels");
    assert!(
        wanted.iter().all(|(key, value)| labels.get(key) == Some(value)),
        "the affinity selects the control plane's pods: {wanted:?} in {labels:?}"
    );
    let image = |spec: &k8s_openapi::api::core::v1::PodSpec| spec.containers[0].image.clone();
    assert_eq!(
        image(pod),
        image(control_plane),
        "the control plane's image, with agentfarm in it"
    );

    // The script, for real: a database with a config in it, fifteen nights.
    let dir = tempfile::tempdir().expect("temp dir");
    let (data, backups) = (dir.path().join("data"), dir.path().join("backups"));
    std::fs::create_dir_all(&backups).expect("mkdir backups");
    std::fs::create_dir_all(&data).expect("mkdir data");
    let store = agentfarm::store::Store::open(&agentfarm::store::db_path(&data)).expect("a store");
    drop(store);
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("mkdir bin");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_agentfarm"), bin.join("agentfarm"))
        .expect("link agentfarm");
    // `date` stands in for fifteen nights in a row.
    std::fs::write(
        bin.join("date"),
        format!(
            "#!/bin/sh\nn=$(cat '{0}/night' 2>/dev/null || echo 10)\necho $((n + 1)) > '{0}/night'\necho \"202612${{n}}T031700Z\"\n",
            dir.path().display()
        ),
    )
    .expect("write date");
    let mut permissions = std::fs::metadata(bin.join("date")).expect("date").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(bin.join("date"), permissions).expect("chmod date");
    let script = script(objects, &data, &backups);
    for night in 0..15 {
        let output = Command::new("/bin/sh")
            .args(["-c", &script])
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .output()
            .expect("run the backup script");
        let printed = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "night {night}:\n{printed}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(printed.contains("integrity_check: ok"), "{printed}");
    }
    let mut kept: Vec<String> = std::fs::read_dir(&backups)
        .expect("read backups")
        .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    kept.sort();
    assert_eq!(kept.len(), 14, "the newest 14: {kept:?}");
    assert_eq!(
        kept[0], "agentfarm-20261211T031700Z.db",
        "the oldest went: {kept:?}"
    );
    assert_eq!(kept[13], "agentfarm-20261224T031700Z.db");
    let copy = agentfarm::store::Store::open(&backups.join(&kept[13])).expect("the newest copy opens");
    drop(copy);
}
