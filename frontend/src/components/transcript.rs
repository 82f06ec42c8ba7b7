//! The live transcript of a run (`#transcript`, one `.tl[data-seq][data-kind]` per shown item) and its raw
//! log (`#raw-log`, one `.raw-line[data-seq]` per line). Each line renders once: a line's component only
//! re-renders when the line itself changes, which it never does.

use std::rc::Rc;

use agentfarm_shared::log::LogStream;
use agentfarm_shared::runner::RunnerEvent;
use yew::prelude::*;

use crate::components::countdown::Countdown;
use crate::components::diff_view::DiffView;
use crate::components::icon::{CLOCK, icon};
use crate::markdown;
use crate::state::RunLog;
use crate::time;
use crate::transcript::{Item, ParsedLine, diff_totals, first_line, tool_label};
use crate::util::{concat, join};

/// Props of [`Transcript`].
#[derive(Properties, Clone)]
pub struct Props {
    /// The run's log as the client holds it.
    pub log: Rc<RunLog>,
    /// Show every line verbatim instead.
    pub raw: bool,
}

impl PartialEq for Props {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.log, &other.log) && self.raw == other.raw
    }
}

/// The transcript or the raw log.
#[component]
pub fn Transcript(props: &Props) -> Html {
    let log = &props.log;
    if log.lines.is_empty() && log.gaps.is_empty() {
        return html! { <p id="transcript" class="transcript-empty muted">{ "No output yet." }</p> };
    }
    if props.raw {
        return html! {
            <ol id="raw-log" class="raw-log">
                { for log.lines.iter().map(|l| html! { <RawLine key={l.line.seq} line={Shared(l.clone())} /> }) }
            </ol>
        };
    }
    let mut gaps = log.gaps.clone();
    crate::util::sort_by(&mut gaps, Ord::cmp);
    let mut gaps = gaps.into_iter().peekable();
    let mut nodes = Vec::with_capacity(log.lines.len());
    for line in &log.lines {
        while let Some(&(from, to)) = gaps.peek().filter(|(_, to)| *to < line.line.seq) {
            nodes.push(gap(from, to));
            gaps.next();
        }
        if !line.items.is_empty() {
            nodes.push(html! { <LineView key={line.line.seq} line={Shared(line.clone())} /> });
        }
    }
    nodes.extend(gaps.map(|(from, to)| gap(from, to)));
    html! { <div id="transcript" class="transcript" aria-live="off">{ for nodes }</div> }
}

fn gap(from: u64, to: u64) -> Html {
    html! {
        <div key={format!("gap-{from}")} class="tl tl-gap" data-kind="gap">
            { format!("Lines {from}–{to} are no longer kept.") }
        </div>
    }
}

/// A shared line, equal only to itself (lines never change, so pointer equality is enough).
#[derive(Clone)]
pub struct Shared(pub Rc<ParsedLine>);

impl PartialEq for Shared {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

/// Props of one line.
#[derive(Properties, PartialEq)]
pub struct LineProps {
    /// The line.
    pub line: Shared,
}

/// A line's items.
#[component]
pub fn LineView(props: &LineProps) -> Html {
    let parsed = &props.line.0;
    let seq = parsed.line.seq;
    html! {
        <>
            { for parsed.items.iter().map(|item| item_view(seq, item, parsed.line.truncated)) }
        </>
    }
}

/// A line verbatim.
#[component]
pub fn RawLine(props: &LineProps) -> Html {
    let line = &props.line.0.line;
    html! {
        <li class={raw_line_class(line.stream)}
            data-seq={line.seq.to_string()} data-stream={line.stream.as_str()}>
            <span class="raw-seq">{ line.seq }</span>
            <span class="raw-text">{ &line.text }</span>
            if line.truncated { <span class="raw-cut">{ " [truncated]" }</span> }
        </li>
    }
}

fn item_view(seq: u64, item: &Item, truncated: bool) -> Html {
    let seq_attr = seq.to_string();
    let cut = truncated.then(|| html! { <span class="muted">{ " [line truncated]" }</span> });
    match item {
        Item::Text(text) => tl(
            "tl tl-assistant md",
            seq_attr,
            "assistant",
            markdown::render(text),
        ),
        Item::Thinking(text) => html! {
            <details class="tl tl-thinking" data-seq={seq_attr} data-kind="thinking">
                <summary>{ "Thinking" }</summary>
                <div class="pre-wrap">{ text.clone() }</div>
            </details>
        },
        Item::ToolCall { name, summary, input } => html! {
            <details class="tl tl-tool" data-seq={seq_attr} data-kind="tool_call" data-tool={name.clone()}>
                <summary><span class="tool-label">{ tool_label(name, summary) }</span></summary>
                <pre>{ input.clone() }{ cut }</pre>
            </details>
        },
        Item::ToolResult { text, is_error } => {
            let classes = if *is_error {
                "tl tl-tool-result error"
            } else {
                "tl tl-tool-result"
            };
            let first = first_line(text).to_owned();
            let more = text.trim().lines().count() > 1 || first.chars().count() > 120;
            let first = if first.is_empty() {
                "(no output)".to_owned()
            } else {
                first
            };
            if more {
                html! {
                    <details class={classes} data-seq={seq_attr} data-kind="tool_result">
                        <summary><span class="result-first">{ crate::transcript::shorten(&first, 120) }</span></summary>
                        <pre>{ text.clone() }{ cut }</pre>
                    </details>
                }
            } else {
                tl(classes, seq_attr, "tool_result", Html::from(first))
            }
        }
        Item::User(text) => html! {
            <div class="tl tl-user" data-seq={seq_attr} data-kind="user">
                <div class="bubble pre-wrap">{ text.clone() }</div>
            </div>
        },
        Item::ApiError(message) => tl(
            "tl tl-error",
            seq_attr,
            "api_error",
            text_node(join("API error: ", message)),
        ),
        Item::SessionStarted { model } => tl(
            "tl tl-session muted",
            seq_attr,
            "session",
            text_node(match model {
                Some(model) => join("session started · ", model),
                None => "session started".to_owned(),
            }),
        ),
        Item::TurnResult {
            turns,
            cost_usd,
            duration_ms,
            error,
        } => {
            let mut parts = vec!["Turn finished".to_owned()];
            if let Some(turns) = turns {
                parts.push(join(&turns.to_string(), " turns"));
            }
            if let Some(cost) = cost_usd {
                parts.push(time::usd(*cost));
            }
            if let Some(ms) = duration_ms {
                parts.push(time::duration((*ms / 1_000) as i64));
            }
            html! {
                <div class={if error.is_some() { "tl tl-turn error" } else { "tl tl-turn" }} data-seq={seq_attr} data-kind="result">
                    <div>{ parts.join(" · ") }</div>
                    if let Some(error) = error { <div class="pre-wrap">{ error.clone() }</div> }
                </div>
            }
        }
        Item::LimitNotice { resets_at, message } => limit(seq_attr, message, *resets_at),
        Item::Runner(event) => runner_view(seq_attr, event),
        Item::Stderr(text) => tl(
            "tl tl-stderr mono pre-wrap",
            seq_attr,
            "stderr",
            with_cut(text, cut),
        ),
        Item::Control(text) => tl(
            "tl tl-control muted",
            seq_attr,
            "control",
            text_node(text.clone()),
        ),
        Item::Plain(text) => tl(
            "tl tl-plain mono pre-wrap",
            seq_attr,
            "plain",
            with_cut(text, cut),
        ),
    }
}

fn limit(seq_attr: String, message: &str, resets_at: Option<i64>) -> Html {
    html! {
        <div class="tl tl-limit" data-seq={seq_attr} data-kind="limit">
            { icon(CLOCK) }{ " " }{ message }
            if let Some(at) = resets_at.and_then(time::from_unix) {
                { " · resets " }<Countdown at={at} />
            }
        </div>
    }
}

fn runner_view(seq_attr: String, event: &RunnerEvent) -> Html {
    let note = |kind: &'static str, text: String| tl("tl tl-runner", seq_attr.clone(), kind, text_node(text));
    match event {
        RunnerEvent::Cloning { repo } => note("cloning", concat(&["Cloning ", repo, "…"])),
        RunnerEvent::Cloned {
            repo,
            branch,
            continued,
            ..
        } => note(
            "cloned",
            concat(&[
                "Cloned ",
                repo,
                " on ",
                branch,
                if *continued { " (continued)" } else { "" },
            ]),
        ),
        RunnerEvent::Committed { commit, message, .. } => note(
            "committed",
            concat(&["Committed ", short_commit(commit), ": ", message]),
        ),
        RunnerEvent::Pushed { branch, commit, .. } => note(
            "pushed",
            concat(&["Pushed ", branch, " (", short_commit(commit), ")"]),
        ),
        RunnerEvent::PrOpened {
            repo,
            number,
            url,
            updated,
        } => html! {
            <div class="tl tl-runner tl-pr" data-seq={seq_attr} data-kind="pr_opened">
                { concat(&["Pull request ", if *updated { "updated" } else { "opened" }, " · ", repo, " "]) }
                if markdown::is_web_url(url) {
                    <a href={url.clone()} target="_blank" rel="noopener noreferrer">{ join("#", &number.to_string()) }</a>
                } else {
                    { join("#", &number.to_string()) }
                }
            </div>
        },
        RunnerEvent::Diff {
            repo,
            files,
            patch,
            truncated,
        } => {
            let (added, removed) = diff_totals(files);
            html! {
                <details class="tl tl-runner tl-diff" data-seq={seq_attr} data-kind="diff">
                    <summary>
                        { concat(&[repo, ": ", &crate::transcript::files(files.len() as u64), " "]) }
                        { added_removed(added, removed) }
                    </summary>
                    <ul class="diff-files">
                        { for files.iter().map(|f| html! {
                            <li>
                                <span class="mono">{ &f.path }</span>{ " " }
                                { match (f.added, f.removed) {
                                    (Some(a), Some(r)) => added_removed(a, r),
                                    _ => html! { <span class="muted">{ "binary" }</span> },
                                } }
                            </li>
                        }) }
                    </ul>
                    if !patch.is_empty() {
                        <details class="patch">
                            <summary>{ if *truncated { "Patch (cut)" } else { "Patch" } }</summary>
                            <DiffView patch={AttrValue::from(patch.clone())} />
                        </details>
                    }
                </details>
            }
        }
        RunnerEvent::LimitHit { resets_at, message } => limit(seq_attr, message, *resets_at),
        RunnerEvent::Error { stage, message } => tl(
            "tl tl-error",
            seq_attr,
            "runner_error",
            text_node(concat(&[stage, " failed: ", message])),
        ),
    }
}

/// One transcript item: `div.tl[data-seq][data-kind]` holding `body`.
#[inline(never)]
fn tl(class: &'static str, seq_attr: String, kind: &'static str, body: Html) -> Html {
    html! { <div class={class} data-seq={seq_attr} data-kind={kind}>{ body }</div> }
}

#[inline(never)]
fn text_node(text: String) -> Html {
    Html::from(text)
}

/// Text, then the truncation mark if any.
#[inline(never)]
fn with_cut(text: &str, cut: Option<Html>) -> Html {
    html! { <>{ text.to_owned() }{ cut }</> }
}

/// `+added −removed` as two spans.
#[inline(never)]
pub fn added_removed(added: u64, removed: u64) -> Html {
    html! { <>
        <span class="added">{ join("+", &added.to_string()) }</span>{ " " }
        <span class="removed">{ join("−", &removed.to_string()) }</span>
    </> }
}

fn short_commit(commit: &str) -> &str {
    commit.get(..7).unwrap_or(commit)
}

/// The classes of a raw log line: `raw-line stream-<stream>`.
fn raw_line_class(stream: LogStream) -> &'static str {
    match stream {
        LogStream::Stdout => "raw-line stream-stdout",
        LogStream::Stderr => "raw-line stream-stderr",
        LogStream::Control => "raw-line stream-control",
    }
}
