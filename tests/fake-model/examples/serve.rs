//! Runs a fake model by hand, for poking at the real CLI from a shell.
//!
//! `cargo run -p agentfarm-fake-model --example serve [PORT_FILE]` prints the environment to export, then one
//! JSON line per request received. Type `release NAME` on stdin to open a gate; EOF stops the server.

use std::time::Duration;

use agentfarm_fake_model::FakeModel;
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::main]
async fn main() {
    let fake = FakeModel::start().await;
    for (key, value) in fake.model_env() {
        println!("export {key}={value}");
    }
    if let Some(port_file) = std::env::args().nth(1)
        && let Err(error) = std::fs::write(&port_file, fake.base_url())
    {
        eprintln!("cannot write {port_file}: {error}");
    }
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut shown = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            line = lines.next_line() => match line {
                Ok(Some(line)) => {
                    if let Some(gate) = line.trim().strip_prefix("release ") {
                        fake.release(gate.trim());
                    }
                }
                _ => break,
            },
            _ = tick.tick() => {
                let requests = fake.requests();
                for request in &requests[shown..] {
                    let line = serde_json::json!({
                        "kind": format!("{:?}", request.kind),
                        "method": request.method,
                        "path": request.path,
                        "headers": request.headers,
                        "body": request.body,
                    });
                    println!("{line}");
                }
                shown = requests.len();
            }
        }
    }
}
