//! git's pkt-line framing (gitprotocol-common, gitprotocol-pack): reading the ref updates at the head of a push,
//! and writing the answers the git proxy gives instead of forwarding.

/// The flush packet, which ends a section.
pub const FLUSH: &[u8] = b"0000";

/// `payload` as one pkt-line.
pub fn line(payload: &[u8]) -> Vec<u8> {
    let mut out = format!("{:04x}", payload.len() + 4).into_bytes();
    out.extend_from_slice(payload);
    out
}

/// One ref update of a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// The ref's object before (the zero id: created).
    pub old: String,
    /// The ref's object after (the zero id: deleted).
    pub new: String,
    /// The ref, e.g. `refs/heads/main`.
    pub name: String,
}

impl Update {
    /// True when the update deletes the ref.
    pub fn deletes(&self) -> bool {
        self.new.bytes().all(|byte| byte == b'0')
    }
}

/// The head of a push request, once it is complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushHead {
    /// The ref updates.
    pub updates: Vec<Update>,
    /// The capabilities the client asked for (after the first update's NUL).
    pub capabilities: Vec<String>,
}

/// Reading the head of a push from what has arrived so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head {
    /// More bytes are needed.
    Incomplete,
    /// The updates, up to and including their flush packet.
    Complete(PushHead),
    /// Not a push git would send.
    Invalid(String),
}

/// Reads the update requests at the start of a `git-receive-pack` request body: optional `shallow` lines, then
/// `old new ref` lines (the first with `\0capabilities`), then a flush.
pub fn push_head(buffer: &[u8]) -> Head {
    let mut head = PushHead {
        updates: Vec::new(),
        capabilities: Vec::new(),
    };
    let mut at = 0;
    loop {
        let Some(length) = buffer.get(at..at + 4) else {
            return Head::Incomplete;
        };
        let Some(length) = std::str::from_utf8(length)
            .ok()
            .and_then(|hex| usize::from_str_radix(hex, 16).ok())
        else {
            return Head::Invalid("a pkt-line length is not hexadecimal".into());
        };
        if length == 0 {
            return if head.updates.is_empty() {
                Head::Invalid("the push updates no ref".into())
            } else {
                Head::Complete(head)
            };
        }
        if length < 4 {
            return Head::Invalid(format!("unexpected pkt-line of length {length}"));
        }
        let Some(payload) = buffer.get(at + 4..at + length) else {
            return Head::Incomplete;
        };
        at += length;
        let payload = payload.strip_suffix(b"\n").unwrap_or(payload);
        let (command, capabilities) = match payload.iter().position(|&byte| byte == 0) {
            Some(nul) => (&payload[..nul], Some(&payload[nul + 1..])),
            None => (payload, None),
        };
        let Ok(command) = std::str::from_utf8(command) else {
            return Head::Invalid("a ref update is not UTF-8".into());
        };
        if command.starts_with("shallow ") && head.updates.is_empty() {
            continue;
        }
        let mut fields = command.splitn(3, ' ');
        let (Some(old), Some(new), Some(name)) = (fields.next(), fields.next(), fields.next()) else {
            return Head::Invalid(format!("{command:?} is not a ref update"));
        };
        if !(is_object_id(old) && is_object_id(new) && name.starts_with("refs/")) {
            return Head::Invalid(format!("{command:?} is not a ref update"));
        }
        if let Some(capabilities) = capabilities {
            head.capabilities = String::from_utf8_lossy(capabilities)
                .split(' ')
                .filter(|cap| !cap.is_empty())
                .map(str::to_owned)
                .collect();
        }
        head.updates.push(Update {
            old: old.to_owned(),
            new: new.to_owned(),
            name: name.to_owned(),
        });
    }
}

/// A SHA-1 or SHA-256 object id in hex.
fn is_object_id(text: &str) -> bool {
    matches!(text.len(), 40 | 64) && text.bytes().all(|byte| byte.is_ascii_hexdigit())
}

/// The answer of a push whose every update is refused, with `why` for each, in the report-status format the
/// client asked for (inside side-band channel 1 when it asked for side-band), so that git prints
/// `! [remote rejected] … (why)`; `notice` also goes to the client's terminal as `remote: notice`.
pub fn refusal(head: &PushHead, why: &[String], notice: &str) -> Vec<u8> {
    let mut report = line(b"unpack ok\n");
    for (update, why) in head.updates.iter().zip(why) {
        report.extend(line(format!("ng {} {why}\n", update.name).as_bytes()));
    }
    report.extend_from_slice(FLUSH);
    let side_band = head
        .capabilities
        .iter()
        .any(|cap| cap == "side-band-64k" || cap == "side-band");
    if !side_band {
        return report;
    }
    let mut out = Vec::new();
    let mut band = |number: u8, data: &[u8]| {
        // Side-band packets carry at most 65515 bytes (999 for plain side-band); a report is far smaller.
        for piece in data.chunks(990) {
            let mut payload = vec![number];
            payload.extend_from_slice(piece);
            out.extend(line(&payload));
        }
    };
    band(2, format!("{notice}\n").as_bytes());
    band(1, &report);
    out.extend_from_slice(FLUSH);
    out
}

/// An advertisement that makes git stop with `fatal: remote error: message`.
pub fn error_advertisement(service: &str, message: &str) -> Vec<u8> {
    let mut out = line(format!("# service={service}\n").as_bytes());
    out.extend_from_slice(FLUSH);
    out.extend(line(format!("ERR {message}\n").as_bytes()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";
    /// The object id of "no object": an update from it creates a ref, an update to it deletes one.
    const ZERO_ID: &str = "0000000000000000000000000000000000000000";

    fn push(lines: &[&str]) -> Vec<u8> {
        let mut out: Vec<u8> = lines.iter().flat_map(|l| line(l.as_bytes())).collect();
        out.extend_from_slice(FLUSH);
        out.extend_from_slice(b"PACK....");
        out
    }

    #[test]
    fn a_push_head_is_read_across_any_split() {
        let body = push(&[
            &format!("shallow {A}"),
            &format!("{ZERO_ID} {A} refs/heads/agentfarm/x\0report-status side-band-64k agent=git/2.47"),
            &format!("{A} {ZERO_ID} refs/heads/old\n"),
        ]);
        let flush = body.windows(4).position(|w| w == FLUSH).unwrap();
        for cut in 0..flush + 4 {
            assert_eq!(push_head(&body[..cut]), Head::Incomplete, "cut at {cut}");
        }
        let Head::Complete(head) = push_head(&body) else {
            panic!("{:?}", push_head(&body));
        };
        assert_eq!(
            head.capabilities,
            ["report-status", "side-band-64k", "agent=git/2.47"]
        );
        assert_eq!(head.updates.len(), 2);
        assert_eq!(head.updates[0].name, "refs/heads/agentfarm/x");
        assert!(!head.updates[0].deletes());
        assert!(head.updates[1].deletes());
    }

    #[test]
    fn garbage_is_invalid() {
        assert!(matches!(push_head(b"zzzz"), Head::Invalid(_)));
        assert!(matches!(push_head(b"0000"), Head::Invalid(_)));
        assert!(matches!(push_head(&push(&["not an update"])), Head::Invalid(_)));
    }

    #[test]
    fn a_refusal_reports_every_ref_in_the_side_band_when_asked() {
        let head = PushHead {
            updates: vec![Update {
                old: A.into(),
                new: B.into(),
                name: "refs/heads/main".into(),
            }],
            capabilities: vec!["report-status".into()],
        };
        let plain = refusal(&head, &["not yours".into()], "agentfarm: no");
        let report = [
            line(b"unpack ok\n"),
            line(b"ng refs/heads/main not yours\n"),
            FLUSH.to_vec(),
        ]
        .concat();
        assert_eq!(plain, report);
        let head = PushHead {
            capabilities: vec!["report-status".into(), "side-band-64k".into()],
            ..head
        };
        let banded = refusal(&head, &["not yours".into()], "agentfarm: no");
        let mut channel_one = vec![1];
        channel_one.extend_from_slice(&report);
        let expected = [line(b"\x02agentfarm: no\n"), line(&channel_one), FLUSH.to_vec()].concat();
        assert_eq!(banded, expected);
    }
}
