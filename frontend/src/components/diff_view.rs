//! A unified diff, readable on a phone (`.diff-view`): one `details.diff-file[data-path]` per file, open
//! unless it is long (more than [`FOLD_LINES`] lines: folded, its summary says how many), each line a
//! `.dl` classed `dl-add`, `dl-del`, `dl-hunk` or `dl-ctx`, wrapped rather than scrolled sideways.

use yew::prelude::*;

use crate::util::concat;

/// Files with more lines than this start folded.
pub const FOLD_LINES: usize = 80;

/// What a line of a file's diff is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Added,
    Removed,
    Hunk,
    Context,
}

impl Kind {
    fn class(self) -> &'static str {
        match self {
            Kind::Added => "dl dl-add",
            Kind::Removed => "dl dl-del",
            Kind::Hunk => "dl dl-hunk",
            Kind::Context => "dl dl-ctx",
        }
    }
}

/// One file of a patch: its path (the new one; the old one for a deletion) and its lines after the headers.
#[derive(Debug, PartialEq, Eq)]
struct FilePatch<'a> {
    path: &'a str,
    lines: Vec<(Kind, &'a str)>,
}

/// Splits `git diff` output into files. Header lines (`index`, `---`, `+++`, modes, renames) are dropped;
/// a patch cut mid-file keeps what it has.
fn files(patch: &str) -> Vec<FilePatch<'_>> {
    let mut files: Vec<FilePatch<'_>> = Vec::new();
    let mut in_hunk = false;
    for line in patch.lines() {
        if let Some(names) = line.strip_prefix("diff --git ") {
            // `a/old b/new`: the new path is after the last " b/".
            let path = names.rsplit_once(" b/").map_or(names, |(_, new)| new);
            files.push(FilePatch {
                path,
                lines: Vec::new(),
            });
            in_hunk = false;
            continue;
        }
        let Some(file) = files.last_mut() else { continue };
        let kind = if line.starts_with("@@") {
            in_hunk = true;
            Kind::Hunk
        } else if !in_hunk {
            continue;
        } else if line.starts_with('+') {
            Kind::Added
        } else if line.starts_with('-') {
            Kind::Removed
        } else {
            Kind::Context
        };
        file.lines.push((kind, line));
    }
    files
}

/// Props of [`DiffView`].
#[derive(Properties, PartialEq)]
pub struct Props {
    /// The unified diff.
    pub patch: AttrValue,
}

/// The patch, file by file.
#[component]
pub fn DiffView(props: &Props) -> Html {
    html! {
        <div class="diff-view">
            { for files(&props.patch).into_iter().map(|file| {
                let long = file.lines.len() > FOLD_LINES;
                html! {
                    <details class="diff-file" data-path={file.path.to_owned()} open={!long}>
                        <summary class="mono">
                            { file.path }
                            if long {
                                <span class="muted">{ concat(&[" · ", &file.lines.len().to_string(), " lines"]) }</span>
                            }
                        </summary>
                        <pre class="diff-body">
                            { for file.lines.iter().map(|(kind, text)| html! {
                                <span class={kind.class()}>{ *text }</span>
                            }) }
                        </pre>
                    </details>
                }
            }) }
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATCH: &str = "diff --git a/src/lib.rs b/src/lib.rs
index 1111111..2222222 100644
--- a/src/lib.rs
+++ b/src/lib.rs
@@ -1,3 +1,3 @@ fn main()
 keep
-old line
+new line
diff --git a/docs/old name.md b/docs/new name.md
similarity index 90%
rename from docs/old name.md
rename to docs/new name.md
--- a/docs/old name.md
+++ b/docs/new name.md
@@ -2 +2 @@
--- a rule that starts with dashes
+++ a line that starts with pluses
";

    #[test]
    fn files_hunks_and_lines_are_told_apart() {
        let files = files(PATCH);
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].path, "src/lib.rs");
        assert_eq!(
            files[0].lines,
            [
                (Kind::Hunk, "@@ -1,3 +1,3 @@ fn main()"),
                (Kind::Context, " keep"),
                (Kind::Removed, "-old line"),
                (Kind::Added, "+new line"),
            ]
        );
        assert_eq!(files[1].path, "docs/new name.md");
        assert_eq!(
            files[1].lines[1..],
            [
                (Kind::Removed, "--- a rule that starts with dashes"),
                (Kind::Added, "+++ a line that starts with pluses"),
            ],
            "inside a hunk, --- and +++ are content, not headers"
        );
    }

    #[test]
    fn a_cut_patch_and_junk_before_the_first_file_are_kept_safe() {
        assert!(files("").is_empty());
        assert!(files("not a diff\n+++ nothing\n").is_empty());
        let cut = files("diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b");
        assert_eq!(cut[0].lines.len(), 3);
    }
}
