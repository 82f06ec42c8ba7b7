//! CI-26, the graceful stop: after SIGTERM the WAL is folded into the database file, which alone then holds
//! every change.

use std::sync::{Arc, Mutex};

use super::{Ledger, Recorder, integrity, without_agents};
use crate::harness::ServerBinary;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ci_26_shutdown_checkpoints_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let db = agentfarm::store::db_path(&dir.path().join("data"));
    let wal = dir.path().join("data/agentfarm.db-wal");
    let server = ServerBinary::spawn(without_agents(dir.path())).await;
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let recorder = Recorder::new(&server, Arc::clone(&ledger));
    let config = recorder.create_config("Folded", "task 1").await.unwrap();
    for n in 2..=5 {
        let task = format!("task {n}");
        recorder.update_config(&config.id, "Folded", &task).await.unwrap();
    }
    recorder.launch(&config.id).await.unwrap();
    let wal_size = std::fs::metadata(&wal).unwrap().len();
    assert!(wal_size > 0, "the changes wait in the WAL while the server runs");

    assert!(server.terminate().await.0.success());
    let left = std::fs::metadata(&wal).map(|m| m.len());
    assert!(
        left.as_ref().map_or(true, |&size| size == 0),
        "WAL left: {left:?}"
    );

    // The database file alone, copied elsewhere without its WAL, has everything.
    let alone = dir.path().join("alone.db");
    std::fs::copy(&db, &alone).unwrap();
    assert_eq!(integrity(&alone), "ok");
    let missing = ledger.lock().unwrap().missing_in(&alone);
    assert!(missing.is_empty(), "{missing:#?}");
}
