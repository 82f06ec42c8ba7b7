//! A tiny Markdown subset for Claude's answers: paragraphs, headings, fenced code, bullet and numbered lists,
//! inline code, bold, italic and links. Agent output is attacker-controlled, so this never produces raw HTML:
//! [`parse`] builds a small tree (pure, tested on the host) and [`render`] turns it into Yew nodes, whose text
//! Yew escapes. Only `http`/`https` links become anchors; any other link is shown as plain text.

use yew::prelude::*;

/// A block of a document.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// `#`..`######`.
    Heading(u8, Vec<Inline>),
    /// Lines of text.
    Paragraph(Vec<Inline>),
    /// A fenced code block, with its info string's first word.
    Code(Option<String>, String),
    /// A list: numbered (with its first number) or not, one entry per item.
    List(Option<u64>, Vec<Vec<Inline>>),
}

/// A run of text inside a block.
#[derive(Debug, Clone, PartialEq)]
pub enum Inline {
    /// Plain text.
    Text(String),
    /// `` `code` ``.
    Code(String),
    /// `**bold**` or `__bold__`.
    Strong(Vec<Inline>),
    /// `*italic*` or `_italic_`.
    Em(Vec<Inline>),
    /// `[text](href)`; `safe` when the target is an http(s) URL.
    Link {
        /// The link's text.
        text: Vec<Inline>,
        /// Where it points.
        href: String,
        /// True for `http://` and `https://` targets, the only ones made clickable.
        safe: bool,
    },
}

/// Splits a document into blocks.
pub fn parse(source: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut paragraph: Vec<&str> = Vec::new();
    let mut list: Option<(Option<u64>, Vec<String>)> = None;
    let mut lines = source.lines();

    let flush_paragraph = |paragraph: &mut Vec<&str>, blocks: &mut Vec<Block>| {
        if !paragraph.is_empty() {
            blocks.push(Block::Paragraph(inlines(&paragraph.join(" "))));
            paragraph.clear();
        }
    };
    let flush_list = |list: &mut Option<(Option<u64>, Vec<String>)>, blocks: &mut Vec<Block>| {
        if let Some((start, items)) = list.take() {
            blocks.push(Block::List(start, items.iter().map(|i| inlines(i)).collect()));
        }
    };

    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if let Some(info) = trimmed
            .strip_prefix("```")
            .or_else(|| trimmed.strip_prefix("~~~"))
        {
            let fence = &trimmed[..3];
            flush_paragraph(&mut paragraph, &mut blocks);
            flush_list(&mut list, &mut blocks);
            let lang = info.split_whitespace().next().map(str::to_owned);
            let mut code = Vec::new();
            for inner in lines.by_ref() {
                if inner.trim_start().starts_with(fence) {
                    break;
                }
                code.push(inner);
            }
            blocks.push(Block::Code(lang, code.join("\n")));
        } else if trimmed.is_empty() {
            flush_paragraph(&mut paragraph, &mut blocks);
            flush_list(&mut list, &mut blocks);
        } else if let Some((level, text)) = heading(trimmed) {
            flush_paragraph(&mut paragraph, &mut blocks);
            flush_list(&mut list, &mut blocks);
            blocks.push(Block::Heading(level, inlines(text)));
        } else if let Some((number, text)) = list_item(trimmed) {
            flush_paragraph(&mut paragraph, &mut blocks);
            match &mut list {
                Some((start, items)) if start.is_some() == number.is_some() => items.push(text.to_owned()),
                _ => {
                    flush_list(&mut list, &mut blocks);
                    list = Some((number, vec![text.to_owned()]));
                }
            }
        } else if let Some((_, items)) = list.as_mut().filter(|_| line.starts_with([' ', '\t'])) {
            // An indented line continues the current item.
            if let Some(last) = items.last_mut() {
                last.push(' ');
                last.push_str(trimmed);
            }
        } else {
            flush_list(&mut list, &mut blocks);
            paragraph.push(trimmed);
        }
    }
    flush_paragraph(&mut paragraph, &mut blocks);
    flush_list(&mut list, &mut blocks);
    blocks
}

fn heading(line: &str) -> Option<(u8, &str)> {
    let level = line.bytes().take_while(|&b| b == b'#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = &line[level..];
    if rest.is_empty() {
        return Some((level as u8, ""));
    }
    rest.strip_prefix(' ')
        .map(|text| (level as u8, text.trim().trim_end_matches('#').trim_end()))
}

fn list_item(line: &str) -> Option<(Option<u64>, &str)> {
    for marker in ["- ", "* ", "+ "] {
        if let Some(text) = line.strip_prefix(marker) {
            return Some((None, text.trim()));
        }
    }
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 9 {
        return None;
    }
    let rest = &line[digits..];
    let text = rest.strip_prefix(". ").or_else(|| rest.strip_prefix(") "))?;
    let number = line[..digits].parse().ok()?;
    Some((Some(number), text.trim()))
}

/// Parses inline markup.
pub fn inlines(text: &str) -> Vec<Inline> {
    let chars: Vec<char> = text.chars().collect();
    parse_inlines(&chars)
}

fn parse_inlines(chars: &[char]) -> Vec<Inline> {
    let mut out = Vec::new();
    let mut plain = String::new();
    let mut i = 0;
    let flush = |plain: &mut String, out: &mut Vec<Inline>| {
        if !plain.is_empty() {
            out.push(Inline::Text(std::mem::take(plain)));
        }
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && i + 1 < chars.len() && chars[i + 1].is_ascii_punctuation() {
            plain.push(chars[i + 1]);
            i += 2;
            continue;
        }
        if c == '`' {
            let ticks = run_len(chars, i, '`');
            if let Some(end) = find_run(chars, i + ticks, '`', ticks) {
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
            && i + 1 < chars.len()
            && chars[i + 1] == c
            && opens(chars, i, 2)
            && let Some(end) = find_closing(chars, i + 2, c, 2)
        {
            flush(&mut plain, &mut out);
            out.push(Inline::Strong(parse_inlines(&chars[i + 2..end])));
            i = end + 2;
            continue;
        }
        if (c == '*' || c == '_')
            && opens(chars, i, 1)
            && (c == '*' || left_boundary(chars, i))
            && let Some(end) =
                find_closing(chars, i + 1, c, 1).filter(|&end| c == '*' || right_boundary(chars, end + 1))
        {
            flush(&mut plain, &mut out);
            out.push(Inline::Em(parse_inlines(&chars[i + 1..end])));
            i = end + 1;
            continue;
        }
        if c == '['
            && let Some((text_end, href, next)) = link_at(chars, i)
        {
            flush(&mut plain, &mut out);
            let safe = is_web_url(&href);
            out.push(Inline::Link {
                text: parse_inlines(&chars[i + 1..text_end]),
                href,
                safe,
            });
            i = next;
            continue;
        }
        plain.push(c);
        i += 1;
    }
    flush(&mut plain, &mut out);
    out
}

fn run_len(chars: &[char], from: usize, c: char) -> usize {
    chars[from..].iter().take_while(|&&x| x == c).count()
}

/// The start of the next run of exactly `len` `c`s at or after `from`.
fn find_run(chars: &[char], from: usize, c: char, len: usize) -> Option<usize> {
    let mut i = from;
    while i < chars.len() {
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

/// A closing run of `len` `c`s preceded by a non-space, skipping code spans. In a longer run (`***`) the
/// closing delimiter is its last `len` characters.
fn find_closing(chars: &[char], from: usize, c: char, len: usize) -> Option<usize> {
    let mut i = from;
    while i < chars.len() {
        if chars[i] == '`' {
            let ticks = run_len(chars, i, '`');
            i = find_run(chars, i + ticks, '`', ticks).map_or(i + ticks, |end| end + ticks);
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

/// `[text](href)` at `at`: the index of `]`, the href and the index after `)`.
fn link_at(chars: &[char], at: usize) -> Option<(usize, String, usize)> {
    let mut depth = 0usize;
    let mut close = None;
    for (offset, &c) in chars[at..].iter().enumerate() {
        match c {
            '[' => depth += 1,
            ']' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(at + offset);
                    break;
                }
            }
            _ => {}
        }
    }
    let close = close?;
    if chars.get(close + 1) != Some(&'(') {
        return None;
    }
    let start = close + 2;
    let end = start + chars[start..].iter().position(|&c| c == ')')?;
    let href: String = chars[start..end].iter().collect();
    let href = href.split_whitespace().next().unwrap_or_default().to_owned();
    Some((close, href, end + 1))
}

fn trim_code(code: &str) -> String {
    if code.len() >= 2 && code.starts_with(' ') && code.ends_with(' ') && !code.trim().is_empty() {
        code[1..code.len() - 1].to_owned()
    } else {
        code.to_owned()
    }
}

/// True for an absolute `http://` or `https://` URL (case-insensitive scheme), the only links made clickable.
pub fn is_web_url(href: &str) -> bool {
    let lower = href.get(..8).unwrap_or(href).to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://")) && !href.chars().any(char::is_control)
}

/// Renders Markdown source as Yew nodes.
pub fn render(source: &str) -> Html {
    parse(source).iter().map(render_block).collect()
}

fn render_block(block: &Block) -> Html {
    match block {
        Block::Heading(level, content) => {
            let content = render_inlines(content);
            match level {
                1 => html! { <h3 class="md-h1">{ content }</h3> },
                2 => html! { <h4 class="md-h2">{ content }</h4> },
                _ => html! { <h5 class="md-h3">{ content }</h5> },
            }
        }
        Block::Paragraph(content) => html! { <p>{ render_inlines(content) }</p> },
        Block::Code(lang, code) => html! {
            <pre class="md-code" data-lang={lang.clone()}><code>{ code.clone() }</code></pre>
        },
        Block::List(None, items) => html! {
            <ul>{ for items.iter().map(|item| html! { <li>{ render_inlines(item) }</li> }) }</ul>
        },
        Block::List(Some(start), items) => html! {
            <ol start={start.to_string()}>
                { for items.iter().map(|item| html! { <li>{ render_inlines(item) }</li> }) }
            </ol>
        },
    }
}

fn render_inlines(content: &[Inline]) -> Html {
    content.iter().map(render_inline).collect()
}

fn render_inline(inline: &Inline) -> Html {
    match inline {
        Inline::Text(text) => html! { { text.clone() } },
        Inline::Code(code) => html! { <code>{ code.clone() }</code> },
        Inline::Strong(inner) => html! { <strong>{ render_inlines(inner) }</strong> },
        Inline::Em(inner) => html! { <em>{ render_inlines(inner) }</em> },
        Inline::Link {
            text,
            href,
            safe: true,
        } => html! {
            <>
                <a href={href.clone()} target="_blank" rel="noopener noreferrer nofollow">
                    { render_inlines(text) }
                </a>
                <span class="md-href">{ format!(" ({href})") }</span>
            </>
        },
        Inline::Link {
            text,
            href,
            safe: false,
        } => html! {
            <>{ render_inlines(text) }<span class="md-href">{ format!(" ({href})") }</span></>
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Inline {
        Inline::Text(s.to_owned())
    }

    #[test]
    fn blocks() {
        let doc = "# Title\n\nFirst line\nsecond line\n\n- a\n- b\n  continued\n\n3. three\n4. four\n\n```rust\nfn main() {}\n\n```\nafter";
        assert_eq!(
            parse(doc),
            vec![
                Block::Heading(1, vec![text("Title")]),
                Block::Paragraph(vec![text("First line second line")]),
                Block::List(None, vec![vec![text("a")], vec![text("b continued")]]),
                Block::List(Some(3), vec![vec![text("three")], vec![text("four")]]),
                Block::Code(Some("rust".into()), "fn main() {}\n".into()),
                Block::Paragraph(vec![text("after")]),
            ]
        );
    }

    #[test]
    fn unclosed_fence_runs_to_the_end() {
        assert_eq!(parse("```\nx\ny"), vec![Block::Code(None, "x\ny".into())]);
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
            inlines("see [docs](https://x.dev/a) or [bad](javascript:alert(1))"),
            vec![
                text("see "),
                Inline::Link {
                    text: vec![text("docs")],
                    href: "https://x.dev/a".into(),
                    safe: true
                },
                text(" or "),
                Inline::Link {
                    text: vec![text("bad")],
                    href: "javascript:alert(1".into(),
                    safe: false
                },
                text(")"),
            ]
        );
        assert!(is_web_url("HTTPS://example.com"));
        assert!(!is_web_url("data:text/html,<script>"));
        assert!(!is_web_url("//evil.example"));
    }

    #[test]
    fn html_stays_text() {
        assert_eq!(
            parse("<script>alert(1)</script>"),
            vec![Block::Paragraph(vec![text("<script>alert(1)</script>")])]
        );
    }
}
