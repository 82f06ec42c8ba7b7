//! The agent image reference: `REPOSITORY[:TAG][@sha256:DIGEST]`, as `--agent-image` takes it, and the image a
//! config's agent runs.

use std::fmt;

/// The registry the defaults name. `.invalid` never resolves (RFC 2606), so a server nobody pointed at an
/// image of its own fails to pull with this name in the reason instead of running an image someone else
/// publishes.
pub const PLACEHOLDER_REGISTRY: &str = "agentfarm.invalid";

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl ImageRef {
    /// Parses `REPOSITORY[:TAG][@sha256:DIGEST]` (a registry host may carry a port: `host:5000/name`).
    pub fn parse(text: &str) -> Result<ImageRef, String> {
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => {
                let hex = digest.strip_prefix("sha256:").unwrap_or_default();
                if hex.len() != 64
                    || !hex
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                {
                    return Err(format!(
                        "{text:?}: a digest is sha256: and 64 lowercase hex digits"
                    ));
                }
                (rest, Some(digest.to_owned()))
            }
            None => (text, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |at| at + 1);
        let (repository, tag) = match rest[last_slash..].rfind(':') {
            Some(at) => (&rest[..last_slash + at], Some(&rest[last_slash + at + 1..])),
            None => (rest, None),
        };
        let repository_ok = !repository.is_empty()
            && repository.split('/').all(|part| !part.is_empty())
            && repository
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/:".contains(&b));
        if !repository_ok {
            return Err(format!(
                "{text:?} is not an image reference like registry.example/name[:tag][@sha256:…]"
            ));
        }
        if let Some(tag) = tag {
            agentfarm_shared::validate::image_tag(tag).map_err(|err| format!("{text:?}: {err}"))?;
        }
        Ok(ImageRef {
            repository: repository.to_owned(),
            tag: tag.map(str::to_owned),
            digest,
        })
    }

    /// The image an agent runs: a config's own tag replaces the configured tag and digest (that agent's
    /// image is then not pinned); otherwise the reference as configured, with `default_tag` when it names
    /// neither tag nor digest.
    pub fn for_agent(&self, config_tag: Option<&str>, default_tag: &str) -> String {
        match (config_tag, &self.tag, &self.digest) {
            (Some(tag), _, _) => format!("{}:{tag}", self.repository),
            (None, _, Some(_)) | (None, Some(_), None) => self.to_string(),
            (None, None, None) => format!("{}:{default_tag}", self.repository),
        }
    }

    /// The repository, without tag or digest.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// Whether the reference names a digest, so the registry cannot change what runs under it.
    pub fn is_pinned(&self) -> bool {
        self.digest.is_some()
    }

    /// Whether it is the default placeholder, in no real registry.
    pub fn is_placeholder(&self) -> bool {
        self.repository.starts_with(&format!("{PLACEHOLDER_REGISTRY}/"))
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn references_parse_into_their_parts() {
        for text in [
            "ghcr.io/owner/agentfarm-agent",
            "ghcr.io/owner/agentfarm-agent:0.1.0",
            &format!("ghcr.io/owner/agentfarm-agent@{DIGEST}"),
            &format!("ghcr.io/owner/agentfarm-agent:0.1.0@{DIGEST}"),
            "registry.local:5000/agentfarm-agent:dev",
            "agentfarm-agent",
        ] {
            let image = ImageRef::parse(text).unwrap_or_else(|err| panic!("{text}: {err}"));
            assert_eq!(image.to_string(), text, "round trip");
        }
        let with_port = ImageRef::parse("registry.local:5000/agent").unwrap();
        assert_eq!(with_port.tag, None, "a port is not a tag");
        for bad in [
            "",
            "Ghcr.io/owner/agent",
            "ghcr.io//agent",
            "ghcr.io/owner/agent:",
            "ghcr.io/owner/agent@sha256:abc",
            &format!("ghcr.io/owner/agent@md5:{}", &DIGEST[7..]),
            "ghcr.io/owner/agent name",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn an_agent_runs_the_configured_reference_unless_its_config_names_a_tag() {
        let pinned = ImageRef::parse(&format!("ghcr.io/owner/agent:0.1.0@{DIGEST}")).unwrap();
        assert!(pinned.is_pinned());
        assert_eq!(pinned.for_agent(None, "9.9.9"), pinned.to_string());
        assert_eq!(
            pinned.for_agent(Some("canary"), "9.9.9"),
            "ghcr.io/owner/agent:canary"
        );
        let bare = ImageRef::parse("ghcr.io/owner/agent").unwrap();
        assert!(!bare.is_pinned());
        assert_eq!(bare.for_agent(None, "0.1.0"), "ghcr.io/owner/agent:0.1.0");
        let tagged = ImageRef::parse("ghcr.io/owner/agent:edge").unwrap();
        assert_eq!(tagged.for_agent(None, "0.1.0"), "ghcr.io/owner/agent:edge");
        assert!(
            ImageRef::parse("agentfarm.invalid/agentfarm-agent")
                .unwrap()
                .is_placeholder()
        );
        assert!(!bare.is_placeholder());
    }
}
