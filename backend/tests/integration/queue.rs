//! The concurrency cap: launches beyond `max_running` wait as `queued` and start in order.

use agentfarm_shared::run::RunState;

use crate::harness::{PATIENCE, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_launch_waits_for_the_first() {
    let server = TestServer::start_with(|s| s.max_running = 1).await;
    let config = server.create_config("One at a time", "unused").await;
    let mut socket = server.socket().await;
    let first = server.launch(&config, "[[wait:first]] one").await;
    let second = server.launch(&config, "two").await;
    tokio::time::timeout(PATIENCE, server.model.parked("first"))
        .await
        .unwrap();
    assert_eq!(server.run(&first.id).await.state, RunState::Running);
    assert_eq!(
        server.run(&second.id).await.state,
        RunState::Queued,
        "the cap is 1"
    );

    server.model.release("first");
    let (first_done, _) = socket.until_state(&first.id, RunState::Succeeded).await;
    let (second_done, states) = socket.until_state(&second.id, RunState::Succeeded).await;
    assert_eq!(
        states,
        [RunState::Starting, RunState::Running, RunState::Succeeded]
    );
    assert!(
        second_done.started_at.unwrap() >= first_done.finished_at.unwrap(),
        "it started after the first ended"
    );
}
