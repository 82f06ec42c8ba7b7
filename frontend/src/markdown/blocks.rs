//! Lines into blocks: headings, rules, fenced code, tables and paragraphs, and the containers whose content is
//! parsed again as blocks: block quotes (`>`) and lists, whose items hold the lines indented past their
//! marker. Containers nest at most [`MAX_DEPTH`] deep; deeper markers are text.

use super::inline::inlines;
use super::table::table;
use super::{Block, MAX_DEPTH};

/// Splits a document into blocks.
pub fn parse(source: &str) -> Vec<Block> {
    let lines: Vec<&str> = source.lines().collect();
    blocks(&lines, 0)
}

/// The blocks of `lines`, which sit inside `depth` containers.
fn blocks(lines: &[&str], depth: usize) -> Vec<Block> {
    let nests = depth < MAX_DEPTH;
    let mut out = Vec::new();
    let mut paragraph: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let trimmed = lines[i].trim_start();
        let (block, used) = if trimmed.is_empty() {
            flush(&mut paragraph, &mut out);
            i += 1;
            continue;
        } else if let Some(fence) = fence(trimmed) {
            code(&lines[i..], fence)
        } else if nests && trimmed.starts_with('>') {
            quote(&lines[i..], depth)
        } else if let Some((level, text)) = heading(trimmed) {
            (Block::Heading(level, inlines(text)), 1)
        } else if is_rule(trimmed) {
            (Block::Rule, 1)
        } else if nests && let Some(marker) = marker(trimmed) {
            list(&lines[i..], marker, depth)
        } else if let Some((table, used)) = table(&lines[i..]) {
            (Block::Table(table), used)
        } else {
            paragraph.push(trimmed);
            i += 1;
            continue;
        };
        flush(&mut paragraph, &mut out);
        out.push(block);
        i += used;
    }
    flush(&mut paragraph, &mut out);
    out
}

fn flush(paragraph: &mut Vec<&str>, out: &mut Vec<Block>) {
    if !paragraph.is_empty() {
        out.push(Block::Paragraph(inlines(&paragraph.join(" "))));
        paragraph.clear();
    }
}

/// The fence (```` ``` ```` or `~~~`) that opens a code block on this line, and the info string after it.
fn fence(line: &str) -> Option<(&str, &str)> {
    ["```", "~~~"]
        .into_iter()
        .find_map(|fence| Some((fence, line.strip_prefix(fence)?)))
}

/// A fenced code block opening at `lines[0]`: up to the closing fence, or to the end when it is unclosed.
fn code(lines: &[&str], (fence, info): (&str, &str)) -> (Block, usize) {
    let body: Vec<&str> = lines[1..]
        .iter()
        .take_while(|line| !line.trim_start().starts_with(fence))
        .copied()
        .collect();
    let closed = body.len() + 1 < lines.len();
    let lang = info.split_whitespace().next().map(str::to_owned);
    let used = 1 + body.len() + usize::from(closed);
    (Block::Code(lang, body.join("\n")), used)
}

/// A block quote: the lines from `lines[0]` that start with `>`, without it (and one space after it).
fn quote(lines: &[&str], depth: usize) -> (Block, usize) {
    let inner: Vec<&str> = lines
        .iter()
        .map_while(|line| line.trim_start().strip_prefix('>'))
        .map(|rest| rest.strip_prefix(' ').unwrap_or(rest))
        .collect();
    (Block::Quote(blocks(&inner, depth + 1)), inner.len())
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

/// Three or more `-`, `*` or `_` alone on a line, spaces allowed between them.
fn is_rule(line: &str) -> bool {
    let first = line.chars().next();
    matches!(first, Some('-' | '*' | '_'))
        && line.chars().all(|c| c.is_whitespace() || Some(c) == first)
        && line.chars().filter(|&c| Some(c) == first).count() >= 3
}

/// A list item's marker: `-`, `*`, `+` or a number with `.` or `)`, then a space.
#[derive(Clone, Copy)]
struct Marker<'a> {
    /// The item's number, in a numbered list.
    number: Option<u64>,
    /// Columns from the marker to the item's text.
    width: usize,
    /// The rest of the line.
    text: &'a str,
}

fn marker(line: &str) -> Option<Marker<'_>> {
    if let Some(text) = ["- ", "* ", "+ "]
        .into_iter()
        .find_map(|bullet| line.strip_prefix(bullet))
    {
        return Some(Marker {
            number: None,
            width: 2,
            text,
        });
    }
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 9 {
        return None;
    }
    let rest = &line[digits..];
    let text = rest.strip_prefix(". ").or_else(|| rest.strip_prefix(") "))?;
    Some(Marker {
        number: Some(line[..digits].parse().ok()?),
        width: digits + 2,
        text,
    })
}

/// A list from `lines[0]`, whose marker is `first`: items of the same kind (numbered or not) indented no
/// deeper than the first marker. An item holds the lines after its marker that are indented past the marker
/// (blank lines too, when such a line follows them), less its indentation.
fn list(lines: &[&str], first: Marker, depth: usize) -> (Block, usize) {
    let indent = indent_of(lines[0]);
    let mut items = Vec::new();
    let (mut at, mut item) = (0, first);
    loop {
        let mut content = vec![item.text];
        at += 1;
        while let Some(next) = next_text(lines, at).filter(|&next| indent_of(lines[next]) > indent) {
            content.extend(
                lines[at..=next]
                    .iter()
                    .map(|line| dedent(line, indent + item.width)),
            );
            at = next + 1;
        }
        items.push(blocks(&content, depth + 1));
        let sibling = next_text(lines, at)
            .filter(|&next| indent_of(lines[next]) <= indent)
            .and_then(|next| Some((next, marker(lines[next].trim_start())?)))
            .filter(|(_, next)| next.number.is_some() == first.number.is_some());
        let Some((next, marker)) = sibling else {
            break;
        };
        (at, item) = (next, marker);
    }
    (Block::List(first.number, items), at)
}

/// The first line at or after `from` that is not blank.
fn next_text(lines: &[&str], from: usize) -> Option<usize> {
    (from..lines.len()).find(|&at| !lines[at].trim().is_empty())
}

/// Columns of leading whitespace (a tab reaches the next multiple of 4).
fn indent_of(line: &str) -> usize {
    line.chars()
        .take_while(|c| matches!(c, ' ' | '\t'))
        .fold(0, advance)
}

fn advance(column: usize, c: char) -> usize {
    if c == '\t' {
        column + 4 - column % 4
    } else {
        column + 1
    }
}

/// `line` without up to `columns` columns of leading whitespace.
fn dedent(line: &str, columns: usize) -> &str {
    let mut column = 0;
    for (at, c) in line.char_indices() {
        if column >= columns || !matches!(c, ' ' | '\t') {
            return &line[at..];
        }
        column = advance(column, c);
    }
    ""
}

#[cfg(test)]
mod tests {
    use super::super::{Align, Inline};
    use super::*;

    fn text(s: &str) -> Inline {
        Inline::Text(s.to_owned())
    }

    fn para(s: &str) -> Block {
        Block::Paragraph(vec![text(s)])
    }

    /// How many containers (quotes, lists) deep the document goes.
    fn depth(blocks: &[Block]) -> usize {
        blocks
            .iter()
            .map(|block| match block {
                Block::Quote(inner) => 1 + depth(inner),
                Block::List(_, items) => 1 + items.iter().map(|item| depth(item)).max().unwrap_or(0),
                _ => 0,
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn blocks() {
        let doc = "# Title\n\nFirst line\nsecond line\n\n- a\n- b\n  continued\n\n3. three\n4. four\n\n---\n```rust\nfn main() {}\n\n```\nafter";
        assert_eq!(
            parse(doc),
            vec![
                Block::Heading(1, vec![text("Title")]),
                para("First line second line"),
                Block::List(None, vec![vec![para("a")], vec![para("b continued")]]),
                Block::List(Some(3), vec![vec![para("three")], vec![para("four")]]),
                Block::Rule,
                Block::Code(Some("rust".into()), "fn main() {}\n".into()),
                para("after"),
            ]
        );
    }

    #[test]
    fn unclosed_fence_runs_to_the_end() {
        assert_eq!(parse("```\nx\ny"), vec![Block::Code(None, "x\ny".into())]);
        assert_eq!(
            parse("~~~\n> not a quote"),
            vec![Block::Code(None, "> not a quote".into())]
        );
    }

    #[test]
    fn lists_nest_by_indentation_and_mix_kinds() {
        let doc = "1. one\n   - sub a\n     1) deep\n   - sub b\n\n   more of one\n2. two\n  * two's\n- other list\n* still it\nafter";
        assert_eq!(
            parse(doc),
            vec![
                Block::List(
                    Some(1),
                    vec![
                        vec![
                            para("one"),
                            Block::List(
                                None,
                                vec![
                                    vec![para("sub a"), Block::List(Some(1), vec![vec![para("deep")]])],
                                    vec![para("sub b")],
                                ]
                            ),
                            para("more of one"),
                        ],
                        vec![para("two"), Block::List(None, vec![vec![para("two's")]])],
                    ]
                ),
                Block::List(None, vec![vec![para("other list")], vec![para("still it")]]),
                para("after"),
            ]
        );
        assert_eq!(
            parse("- a\n\n- b"),
            vec![Block::List(None, vec![vec![para("a")], vec![para("b")]])],
            "a blank line between items keeps one list"
        );
        assert_eq!(
            parse("- a\n1. b"),
            vec![
                Block::List(None, vec![vec![para("a")]]),
                Block::List(Some(1), vec![vec![para("b")]])
            ]
        );
    }

    #[test]
    fn quotes_nest_and_hold_blocks() {
        assert_eq!(
            parse("> a\n> still a\n>\n>> b\n> - c\nafter"),
            vec![
                Block::Quote(vec![
                    para("a still a"),
                    Block::Quote(vec![para("b")]),
                    Block::List(None, vec![vec![para("c")]]),
                ]),
                para("after"),
            ]
        );
        assert_eq!(
            parse("- item\n  > quoted"),
            vec![Block::List(
                None,
                vec![vec![para("item"), Block::Quote(vec![para("quoted")])]]
            )]
        );
    }

    #[test]
    fn tables_interrupt_paragraphs_and_nest_in_containers() {
        let [Block::Paragraph(_), Block::Table(table), Block::Paragraph(_)] =
            &parse("text\n| a | b |\n|---|--:|\n| 1 | 2 |\n\nafter")[..]
        else {
            panic!("a paragraph, a table, a paragraph");
        };
        assert_eq!(table.align, vec![Align::Default, Align::Right]);
        assert_eq!(table.rows.len(), 1);
        assert!(matches!(
            &parse("> |a|\n> |-|\n> |1|")[..],
            [Block::Quote(inner)] if matches!(&inner[..], [Block::Table(_)])
        ));
        assert_eq!(parse("a | b\nc | d"), vec![para("a | b c | d")]);
    }

    #[test]
    fn rules_and_headings() {
        assert_eq!(
            parse("***\n_ _ _\n--"),
            vec![Block::Rule, Block::Rule, para("--")]
        );
        assert_eq!(
            parse("- - -x"),
            vec![Block::List(
                None,
                vec![vec![Block::List(None, vec![vec![para("-x")]])]]
            )]
        );
        assert_eq!(
            parse("## Two ##\n#nope\n####### seven"),
            vec![Block::Heading(2, vec![text("Two")]), para("#nope ####### seven")]
        );
    }

    #[test]
    fn html_stays_text() {
        assert_eq!(
            parse("<script>alert(1)</script>\n> <img src=x onerror=alert(1)>\n- &lt;b&gt;"),
            vec![
                para("<script>alert(1)</script>"),
                Block::Quote(vec![para("<img src=x onerror=alert(1)>")]),
                Block::List(None, vec![vec![para("&lt;b&gt;")]]),
            ]
        );
    }

    #[test]
    fn nesting_stops_at_the_cap() {
        let quotes = parse(&format!("{} deep", ">".repeat(100_000)));
        assert_eq!(depth(&quotes), MAX_DEPTH);
        let mut innermost = &quotes;
        while let [Block::Quote(inner)] = &innermost[..] {
            innermost = inner;
        }
        assert_eq!(
            innermost,
            &vec![para(&format!("{} deep", ">".repeat(100_000 - MAX_DEPTH)))]
        );

        let stairs: String = (0..500).map(|n| format!("{}- {n}\n", "  ".repeat(n))).collect();
        assert_eq!(depth(&parse(&stairs)), MAX_DEPTH);
        let bullets = format!("{}x", "- ".repeat(100_000));
        assert_eq!(depth(&parse(&bullets)), MAX_DEPTH);
        let mixed: String = (0..300).map(|n| format!("{}> 1. ", "   ".repeat(n))).collect();
        assert!(depth(&parse(&mixed)) <= MAX_DEPTH);
    }
}
