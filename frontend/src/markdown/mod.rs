//! A small Markdown subset for Claude's answers: paragraphs, headings, rules, fenced code, GFM pipe tables,
//! block quotes, bullet and numbered lists nested by indentation, inline code, bold, italic, links and bare
//! `http(s)` URLs. Agent output is attacker-controlled, so this never produces raw HTML: [`parse`] builds a
//! small tree (pure, tested on the host) and [`render`] turns it into Yew nodes, whose text Yew escapes. Only
//! `http`/`https` links become anchors; any other link is shown as plain text. Nesting is capped at
//! [`MAX_DEPTH`] and inline scanning at a budget linear in the text, so no input can exhaust the stack or
//! stall the page.
//!
//! - [`blocks`]: lines into blocks (containers recurse); [`table`]: pipe tables; [`inline`]: spans in a
//!   block; [`link`]: link targets and which are safe; [`render`]: the tree as Yew nodes.

mod blocks;
mod inline;
mod link;
mod render;
mod table;

pub use blocks::parse;
pub use link::is_web_url;
pub use render::render;

/// Deepest nesting of containers (block quotes, lists) and, separately, of inline spans (emphasis, links);
/// markup deeper than this is shown as text.
pub const MAX_DEPTH: usize = 8;

/// A block of a document.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// `#`..`######`.
    Heading(u8, Vec<Inline>),
    /// Lines of text.
    Paragraph(Vec<Inline>),
    /// A fenced code block, with its info string's first word.
    Code(Option<String>, String),
    /// A list: numbered (with its first number) or not; each item holds blocks of its own.
    List(Option<u64>, Vec<Vec<Block>>),
    /// `> `: a block quote.
    Quote(Vec<Block>),
    /// A GFM pipe table.
    Table(Table),
    /// `---`, `***` or `___`: a thematic break.
    Rule,
}

/// A pipe table: a header row, a delimiter row giving each column's alignment, then body rows; every row
/// has one cell per column.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Each column's alignment.
    pub align: Vec<Align>,
    /// The header's cells.
    pub head: Vec<Vec<Inline>>,
    /// The body's rows of cells.
    pub rows: Vec<Vec<Vec<Inline>>>,
}

/// How a table column is aligned (`:--`, `:-:`, `--:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// No colon.
    Default,
    /// `:--`.
    Left,
    /// `:-:`.
    Center,
    /// `--:`.
    Right,
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
    /// `[text](href)` or a bare URL; `safe` when the target is an http(s) URL.
    Link {
        /// The link's text.
        text: Vec<Inline>,
        /// Where it points.
        href: String,
        /// True for `http://` and `https://` targets, the only ones made clickable.
        safe: bool,
    },
}
