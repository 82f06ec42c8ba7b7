//! CI-22: the real server, SIGKILLed again and again at a random point while clients change things, keeps
//! every change it acknowledged, stays sound, and never applies a migration twice.

use std::sync::{Arc, Mutex};

use agentfarm_shared::run::Run;
use tokio::task::JoinSet;

use super::{Ledger, Recorder, Rng, applied_migrations, integrity, without_agents};
use crate::harness::{ServerBinary, within};

/// Kills, each after a fresh start on the same data dir.
const KILLS: usize = 24;
/// Clients changing things at once, so that a kill lands while some requests are in flight.
const CLIENTS: usize = 4;
/// Acknowledged changes between a start and its kill, drawn from this range: about 1000 over all kills.
const ACKS_PER_KILL: (usize, usize) = (10, 75);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ci_22_sigkill_durability() {
    let mut rng = Rng::from_env();
    let dir = tempfile::tempdir().unwrap();
    let db = agentfarm::store::db_path(&dir.path().join("data"));
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut first_migrations = None;
    let mut acknowledged = 0;
    for kill in 1..=KILLS {
        let server = ServerBinary::spawn(without_agents(dir.path())).await;
        let recorder = Recorder::new(&server, Arc::clone(&ledger));
        let mut acks = recorder.acks();
        let target = rng.between(ACKS_PER_KILL.0, ACKS_PER_KILL.1);
        let mut clients = JoinSet::new();
        for client in 0..CLIENTS {
            let name = format!("k{kill} c{client}");
            clients.spawn(change_things(Arc::clone(&recorder), name, rng.fork()));
        }
        within(async {
            tokio::select! {
                reached = acks.wait_for(|n| *n >= target) => drop(reached.unwrap()),
                Some(client) = clients.join_next() => {
                    client.unwrap();
                    panic!("a client stopped while the server was up");
                }
            }
        })
        .await;
        recorder.going();
        server.kill().await;
        within(async {
            while let Some(client) = clients.join_next().await {
                client.unwrap();
            }
        })
        .await;
        acknowledged += *acks.borrow();

        let context = format!("after kill {kill} of {KILLS} (the seed is printed above)");
        assert_eq!(integrity(&db), "ok", "{context}");
        let missing = ledger.lock().unwrap().missing_in(&db);
        assert!(missing.is_empty(), "{context}: {missing:#?}");
        let applied = applied_migrations(&db);
        match &first_migrations {
            None => first_migrations = Some(applied),
            Some(first) => assert_eq!(&applied, first, "{context}: migrations ran again"),
        }
    }
    println!("{acknowledged} acknowledged changes survived {KILLS} kills");
}

/// Creates and edits configs, launches, stops and deletes runs, in an order drawn from `rng`, until the
/// server is gone.
async fn change_things(recorder: Arc<Recorder>, name: String, mut rng: Rng) {
    let mut configs: Vec<String> = Vec::new();
    let mut runs: Vec<Run> = Vec::new();
    for n in 0.. {
        let roll = rng.between(0, 99);
        let (ended, open): (Vec<usize>, Vec<usize>) =
            (0..runs.len()).partition(|&i| runs[i].state.is_terminal());
        let mut pick = |among: usize| rng.between(0, among - 1);
        let answered = if configs.is_empty() || roll < 15 {
            let config = recorder
                .create_config(&format!("{name} n{n}"), &format!("{name} task {n}"))
                .await;
            config.map(|config| configs.push(config.id))
        } else if roll < 30 {
            let id = &configs[pick(configs.len())];
            let config = recorder
                .update_config(id, &format!("{name} edited"), &format!("{name} task {n}"))
                .await;
            config.map(drop)
        } else if roll < 60 || runs.is_empty() {
            let config_id = &configs[pick(configs.len())];
            recorder.launch(config_id).await.map(|run| runs.push(run))
        } else if (roll < 80 && !open.is_empty()) || ended.is_empty() {
            let i = open[pick(open.len())];
            recorder.stop(&runs[i].id).await.map(|run| runs[i] = run)
        } else {
            let i = ended[pick(ended.len())];
            let deleted = recorder.delete_run(&runs[i].id).await;
            deleted.map(|()| drop(runs.swap_remove(i)))
        };
        if answered.is_none() {
            return;
        }
    }
}
