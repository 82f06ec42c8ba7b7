//! GFM pipe tables: a header row, then a delimiter row (`| --- | :-: | --: |`) with as many cells, then body
//! rows up to a blank line or a line without a pipe. Short rows are padded, long ones cut; `\|` is a pipe in
//! a cell.

use super::inline::inlines;
use super::{Align, Inline, Table};

/// The table whose header row is `lines[0]`, when `lines[1]` is its delimiter row, and how many lines it
/// takes.
pub fn table(lines: &[&str]) -> Option<(Table, usize)> {
    let [head, delimiter, body @ ..] = lines else {
        return None;
    };
    let head = cells(head)?;
    let align = cells(delimiter)?
        .into_iter()
        .map(alignment)
        .collect::<Option<Vec<Align>>>()?;
    if head.len() != align.len() {
        return None;
    }
    let rows: Vec<Vec<Vec<Inline>>> = body
        .iter()
        .map_while(|line| cells(line))
        .map(|row| {
            let mut row: Vec<Vec<Inline>> = row.into_iter().take(align.len()).map(inlines).collect();
            row.resize(align.len(), Vec::new());
            row
        })
        .collect();
    let used = 2 + rows.len();
    let head = head.into_iter().map(inlines).collect();
    Some((Table { align, head, rows }, used))
}

/// A row's cells, trimmed: split at pipes that are not escaped, without a leading and a trailing one.
/// `None` when the line has no pipe (a blank line has none).
fn cells(line: &str) -> Option<Vec<&str>> {
    let line = line.trim();
    if !line.contains('|') {
        return None;
    }
    let line = line.strip_prefix('|').unwrap_or(line);
    let mut cells = Vec::new();
    let (mut start, mut escaped) = (0, false);
    for (at, c) in line.char_indices() {
        if c == '|' && !escaped {
            cells.push(line[start..at].trim());
            start = at + 1;
        }
        escaped = c == '\\' && !escaped;
    }
    let last = line[start..].trim();
    if !last.is_empty() || start == 0 {
        cells.push(last);
    }
    Some(cells)
}

/// A delimiter cell's alignment: dashes with an optional colon at either end.
fn alignment(cell: &str) -> Option<Align> {
    let (left, rest) = cell.strip_prefix(':').map_or((false, cell), |rest| (true, rest));
    let (right, dashes) = rest.strip_suffix(':').map_or((false, rest), |rest| (true, rest));
    if dashes.is_empty() || dashes.bytes().any(|b| b != b'-') {
        return None;
    }
    Some(match (left, right) {
        (true, true) => Align::Center,
        (false, true) => Align::Right,
        (true, false) => Align::Left,
        (false, false) => Align::Default,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Vec<Inline> {
        vec![Inline::Text(s.to_owned())]
    }

    #[test]
    fn a_pipe_table_with_alignment() {
        let lines = [
            "| Name | `code` | Cost |",
            "|:-----|:------:|-----:|",
            "| a | **b** | 1 |",
            "c | d \\| e",
            "| f | g | h | extra |",
            "no pipe: after the table",
        ];
        let (table, used) = table(&lines).unwrap();
        assert_eq!(used, 5);
        assert_eq!(table.align, vec![Align::Left, Align::Center, Align::Right]);
        assert_eq!(
            table.head,
            vec![text("Name"), vec![Inline::Code("code".into())], text("Cost")]
        );
        assert_eq!(
            table.rows,
            vec![
                vec![text("a"), vec![Inline::Strong(text("b"))], text("1")],
                vec![text("c"), text("d | e"), vec![]],
                vec![text("f"), text("g"), text("h")],
            ]
        );
    }

    #[test]
    fn no_table_without_a_matching_delimiter_row() {
        assert!(table(&["a | b", "not a delimiter"]).is_none());
        assert!(
            table(&["a | b", "|---|---|---|"]).is_none(),
            "column counts differ"
        );
        assert!(table(&["a | b", "|-- | -x-|"]).is_none());
        assert!(table(&["a | b", "| : | - |"]).is_none());
        assert!(table(&["a | b"]).is_none());
        assert!(table(&["just text", "---"]).is_none());
        let (empty, used) = table(&["|a|", "|-|", ""]).unwrap();
        assert_eq!((empty.rows.len(), used), (0, 2));
    }

    #[test]
    fn cells_are_text_and_markup_only() {
        let (table, _) = table(&[
            "| <script>alert(1)</script> | [x](javascript:alert(1)) |",
            "|---|---|",
        ])
        .unwrap();
        assert_eq!(table.head[0], text("<script>alert(1)</script>"));
        assert!(matches!(&table.head[1][..], [Inline::Link { safe: false, .. }]));
    }
}
