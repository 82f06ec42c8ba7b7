//! `GET pods/{name}/attach` over WebSocket (`v5.channel.k8s.io`, else `v4.channel.k8s.io`): stdin frames
//! (channel 0) are appended to the pod's input buffer (which the process kubelet also feeds to the
//! container; a session closing its stdin leaves the container's open, as with `stdinOnce: false`); when the
//! pod succeeds, fails or is deleted — or the client closes its stdin (v5), since nothing else would come of
//! the session — it sends a `Status` on channel 3 and closes. Nothing is written to stdout or stderr.

use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use serde_json::json;

use crate::kind::Kind;
use crate::logs::{phase, terminated, waiting_reason};
use crate::server::Shared;
use crate::status::ApiError;

/// Channel numbers of the remote-command protocol.
const STDIN: u8 = 0;
/// Status channel.
const STATUS: u8 = 3;
/// v5 close signal.
const CLOSE: u8 = 255;

/// Checks the pod and upgrades.
pub(crate) fn attach(
    shared: &Arc<Shared>,
    namespace: &str,
    pod: &str,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    {
        let store = shared.lock();
        let object = store.get(Kind::Pod, namespace, pod)?;
        match phase(object) {
            "Running" => {}
            "Pending" => {
                return Err(ApiError::bad_request(format!(
                    "container in pod \"{pod}\" is waiting to start: {}",
                    waiting_reason(object)
                )));
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "cannot attach a container in a completed pod; current phase is {other}"
                )));
            }
        }
    }
    let shared = Arc::clone(shared);
    let key = (namespace.to_owned(), pod.to_owned());
    Ok(upgrade
        .protocols(["v5.channel.k8s.io", "v4.channel.k8s.io"])
        .on_upgrade(move |socket| session(shared, key, socket)))
}

/// One attach session.
async fn session(shared: Arc<Shared>, key: (String, String), mut socket: WebSocket) {
    let mut tick = shared.tick.subscribe();
    loop {
        tick.borrow_and_update();
        if terminated(&shared.lock(), &key) {
            finish(&mut socket).await;
            return;
        }
        tokio::select! {
            message = socket.recv() => match message {
                Some(Ok(Message::Binary(data))) => match data.first() {
                    Some(&STDIN) => {
                        shared.with(|store| {
                            store.stdin.entry(key.clone()).or_default().extend_from_slice(&data[1..]);
                        });
                    }
                    Some(&CLOSE) if data.get(1) == Some(&STDIN) => {
                        // The client has nothing more to send and reads nothing (this fake writes no
                        // output): the session is over, as the kubelet ends it. The container's stdin stays
                        // open for the next session.
                        tracing::debug!(?key, "fake kube: attach stdin closed");
                        finish(&mut socket).await;
                        return;
                    }
                    _ => {}
                },
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
            changed = tick.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

/// Ends a session as the kubelet does: a `Success` status on the status channel, then a close.
async fn finish(socket: &mut WebSocket) {
    let status = json!({"metadata": {}, "status": "Success"}).to_string();
    let mut frame = vec![STATUS];
    frame.extend_from_slice(status.as_bytes());
    // The client may be gone already; nothing to do about it.
    let _ = socket.send(Message::Binary(frame.into())).await;
    let _ = socket.send(Message::Close(None)).await;
}
