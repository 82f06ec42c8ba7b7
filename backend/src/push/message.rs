//! What a notification says: the title and body for each kind of event, the page a tap opens, the tag that
//! keeps one notification per run, and the headers that go with it (TTL, Urgency, Topic).

use agentfarm_shared::push::{DECLARATIVE_WEB_PUSH, Notification, PushPayload};
use agentfarm_shared::run::Run;

use crate::store::PushKind;

/// Most characters of a run's error or reason in a notification (the whole payload must stay under 4 KB).
const MAX_DETAIL_CHARS: usize = 300;

/// The notification for `kind` about `run`; `base_url` is where the app is served, `badge` the runs waiting.
pub fn payload(kind: PushKind, run: Option<&Run>, base_url: &str, badge: u32) -> PushPayload {
    let (title, body) = match (kind, run) {
        (PushKind::Test, _) | (_, None) => (
            "agentfarm".to_owned(),
            "Notifications work on this device.".to_owned(),
        ),
        (PushKind::Succeeded, Some(run)) => {
            let mut body = match &run.pr_url {
                Some(url) => format!("Pull request: {url}"),
                None => "Finished.".to_owned(),
            };
            if let Some(cost) = run.cost_usd {
                body.push_str(&format!(" Cost ${cost:.2}"));
            }
            if let Some(turns) = run.turns {
                body.push_str(&format!(", {turns} turns"));
            }
            (format!("{} finished", run.config_id), body)
        }
        (PushKind::Failed, Some(run)) => (
            format!("{} failed", run.config_id),
            clip(
                run.last_error
                    .as_deref()
                    .or(run.reason.as_deref())
                    .unwrap_or("It failed."),
            ),
        ),
        (PushKind::WaitingForInput, Some(run)) => (
            format!("{} needs you", run.config_id),
            "The agent finished its turn and waits for a follow-up.".to_owned(),
        ),
        (PushKind::LimitHit, Some(run)) => (
            format!("{} hit the usage limit", run.config_id),
            match run.limit_resets_at {
                Some(at) => format!(
                    "The subscription's limit resets at {} UTC; queued work resumes then.",
                    at.format("%H:%M")
                ),
                None => "The subscription's usage limit stopped the agent.".to_owned(),
            },
        ),
    };
    let base = base_url.trim_end_matches('/');
    PushPayload {
        web_push: DECLARATIVE_WEB_PUSH,
        notification: Notification {
            title,
            body,
            navigate: match run {
                Some(run) => format!("{base}/runs/{}", run.id),
                None => format!("{base}/settings"),
            },
            tag: run.map(|run| format!("run-{}", run.id)),
            app_badge: Some(badge),
        },
        run_id: run.map(|run| run.id.clone()),
    }
}

/// `text` as one short line of plain text: terminal escape sequences dropped, other control characters
/// (newlines too) turned into spaces, cut at [`MAX_DETAIL_CHARS`].
fn clip(text: &str) -> String {
    let mut plain = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            // CSI (`ESC [ … final`), OSC (`ESC ] … BEL`) and two-character escapes.
            '\u{1b}' => match chars.next() {
                Some('[') => while chars.next().is_some_and(|c| !('@'..='~').contains(&c)) {},
                Some(']') => while chars.next().is_some_and(|c| c != '\u{7}' && c != '\u{1b}') {},
                _ => {}
            },
            c if c.is_control() => plain.push(' '),
            c => plain.push(c),
        }
    }
    let mut clipped: String = plain.chars().take(MAX_DETAIL_CHARS).collect();
    if clipped.len() < plain.len() {
        clipped.push('…');
    }
    clipped
}

/// Seconds a push service keeps an undelivered notification.
pub fn ttl(kind: PushKind) -> u32 {
    match kind {
        PushKind::Test => 60,
        _ => 24 * 3600,
    }
}

/// The Urgency header (RFC 8030): how soon the device should wake for it.
pub fn urgency(kind: PushKind) -> &'static str {
    match kind {
        PushKind::Succeeded | PushKind::Test => "normal",
        PushKind::Failed | PushKind::WaitingForInput | PushKind::LimitHit => "high",
    }
}

/// The Topic header: a newer notification about the same run (or a newer test) replaces an undelivered
/// older one.
pub fn topic(run: Option<&Run>) -> String {
    match run {
        Some(run) => format!("run-{}", run.id).chars().take(32).collect(),
        None => "test".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CI-12, notifications: title and body are short plain text whatever the agent printed.
    #[test]
    fn ci_12_notifications_are_short_plain_text() {
        assert_eq!(
            clip("\u{1b}[1;31merror:\u{1b}[0m <b>bad</b>\nnext\u{1b}]0;t\u{7}\tend"),
            "error: <b>bad</b> next end"
        );
        assert_eq!(clip(&"é".repeat(1000)).chars().count(), MAX_DETAIL_CHARS + 1);
    }

    #[test]
    fn payloads_stay_small_and_say_what_happened() {
        let mut run: Run = serde_json::from_value(serde_json::json!({
            "id": "01jz0000000000000000000000", "config_id": "fix-bugs", "config_version": 1, "prompt": "p",
            "state": "failed", "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
            "last_seq": 0
        }))
        .unwrap();
        run.last_error = Some("x".repeat(10_000));
        let payload = payload(PushKind::Failed, Some(&run), "https://farm.example.ts.net/", 2);
        assert_eq!(payload.notification.title, "fix-bugs failed");
        assert_eq!(
            payload.notification.navigate,
            "https://farm.example.ts.net/runs/01jz0000000000000000000000"
        );
        assert!(serde_json::to_vec(&payload).unwrap().len() < 3_000);
        assert_eq!(topic(Some(&run)).len(), 30);
        assert_eq!(topic(None), "test");
    }

    #[test]
    fn the_limit_notification_says_when_work_resumes() {
        let mut run: Run = serde_json::from_value(serde_json::json!({
            "id": "01jz0000000000000000000000", "config_id": "fix-bugs", "config_version": 1, "prompt": "p",
            "state": "failed", "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
            "last_seq": 0, "limit_resets_at": "2026-01-01T11:06:00Z"
        }))
        .unwrap();
        let known = payload(PushKind::LimitHit, Some(&run), "https://farm.example.ts.net", 0);
        assert_eq!(
            known.notification.body,
            "The subscription's limit resets at 11:06 UTC; queued work resumes then."
        );
        run.limit_resets_at = None;
        let unknown = payload(PushKind::LimitHit, Some(&run), "https://farm.example.ts.net", 0);
        assert!(unknown.notification.body.contains("usage limit"));
    }
}
