//! The agent image: not the placeholder, and pinned by digest.

use agentfarm_shared::api::{Check, CheckStatus};

use super::{INFRA_README, check};
use crate::runtime::kube::image::ImageRef;

/// 8. The agent image: the site's own, pinned by digest.
pub(super) fn agent_image_check(image: &str) -> Check {
    // Whoever can move a tag decides what every agent runs with its credentials.
    let name = "agent image";
    let pin_fix = |example: &str| {
        format!(
            "set AGENTFARM_AGENT_IMAGE to your image by digest, e.g. {example}@sha256:… (the images workflow \
             prints it; or docker buildx imagetools inspect IMAGE:TAG); {INFRA_README}, \"The images\""
        )
    };
    match ImageRef::parse(image) {
        Err(problem) => check(
            name,
            CheckStatus::Fail,
            problem,
            Some(pin_fix("ghcr.io/you/agentfarm-agent")),
        ),
        Ok(reference) if reference.is_placeholder() => check(
            name,
            CheckStatus::Fail,
            format!("{image} is the default placeholder, in no registry: agents cannot start"),
            Some(pin_fix("ghcr.io/you/agentfarm-agent")),
        ),
        Ok(reference) if !reference.is_pinned() => check(
            name,
            CheckStatus::Warn,
            format!(
                "{image} names a tag without a digest: whoever can push that tag decides what agents run"
            ),
            Some(pin_fix(reference.repository())),
        ),
        Ok(_) => check(
            name,
            CheckStatus::Pass,
            format!("{image} (pinned by digest)"),
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_image_fails_as_the_placeholder_and_warns_without_a_digest() {
        let placeholder = agent_image_check("agentfarm.invalid/agentfarm-agent");
        assert_eq!(placeholder.status, CheckStatus::Fail);
        assert!(
            placeholder
                .fix
                .as_deref()
                .is_some_and(|fix| fix.contains("AGENTFARM_AGENT_IMAGE"))
        );
        let tagged = agent_image_check("ghcr.io/owner/agentfarm-agent:0.1.0");
        assert_eq!(tagged.status, CheckStatus::Warn);
        assert!(tagged.detail.contains("without a digest"), "{}", tagged.detail);
        assert!(
            tagged
                .fix
                .as_deref()
                .is_some_and(|fix| fix.contains("ghcr.io/owner/agentfarm-agent@sha256:")),
            "the fix names this repository: {:?}",
            tagged.fix
        );
        let pinned = agent_image_check(&format!(
            "ghcr.io/owner/agentfarm-agent@sha256:{}",
            "ab".repeat(32)
        ));
        assert_eq!(pinned.status, CheckStatus::Pass);
    }
}
