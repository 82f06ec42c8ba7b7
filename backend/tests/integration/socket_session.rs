//! The socket session driven directly over channels, against a real store: a client that stops reading never
//! blocks producers (it falls behind, gets `resync`, then every line it missed, once, in order); a client that
//! asks for lines no longer kept gets a `gap` first.

use agentfarm::store::{NewLine, RunPatch};
use agentfarm_shared::log::LogStream;
use agentfarm_shared::ws::{ClientFrame, ServerFrame};
use chrono::Utc;

use crate::harness::ChannelClient;

const LINES: u64 = 2_000;
const PER_EVENT: u64 = 10;

fn lines(count: u64) -> Vec<NewLine> {
    (0..count)
        .map(|i| NewLine {
            ts: Utc::now(),
            stream: LogStream::Stdout,
            text: format!("line {i}"),
            truncated: false,
        })
        .collect()
}

#[tokio::test]
async fn ci_15_a_slow_client_resyncs_and_misses_nothing() {
    let (farm, _dir) = crate::harness::bare_farm(8, 1_000_000).await;
    let mut client = ChannelClient::connect(&farm);
    let first = client.next().await;
    assert!(matches!(first, ServerFrame::Snapshot { .. }), "{first:?}");
    client
        .send(&ClientFrame::Subscribe {
            run_id: "r1".into(),
            after_seq: 0,
        })
        .await;

    // Produce far more than the hub holds while the client reads nothing: this must not wait for it.
    for _ in 0..LINES / PER_EVENT {
        let (stored, _) = farm
            .store()
            .append_logs(
                "r1".into(),
                lines(PER_EVENT),
                RunPatch::default(),
                1_000_000,
                Utc::now(),
            )
            .await
            .unwrap();
        farm.hub().log_stored("r1", stored.into());
    }

    let mut resynced = false;
    let mut seqs = Vec::new();
    while seqs.last() != Some(&LINES) {
        match client.next().await {
            ServerFrame::Resync => resynced = true,
            ServerFrame::Log { run_id, lines } => {
                assert_eq!(run_id, "r1");
                seqs.extend(lines.iter().map(|line| line.seq));
            }
            ServerFrame::Snapshot { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        resynced,
        "the client fell 200 events behind a hub of 8 and was not told"
    );
    assert_eq!(
        seqs,
        (1..=LINES).collect::<Vec<_>>(),
        "every line exactly once, in order"
    );
}

#[tokio::test]
async fn ci_14_lines_no_longer_kept_are_announced_by_a_gap() {
    let (farm, _dir) = crate::harness::bare_farm(64, 100).await;
    farm.store()
        .append_logs("r1".into(), lines(300), RunPatch::default(), 100, Utc::now())
        .await
        .unwrap();
    let page = farm.store().logs("r1".into(), 0, 1_000).await.unwrap();
    assert_eq!(
        (page.gap, page.lines.len(), page.last_seq),
        (Some((1, 200)), 100, 300)
    );

    let mut client = ChannelClient::connect(&farm);
    client.next().await;
    client
        .send(&ClientFrame::Subscribe {
            run_id: "r1".into(),
            after_seq: 50,
        })
        .await;
    assert_eq!(
        client.next().await,
        ServerFrame::Gap {
            run_id: "r1".into(),
            from_seq: 51,
            to_seq: 200
        }
    );
    let ServerFrame::Log { lines, .. } = client.next().await else {
        panic!("no lines after the gap")
    };
    assert_eq!(
        lines.iter().map(|l| l.seq).collect::<Vec<_>>(),
        (201..=300).collect::<Vec<_>>()
    );

    // A client that is up to date gets no gap.
    client
        .send(&ClientFrame::Subscribe {
            run_id: "r1".into(),
            after_seq: 300,
        })
        .await;
    client.send(&ClientFrame::Ping).await;
    assert_eq!(client.next().await, ServerFrame::Pong);
}
