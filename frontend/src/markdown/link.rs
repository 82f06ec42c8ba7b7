//! Link targets: which are safe to make clickable, and where a bare `http(s)` URL in text ends.

/// True for an absolute `http://` or `https://` URL (case-insensitive scheme), the only links made clickable.
pub fn is_web_url(href: &str) -> bool {
    let lower = href.get(..8).unwrap_or(href).to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://")) && !href.chars().any(char::is_control)
}

/// The length of the bare `http://` or `https://` URL at the start of `chars`, if there is one: up to
/// whitespace or `<`/`>`, less trailing punctuation and any trailing `)` that closes nothing in it.
pub fn bare_url(chars: &[char]) -> Option<usize> {
    let scheme = ["https://", "http://"]
        .into_iter()
        .find(|scheme| {
            scheme.len() <= chars.len() && scheme.chars().zip(chars).all(|(s, c)| c.eq_ignore_ascii_case(&s))
        })?
        .len();
    let mut len = chars
        .iter()
        .position(|&c| c.is_whitespace() || c == '<' || c == '>')
        .unwrap_or(chars.len());
    let count = |c: char| chars[..len].iter().filter(|&&x| x == c).count();
    let (opens, mut closes) = (count('('), count(')'));
    while len > scheme {
        match chars[len - 1] {
            '.' | ',' | ':' | ';' | '!' | '?' | '"' | '\'' | '*' | '_' | '~' => {}
            ')' if closes > opens => closes -= 1,
            _ => break,
        }
        len -= 1;
    }
    (len > scheme).then_some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url_in(text: &str) -> Option<String> {
        let chars: Vec<char> = text.chars().collect();
        bare_url(&chars).map(|len| chars[..len].iter().collect())
    }

    #[test]
    fn only_absolute_web_urls_are_safe() {
        assert!(is_web_url("https://example.com/a?b=c"));
        assert!(is_web_url("HTTP://example.com"));
        for hostile in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            " javascript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "vbscript:msgbox",
            "file:///etc/passwd",
            "//evil.example",
            "/relative/path",
            "relative",
            "&#104;ttps://entity.example",
            "https://bad\u{0}.example",
            "https:\u{9}//x",
            "",
        ] {
            assert!(!is_web_url(hostile), "{hostile:?}");
        }
    }

    #[test]
    fn a_bare_url_ends_before_trailing_punctuation() {
        assert_eq!(url_in("https://x.dev/a."), Some("https://x.dev/a".into()));
        assert_eq!(url_in("HTTP://x.dev, then"), Some("HTTP://x.dev".into()));
        assert_eq!(url_in("https://x.dev/<b>"), Some("https://x.dev/".into()));
        assert_eq!(
            url_in("https://en.wikipedia.org/wiki/Rust_(language))."),
            Some("https://en.wikipedia.org/wiki/Rust_(language)".into())
        );
        assert_eq!(url_in("https://"), None);
        assert_eq!(url_in("https://..."), None);
        assert_eq!(url_in("http:/x"), None);
        assert_eq!(url_in("ftp://x"), None);
        let closing = format!("https://x{}", ")".repeat(100_000));
        assert_eq!(url_in(&closing), Some("https://x".into()));
    }
}
