//! Per-run capabilities: the one credential an agent holds. Minted at launch, stored only as a SHA-256 hash,
//! valid while its run is active; the proxies trade it for the owner's real credentials, which never enter an
//! agent.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// What every capability starts with; the redactor masks anything in this shape.
pub const PREFIX: &str = agentfarm_shared::redact::CAPABILITY_PREFIX;

/// A freshly minted capability: the secret itself, handed to the run's agent and to no one else.
#[derive(Clone, PartialEq, Eq)]
pub struct Capability(String);

impl Capability {
    /// 256 random bits from the operating system, as `afrun_<43 base64url characters>`.
    pub fn mint() -> Result<Capability, getrandom::Error> {
        let mut bytes = [0_u8; 32];
        getrandom::fill(&mut bytes)?;
        Ok(Capability(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))))
    }

    /// The secret, to put in the agent's environment or its Secret.
    pub fn secret(&self) -> &str {
        &self.0
    }

    /// What the store keeps of it.
    pub fn hash(&self) -> String {
        hash(&self.0)
    }
}

impl std::fmt::Debug for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Capability([REDACTED])")
    }
}

/// The hash under which a presented capability is looked up (hex SHA-256): the store never holds a token
/// that would work if the database leaked.
pub fn hash(presented: &str) -> String {
    let digest = Sha256::digest(presented.as_bytes());
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_are_random_masked_and_stored_as_hashes() {
        let (one, two) = (Capability::mint().unwrap(), Capability::mint().unwrap());
        assert_ne!(one, two);
        assert!(one.secret().starts_with(PREFIX) && one.secret().len() == PREFIX.len() + 43);
        assert_eq!(one.hash(), hash(one.secret()));
        assert_eq!(one.hash().len(), 64);
        assert!(!format!("{one:?}").contains(one.secret()));
        let redactor = agentfarm_shared::redact::Redactor::default();
        assert_eq!(
            redactor.redact(&format!("env: {}", one.secret())),
            "env: [REDACTED]"
        );
    }
}
