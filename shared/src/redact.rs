//! Redaction: no agent output may carry a credential, whether it is one the runner or the server holds or
//! one that merely looks like a GitHub or Anthropic token.

use std::borrow::Cow;

/// What every per-run capability (the one credential an agent holds) starts with.
pub const CAPABILITY_PREFIX: &str = "afrun_";
/// Prefixes of token formats, each followed by at least [`MIN_TOKEN_TAIL`] token characters.
const PATTERNS: [&str; 8] = [
    "sk-ant-",
    "github_pat_",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    CAPABILITY_PREFIX,
];
/// Characters after a prefix before it counts as a token (so prose like "ghp_" alone survives).
const MIN_TOKEN_TAIL: usize = 8;
/// What a secret becomes.
pub const MASK: &str = "[REDACTED]";

/// Replaces known secret values and token-shaped strings.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// A redactor for these exact values (values shorter than 8 characters are ignored: too likely to
    /// occur by chance), on top of the token patterns.
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<String> = secrets.into_iter().filter(|s| s.len() >= 8).collect();
        // Longest first, so a secret that contains another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Self { secrets }
    }

    /// `text` with every secret and token-shaped run masked (borrowed when there was nothing to mask).
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), MASK));
            }
        }
        if PATTERNS.iter().any(|p| out.contains(p)) {
            out = Cow::Owned(mask_patterns(&out));
        }
        out
    }
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

fn mask_patterns(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let next = PATTERNS
            .iter()
            .filter_map(|p| rest.find(p).map(|at| (at, *p)))
            .min_by_key(|(at, _)| *at);
        let Some((at, prefix)) = next else {
            out.push_str(rest);
            break;
        };
        let after = &rest[at + prefix.len()..];
        let tail = after.find(|c: char| !is_token_char(c)).unwrap_or(after.len());
        out.push_str(&rest[..at]);
        if tail >= MIN_TOKEN_TAIL {
            out.push_str(MASK);
        } else {
            out.push_str(&rest[at..at + prefix.len() + tail]);
        }
        rest = &after[tail..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_and_patterns_are_masked() {
        let r = Redactor::new(["s3cr3t-value-123".to_owned(), "short".to_owned()]);
        assert_eq!(r.redact("token=s3cr3t-value-123!"), "token=[REDACTED]!");
        assert_eq!(r.redact("short stays"), "short stays");
        assert_eq!(r.redact("a ghp_abcdefgh1234 b"), "a [REDACTED] b");
        assert_eq!(
            r.redact(r#"{"k":"sk-ant-oat01-AbC_dEf-123456"}"#),
            r#"{"k":"[REDACTED]"}"#
        );
        assert_eq!(r.redact("github_pat_11ABCDEFG0123456789_xyz"), "[REDACTED]");
        assert_eq!(
            r.redact("mention ghp_ and sk-ant- in prose"),
            "mention ghp_ and sk-ant- in prose"
        );
        assert_eq!(
            r.redact("two ghp_aaaaaaaaaa ghs_bbbbbbbbbb"),
            "two [REDACTED] [REDACTED]"
        );
        assert_eq!(r.redact("ünïcode ghp_abcdefgh1234é"), "ünïcode [REDACTED]é");
    }
}
