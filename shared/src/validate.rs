//! Field validation: every check names the field it failed on, and a whole input is checked at once so the
//! owner sees every mistake in one round trip.

use serde::{Deserialize, Serialize};

/// One field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// The field's name as it appears in the JSON body, e.g. `repos[2]` or `cpu`.
    pub field: String,
    /// What is wrong with it, in words the owner can act on.
    pub message: String,
}

/// Every field error found in one input, in field order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Violations(Vec<FieldError>);

impl Violations {
    /// Records that `field` is invalid.
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    /// Records the outcome of one check.
    pub fn check(&mut self, field: impl Into<String>, outcome: Result<(), String>) {
        if let Err(message) = outcome {
            self.push(field, message);
        }
    }

    /// `Ok(())` when nothing was recorded, the violations otherwise.
    pub fn finish(self) -> Result<(), Violations> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }

    /// The recorded errors.
    pub fn errors(&self) -> &[FieldError] {
        &self.0
    }

    /// Consumes the collector, returning the errors.
    pub fn into_errors(self) -> Vec<FieldError> {
        self.0
    }
}

/// Longest RFC 1123 label (Kubernetes object names, label values).
pub const MAX_LABEL_LEN: usize = 63;

/// An RFC 1123 DNS label: 1–63 of `[a-z0-9-]`, starting and ending with a letter or digit.
pub fn rfc1123_label(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    if value.len() > MAX_LABEL_LEN {
        return Err(format!("must be at most {MAX_LABEL_LEN} characters"));
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err("may hold only lowercase letters a-z, digits and '-'".into());
    }
    if value.starts_with('-') || value.ends_with('-') {
        return Err("must start and end with a letter or digit".into());
    }
    Ok(())
}

/// Turns free text into an RFC 1123 label (lowercase ASCII letters and digits joined by single hyphens), or
/// `None` when nothing usable is left.
pub fn slugify(text: &str) -> Option<String> {
    let mut slug = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.truncate(MAX_LABEL_LEN);
    let slug = slug.trim_end_matches('-').to_owned();
    (!slug.is_empty()).then_some(slug)
}

/// Free text of at most `max_bytes` bytes with no NUL and, when `single_line`, no control characters at all.
pub fn text(value: &str, max_bytes: usize, single_line: bool) -> Result<(), String> {
    if value.len() > max_bytes {
        return Err(format!("must be at most {max_bytes} bytes (got {})", value.len()));
    }
    if value.contains('\0') {
        return Err("must not contain NUL characters".into());
    }
    if single_line && value.chars().any(char::is_control) {
        return Err("must be a single line without control characters".into());
    }
    Ok(())
}

/// Text that must hold something besides whitespace.
pub fn required_text(value: &str, max_bytes: usize, single_line: bool) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err("is required".into());
    }
    text(value, max_bytes, single_line)
}

/// A GitHub repository reference: `owner/repo` with an optional `@branch`.
///
/// Owners are 1–39 letters, digits or single hyphens (not at either end); repositories are 1–100 of
/// `[A-Za-z0-9._-]`, not `.`/`..`, not starting with `-` or `.`, not ending in `.git`. Branches follow git's
/// ref-name rules, restricted to ASCII.
pub fn repo_ref(value: &str) -> Result<(), String> {
    let (path, branch) = match value.split_once('@') {
        Some((path, branch)) => (path, Some(branch)),
        None => (value, None),
    };
    let Some((owner, repo)) = path.split_once('/') else {
        return Err("must look like owner/repo or owner/repo@branch".into());
    };
    github_owner(owner)?;
    github_repo(repo)?;
    if let Some(branch) = branch {
        git_branch(branch)?;
    }
    Ok(())
}

fn github_owner(owner: &str) -> Result<(), String> {
    let valid = (1..=39).contains(&owner.len())
        && owner.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !owner.starts_with('-')
        && !owner.ends_with('-')
        && !owner.contains("--");
    if valid {
        Ok(())
    } else {
        Err(format!(
            "owner {owner:?} is not a GitHub owner (1-39 letters, digits or single hyphens, not at either end)"
        ))
    }
}

fn github_repo(repo: &str) -> Result<(), String> {
    if repo.is_empty() || repo.len() > 100 {
        return Err("repository name must be 1-100 characters".into());
    }
    if !repo
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(format!(
            "repository {repo:?} may hold only letters, digits, '.', '_' and '-'"
        ));
    }
    if repo.starts_with(['-', '.']) {
        return Err(format!("repository {repo:?} must not start with '-' or '.'"));
    }
    if repo.to_ascii_lowercase().ends_with(".git") {
        return Err(format!(
            "repository {repo:?} must not end in .git; name the repository itself"
        ));
    }
    Ok(())
}

fn git_branch(branch: &str) -> Result<(), String> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/');
    let valid = (1..=200).contains(&branch.len())
        && branch.bytes().all(allowed)
        && !branch.starts_with(['-', '/', '.'])
        && !branch.ends_with(['/', '.'])
        && !branch.ends_with(".lock")
        && !branch.contains("..")
        && !branch.contains("//")
        && !branch.contains("/.");
    if valid {
        Ok(())
    } else {
        Err(format!("branch {branch:?} is not a valid git branch name"))
    }
}

/// Smallest and largest CPU a config may ask for, in millicores.
pub const CPU_MILLIS_RANGE: (u64, u64) = (100, 32_000);
/// Smallest and largest memory a config may ask for, in bytes (128 MiB – 256 GiB).
pub const MEMORY_BYTES_RANGE: (u64, u64) = (128 << 20, 256 << 30);

/// Parses a CPU quantity in Kubernetes' canonical forms, `"2"`, `"1.5"` or `"500m"`, into millicores.
pub fn cpu_millis(value: &str) -> Result<u64, String> {
    let hint = "must be a number of cores like \"2\", \"1.5\" or millicores like \"500m\"";
    let millis = if let Some(m) = value.strip_suffix('m') {
        digits(m).ok_or_else(|| hint.to_owned())?
    } else {
        let (whole, frac) = value.split_once('.').unwrap_or((value, ""));
        let whole = digits(whole).ok_or_else(|| hint.to_owned())?;
        let frac_millis = match frac.len() {
            0 if !value.contains('.') => 0,
            1..=3 => digits(frac).ok_or_else(|| hint.to_owned())? * 10u64.pow(3 - frac.len() as u32),
            _ => return Err(hint.into()),
        };
        whole
            .checked_mul(1000)
            .and_then(|w| w.checked_add(frac_millis))
            .ok_or_else(|| hint.to_owned())?
    };
    in_range(millis, CPU_MILLIS_RANGE, |v| format!("{v}m"))?;
    Ok(millis)
}

/// Parses a memory quantity, `"512Mi"`, `"4Gi"`, `"1G"` or plain bytes, into bytes.
pub fn memory_bytes(value: &str) -> Result<u64, String> {
    const UNITS: [(&str, u64); 8] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
    ];
    let hint = "must be a whole number with a unit like \"512Mi\" or \"4Gi\"";
    let (number, unit) = UNITS
        .iter()
        .find_map(|(suffix, unit)| value.strip_suffix(suffix).map(|n| (n, *unit)))
        .unwrap_or((value, 1));
    let bytes = digits(number)
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(|| hint.to_owned())?;
    in_range(bytes, MEMORY_BYTES_RANGE, |v| format!("{}Mi", v >> 20))?;
    Ok(bytes)
}

fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 18 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn in_range(value: u64, (min, max): (u64, u64), show: impl Fn(u64) -> String) -> Result<(), String> {
    if value < min || value > max {
        Err(format!("must be between {} and {}", show(min), show(max)))
    } else {
        Ok(())
    }
}

/// A container image tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn image_tag(value: &str) -> Result<(), String> {
    let valid = (1..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !value.starts_with(['.', '-']);
    if valid {
        Ok(())
    } else {
        Err(
            "must be an image tag: 1-128 of letters, digits, '.', '_', '-', not starting with '.' or '-'"
                .into(),
        )
    }
}

/// A model name or alias as Claude Code takes it (`sonnet`, `opus[1m]`, `claude-sonnet-4-5-20250929`).
pub fn model(value: &str) -> Result<(), String> {
    let valid = (1..=100).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':' | b'[' | b']'))
        && value.as_bytes()[0].is_ascii_alphanumeric();
    if valid {
        Ok(())
    } else {
        Err("must be a model name or alias such as \"sonnet\" or \"claude-sonnet-4-5\"".into())
    }
}

/// A whole number within `min..=max`.
pub fn bounded(value: u64, min: u64, max: u64) -> Result<(), String> {
    in_range(value, (min, max), |v| v.to_string())
}

/// An optional spending cap in US dollars: finite, above zero, at most `max` whole dollars.
pub fn budget_usd(value: f64, max: u32) -> Result<(), String> {
    // `max` is whole dollars, so the message needs no float formatting (which would cost the web app ~10 KB).
    if value.is_finite() && value > 0.0 && value <= f64::from(max) {
        Ok(())
    } else {
        Err(format!("must be a number of dollars above 0 and at most {max}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        for ok in ["a", "fix-bugs", "0abc", &"a".repeat(63)] {
            assert_eq!(rfc1123_label(ok), Ok(()), "{ok}");
        }
        for bad in ["", "-a", "a-", "A", "a_b", "a.b", "ä", &"a".repeat(64)] {
            assert!(rfc1123_label(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn slugs() {
        assert_eq!(slugify("Fix the Bugs!").as_deref(), Some("fix-the-bugs"));
        assert_eq!(slugify("  --x--  ").as_deref(), Some("x"));
        assert_eq!(slugify("日本語"), None);
        assert_eq!(slugify(&"ab ".repeat(40)).map(|s| s.len() <= 63), Some(true));
    }

    #[test]
    fn repos() {
        for ok in [
            "a/b",
            "a-b/c.d_e",
            "octo-org/repo@main",
            "o/r@feature/x-1",
            &format!("o/{}", "r".repeat(100)),
        ] {
            assert_eq!(repo_ref(ok), Ok(()), "{ok}");
        }
        let long = format!("o/{}", "r".repeat(101));
        let bad = [
            "../x",
            "-u",
            "--upload-pack=x",
            "a/b/c",
            "a/b.git",
            "a/.",
            "a/..",
            "a /b",
            "a/b ",
            "ä/b",
            "a/b\n",
            "a%2Fb",
            "",
            "a--b/c",
            "-a/b",
            &long,
            &format!("{}/r", "o".repeat(40)),
            "a/b@",
            "a/b@-x",
            "a/b@x..y",
            "a/b@x.lock",
            "a/-b",
            "a/b@/x",
        ];
        for bad in bad {
            assert!(repo_ref(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn quantities() {
        assert_eq!(cpu_millis("2"), Ok(2000));
        assert_eq!(cpu_millis("1.5"), Ok(1500));
        assert_eq!(cpu_millis("250m"), Ok(250));
        for bad in [
            "-1", "1e3", "NaN", "", "1.", ".5", "1.2345", "99999999", "2 ", "50m", "0",
        ] {
            assert!(cpu_millis(bad).is_err(), "{bad:?}");
        }
        assert_eq!(memory_bytes("4Gi"), Ok(4 << 30));
        assert_eq!(memory_bytes("512Mi"), Ok(512 << 20));
        assert_eq!(memory_bytes("1G"), Ok(1_000_000_000));
        for bad in [
            "-1",
            "1e3",
            "NaN",
            "99999999Gi",
            "4GB",
            "4 Gi",
            "",
            "Gi",
            "1Ki",
            "99999999999999999999",
        ] {
            assert!(memory_bytes(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tags_and_models() {
        assert_eq!(image_tag("v1.2.3-rc_1"), Ok(()));
        assert!(image_tag(&"a".repeat(129)).is_err());
        assert!(image_tag("-x").is_err());
        assert!(image_tag("a b").is_err());
        assert_eq!(model("opus[1m]"), Ok(()));
        assert!(model("--dangerous").is_err());
        assert!(model("").is_err());
    }

    #[test]
    fn texts() {
        assert!(required_text("  ", 10, false).is_err());
        assert!(text("a\0b", 10, false).is_err());
        assert!(text("a\nb", 10, true).is_err());
        assert_eq!(text("a\nb", 10, false), Ok(()));
        assert!(text("abcdef", 5, false).is_err());
    }

    #[test]
    fn budgets() {
        assert_eq!(budget_usd(5.0, 100), Ok(()));
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 101.0] {
            assert!(budget_usd(bad, 100).is_err(), "{bad}");
        }
    }
}
