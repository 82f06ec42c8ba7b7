//! Reading an agent's output as bounded lines: a line longer than [`MAX_LINE_BYTES`] keeps its start and
//! drops the rest, so one runaway line cannot take the server's memory.

use agentfarm_shared::log::{LogStream, MAX_LINE_BYTES};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};
use tokio::sync::mpsc;

/// Relays lines (at most [`MAX_LINE_BYTES`] each; the rest of a longer line is dropped) until EOF.
pub(super) async fn read_lines(
    mut reader: impl AsyncBufRead + Unpin,
    stream: LogStream,
    lines: mpsc::Sender<(LogStream, String)>,
) {
    let mut line = Vec::new();
    loop {
        line.clear();
        match read_bounded_line(&mut reader, &mut line).await {
            Ok(true) => {
                let text = String::from_utf8_lossy(&line)
                    .trim_end_matches(['\r', '\n'])
                    .to_owned();
                if lines.send((stream, text)).await.is_err() {
                    return;
                }
            }
            Ok(false) | Err(_) => return,
        }
    }
}

/// Reads one line into `line`, keeping at most [`MAX_LINE_BYTES`] (+ the newline). False at EOF.
pub(super) async fn read_bounded_line(
    reader: &mut (impl AsyncBufRead + Unpin),
    line: &mut Vec<u8>,
) -> std::io::Result<bool> {
    let mut read_any = false;
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(read_any);
        }
        read_any = true;
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..=i], true),
            None => (buf, false),
        };
        let room = (MAX_LINE_BYTES + 1).saturating_sub(line.len());
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let used = chunk.len();
        reader.consume(used);
        if done {
            return Ok(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::BufReader;

    use super::*;

    #[tokio::test]
    async fn long_lines_are_bounded_and_the_rest_is_dropped() {
        let mut input = vec![b'x'; MAX_LINE_BYTES * 2];
        input.extend_from_slice(b"\nshort\n");
        let mut reader = BufReader::new(&input[..]);
        let mut line = Vec::new();
        assert!(read_bounded_line(&mut reader, &mut line).await.unwrap());
        assert!(line.len() <= MAX_LINE_BYTES + 1);
        line.clear();
        assert!(read_bounded_line(&mut reader, &mut line).await.unwrap());
        assert_eq!(line, b"short\n");
        line.clear();
        assert!(!read_bounded_line(&mut reader, &mut line).await.unwrap());
    }
}
