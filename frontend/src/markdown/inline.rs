//! Spans inside a block: code, emphasis, links and bare URLs. Looking ahead for a closing delimiter draws on
//! a budget proportional to the text, past which no more closers are found and the rest stays text, so
//! hostile input (thousands of unclosed `[`, `*` or `` ` ``) costs linear time; spans nest at most
//! [`MAX_DEPTH`] deep.

use super::link::{bare_url, is_web_url};
use super::{Inline, MAX_DEPTH};

/// Look-ahead steps allowed per character of text, on top of [`BASE_BUDGET`].
const BUDGET_PER_CHAR: usize = 32;
/// Look-ahead steps allowed whatever the text's length.
const BASE_BUDGET: usize = 4096;

/// Parses inline markup.
pub fn inlines(text: &str) -> Vec<Inline> {
    let chars: Vec<char> = text.chars().collect();
    let mut parser = Parser {
        budget: BASE_BUDGET + BUDGET_PER_CHAR * chars.len(),
    };
    parser.spans(&chars, 0, false)
}

struct Parser {
    /// Look-ahead steps left.
    budget: usize,
}

impl Parser {
    /// Spends one look-ahead step; false once the budget is gone.
    fn step(&mut self) -> bool {
        self.budget = self.budget.saturating_sub(1);
        self.budget > 0
    }

    /// The spans of `chars`, `depth` spans deep; inside a link's text (`in_link`) nothing is a link.
    fn spans(&mut self, chars: &[char], depth: usize, in_link: bool) -> Vec<Inline> {
        let mut out = Vec::new();
        let mut plain = String::new();
        let mut i = 0;
        if depth >= MAX_DEPTH {
            plain.extend(chars);
            i = chars.len();
        }
        let flush = |plain: &mut String, out: &mut Vec<Inline>| {
            if !plain.is_empty() {
                out.push(Inline::Text(std::mem::take(plain)));
            }
        };
        while i < chars.len() {
            let c = chars[i];
            if c == '\\' && chars.get(i + 1).is_some_and(char::is_ascii_punctuation) {
                plain.push(chars[i + 1]);
                i += 2;
                continue;
            }
            if c == '`' {
                let ticks = run_len(chars, i, '`');
                if let Some(end) = self.find_run(chars, i + ticks, '`', ticks) {
                    flush(&mut plain, &mut out);
                    let code: String = chars[i + ticks..end].iter().collect();
                    out.push(Inline::Code(trim_code(&code)));
                    i = end + ticks;
                    continue;
                }
                plain.extend(&chars[i..i + ticks]);
                i += ticks;
                continue;
            }
            if (c == '*' || c == '_')
                && chars.get(i + 1) == Some(&c)
                && opens(chars, i, 2)
                && let Some(end) = self.find_closing(chars, i + 2, c, 2)
            {
                flush(&mut plain, &mut out);
                out.push(Inline::Strong(self.spans(&chars[i + 2..end], depth + 1, in_link)));
                i = end + 2;
                continue;
            }
            if (c == '*' || c == '_')
                && opens(chars, i, 1)
                && (c == '*' || left_boundary(chars, i))
                && let Some(end) = self
                    .find_closing(chars, i + 1, c, 1)
                    .filter(|&end| c == '*' || right_boundary(chars, end + 1))
            {
                flush(&mut plain, &mut out);
                out.push(Inline::Em(self.spans(&chars[i + 1..end], depth + 1, in_link)));
                i = end + 1;
                continue;
            }
            if !in_link
                && c == '['
                && let Some((text_end, href, next)) = self.link_at(chars, i)
            {
                flush(&mut plain, &mut out);
                out.push(Inline::Link {
                    text: self.spans(&chars[i + 1..text_end], depth + 1, true),
                    safe: is_web_url(&href),
                    href,
                });
                i = next;
                continue;
            }
            if !in_link
                && left_boundary(chars, i)
                && let Some(len) = bare_url(&chars[i..])
            {
                flush(&mut plain, &mut out);
                let href: String = chars[i..i + len].iter().collect();
                out.push(Inline::Link {
                    text: vec![Inline::Text(href.clone())],
                    safe: is_web_url(&href),
                    href,
                });
                i += len;
                continue;
            }
            plain.push(c);
            i += 1;
        }
        flush(&mut plain, &mut out);
        out
    }

    /// The start of the next run of exactly `len` `c`s at or after `from`.
    fn find_run(&mut self, chars: &[char], from: usize, c: char, len: usize) -> Option<usize> {
        let mut i = from;
        while i < chars.len() && self.step() {
            if chars[i] == c {
                let n = run_len(chars, i, c);
                if n == len {
                    return Some(i);
                }
                i += n;
            } else {
                i += 1;
            }
        }
        None
    }

    /// A closing run of `len` `c`s preceded by a non-space, skipping code spans. In a longer run (`***`) the
    /// closing delimiter is its last `len` characters.
    fn find_closing(&mut self, chars: &[char], from: usize, c: char, len: usize) -> Option<usize> {
        let mut i = from;
        while i < chars.len() && self.step() {
            if chars[i] == '`' {
                let ticks = run_len(chars, i, '`');
                i = self
                    .find_run(chars, i + ticks, '`', ticks)
                    .map_or(i + ticks, |end| end + ticks);
                continue;
            }
            if chars[i] == c {
                let n = run_len(chars, i, c);
                let closes = i > from && !chars[i - 1].is_whitespace();
                if closes && (n == len || (len == 2 && n > 2)) {
                    return Some(i + n - len);
                }
                i += n;
                continue;
            }
            i += 1;
        }
        None
    }

    /// `[text](href)` at `at`: the index of `]`, the href and the index after `)`. The href may hold balanced
    /// parentheses; a title after it (`[t](href "title")`) is dropped.
    fn link_at(&mut self, chars: &[char], at: usize) -> Option<(usize, String, usize)> {
        let close = self.find_matching(chars, at, '[', ']')?;
        if chars.get(close + 1) != Some(&'(') {
            return None;
        }
        let end = self.find_matching(chars, close + 1, '(', ')')?;
        let target: String = chars[close + 2..end].iter().collect();
        let href = target.split_whitespace().next().unwrap_or_default().to_owned();
        Some((close, href, end + 1))
    }

    /// The index of the `close` that matches the `open` at `at`.
    fn find_matching(&mut self, chars: &[char], at: usize, open: char, close: char) -> Option<usize> {
        let mut depth = 0usize;
        for (offset, &c) in chars[at..].iter().enumerate() {
            if !self.step() {
                return None;
            }
            if c == open {
                depth += 1;
            } else if c == close {
                depth -= 1;
                if depth == 0 {
                    return Some(at + offset);
                }
            }
        }
        None
    }
}

fn run_len(chars: &[char], from: usize, c: char) -> usize {
    chars[from..].iter().take_while(|&&x| x == c).count()
}

/// A delimiter run opens emphasis when followed by a non-space.
fn opens(chars: &[char], at: usize, len: usize) -> bool {
    chars.get(at + len).is_some_and(|c| !c.is_whitespace())
}

fn left_boundary(chars: &[char], at: usize) -> bool {
    at == 0 || !chars[at - 1].is_alphanumeric()
}

fn right_boundary(chars: &[char], after: usize) -> bool {
    chars.get(after).is_none_or(|c| !c.is_alphanumeric())
}

fn trim_code(code: &str) -> String {
    if code.len() >= 2 && code.starts_with(' ') && code.ends_with(' ') && !code.trim().is_empty() {
        code[1..code.len() - 1].to_owned()
    } else {
        code.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Inline {
        Inline::Text(s.to_owned())
    }

    fn link(label: &str, href: &str, safe: bool) -> Inline {
        Inline::Link {
            text: vec![text(label)],
            href: href.into(),
            safe,
        }
    }

    #[test]
    fn inline_markup() {
        assert_eq!(
            inlines("a `b*c*` **bold *it*** _em_ snake_case_name 2*3*4"),
            vec![
                text("a "),
                Inline::Code("b*c*".into()),
                text(" "),
                Inline::Strong(vec![text("bold "), Inline::Em(vec![text("it")])]),
                text(" "),
                Inline::Em(vec![text("em")]),
                text(" snake_case_name 2"),
                Inline::Em(vec![text("3")]),
                text("4"),
            ]
        );
        assert_eq!(inlines("**unclosed"), vec![text("**unclosed")]);
        assert_eq!(inlines(r"\*not em\*"), vec![text("*not em*")]);
    }

    #[test]
    fn links_are_only_clickable_for_web_urls() {
        assert_eq!(
            inlines("see [docs](https://x.dev/a \"title\") or [bad](javascript:alert(1)) [rel](/x)"),
            vec![
                text("see "),
                link("docs", "https://x.dev/a", true),
                text(" or "),
                link("bad", "javascript:alert(1)", false),
                text(" "),
                link("rel", "/x", false),
            ]
        );
        assert_eq!(
            inlines("[**b** `c`](https://x.dev/Rust_(language))"),
            vec![Inline::Link {
                text: vec![
                    Inline::Strong(vec![text("b")]),
                    text(" "),
                    Inline::Code("c".into())
                ],
                href: "https://x.dev/Rust_(language)".into(),
                safe: true,
            }]
        );
        assert_eq!(
            inlines("[no target] [open](https://x"),
            vec![text("[no target] [open]("), link("https://x", "https://x", true)]
        );
    }

    #[test]
    fn bare_urls_become_links_but_never_inside_one() {
        assert_eq!(
            inlines("see https://x.dev/a_b. Or (HTTPS://y.dev)"),
            vec![
                text("see "),
                link("https://x.dev/a_b", "https://x.dev/a_b", true),
                text(". Or ("),
                link("HTTPS://y.dev", "HTTPS://y.dev", true),
                text(")"),
            ]
        );
        assert_eq!(inlines("xhttps://glued"), vec![text("xhttps://glued")]);
        assert_eq!(
            inlines("[https://shown](https://real.example)"),
            vec![link("https://shown", "https://real.example", true)]
        );
        assert_eq!(
            inlines("[a [b](https://inner)](https://outer)"),
            vec![link("a [b](https://inner)", "https://outer", true)]
        );
    }

    #[test]
    fn html_and_entities_stay_text() {
        for hostile in [
            "<script>alert(1)</script>",
            "<img src=x onerror=alert(1)>",
            "&lt;b&gt; &#106;avascript: &amp;",
        ] {
            assert_eq!(inlines(hostile), vec![text(hostile)]);
        }
        assert_eq!(
            inlines("[x](&#106;avascript:alert(1))"),
            vec![link("x", "&#106;avascript:alert(1)", false)]
        );
        assert_eq!(
            inlines("[x](data:text/html,<script>alert(1)</script>)"),
            vec![link("x", "data:text/html,<script>alert(1)</script>", false)]
        );
    }

    #[test]
    fn nesting_stops_at_the_cap() {
        let deep = format!("{}x{}", "[".repeat(5_000), "](https://x)".repeat(5_000));
        let spans = inlines(&deep);
        let [Inline::Link { text: label, .. }] = spans.as_slice() else {
            panic!("one link: {spans:?}");
        };
        assert!(
            matches!(label.as_slice(), [Inline::Text(_)]),
            "links hold no links"
        );

        let mut parser = Parser { budget: BASE_BUDGET };
        let chars: Vec<char> = "**a** [b](https://x)".chars().collect();
        assert_eq!(
            parser.spans(&chars, MAX_DEPTH, false),
            vec![text("**a** [b](https://x)")],
            "at the cap markup stays text"
        );
        assert_eq!(parser.spans(&chars, MAX_DEPTH - 1, false).len(), 3);
    }

    #[test]
    fn unclosed_markup_costs_linear_time() {
        for unit in ["[a](x ", "*a ", "**a ", "_a ", "["] {
            let hostile = unit.repeat(200_000 / unit.len());
            assert_eq!(inlines(&hostile), vec![text(&hostile)], "{unit:?}");
        }
        // Backtick runs of every length, none closed.
        let ticks: String = (1..600).map(|n| format!("{}a", "`".repeat(n))).collect();
        assert_eq!(inlines(&ticks), vec![text(&ticks)]);
    }
}
