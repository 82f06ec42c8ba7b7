//! One-layer OCI image archives written by hand (no registry, no builder): the pod sandbox's pause image and a
//! busybox image, both from Debian's `busybox-static`. An archive holds the layout `ctr images import` reads:
//! `oci-layout`, `index.json` naming the image, and the blobs (the layer, the config, the manifest).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::Error;
use crate::layout::{BUSYBOX_IMAGE, PAUSE_IMAGE};
use crate::process::run;

/// Debian's statically linked busybox.
const BUSYBOX: &str = "/bin/busybox";

/// The pause container: waits until told to stop. As PID 1 a process gets no signal it has no handler for,
/// so the shell installs one for SIGTERM and SIGINT.
const PAUSE_COMMAND: &str = "trap 'exit 0' TERM INT; while :; do /bin/busybox sleep 3600 & wait $!; done";

/// Writes the pause and busybox archives into `dir`; their paths.
pub fn write_images(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    if !Path::new(BUSYBOX).is_file() {
        return Err(Error::Missing(
            "busybox-static (Debian: apt-get install busybox-static)".to_owned(),
        ));
    }
    let rootfs = dir.join("busybox-rootfs");
    let bin = rootfs.join("bin");
    std::fs::create_dir_all(&bin)?;
    std::fs::copy(BUSYBOX, bin.join("busybox"))?;
    // Every applet as a link, so that `sh`, `nc`, `wget`, `uname` … are commands.
    let applets = crate::process::output(BUSYBOX, &["--list"])?;
    for applet in applets
        .lines()
        .filter(|applet| !applet.is_empty() && *applet != "busybox")
    {
        std::os::unix::fs::symlink("busybox", bin.join(applet))?;
    }
    std::fs::create_dir_all(rootfs.join("tmp"))?;
    let pause = dir.join("pause.tar");
    write_archive(
        &rootfs,
        PAUSE_IMAGE,
        &serde_json::json!(["/bin/busybox", "sh", "-c", PAUSE_COMMAND]),
        &pause,
    )?;
    let busybox = dir.join("busybox.tar");
    write_archive(&rootfs, BUSYBOX_IMAGE, &serde_json::json!(["sh"]), &busybox)?;
    Ok(vec![pause, busybox])
}

/// Writes `out`: an OCI archive of image `name` with `rootfs` as its one layer and `command` as its command.
fn write_archive(rootfs: &Path, name: &str, command: &serde_json::Value, out: &Path) -> Result<(), Error> {
    let work = out.with_extension("layout");
    let blobs = work.join("blobs/sha256");
    std::fs::create_dir_all(&blobs)?;
    let layer = work.join("layer.tar");
    run(
        "tar",
        &[
            "--sort=name",
            "--mtime=@0",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "-C",
            &rootfs.display().to_string(),
            "-cf",
            &layer.display().to_string(),
            ".",
        ],
    )?;
    let (layer_digest, layer_size) = blob(&blobs, &std::fs::read(&layer)?)?;
    std::fs::remove_file(&layer)?;
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Cmd": command,
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        },
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{layer_digest}")]},
    });
    let (config_digest, config_size) = blob(&blobs, &serde_json::to_vec(&config)?)?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": format!("sha256:{config_digest}"),
            "size": config_size,
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": format!("sha256:{layer_digest}"),
            "size": layer_size,
        }],
    });
    let (manifest_digest, manifest_size) = blob(&blobs, &serde_json::to_vec(&manifest)?)?;
    let tag = name.rsplit_once(':').map_or("latest", |(_, tag)| tag);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{manifest_digest}"),
            "size": manifest_size,
            "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": tag},
        }],
    });
    std::fs::write(work.join("index.json"), serde_json::to_vec(&index)?)?;
    std::fs::write(work.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    run(
        "tar",
        &[
            "-C",
            &work.display().to_string(),
            "-cf",
            &out.display().to_string(),
            "oci-layout",
            "index.json",
            "blobs",
        ],
    )?;
    std::fs::remove_dir_all(&work)?;
    Ok(())
}

/// Stores `bytes` under their digest in `blobs`; the digest (hex) and the size.
fn blob(blobs: &Path, bytes: &[u8]) -> Result<(String, usize), Error> {
    let digest: String = Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    std::fs::write(blobs.join(&digest), bytes)?;
    Ok((digest, bytes.len()))
}
