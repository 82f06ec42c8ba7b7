//! Web Push: tells the owner's devices, once, when an agent finishes, fails, needs input or hits a usage
//! limit.
//!
//! - Keys: a VAPID key pair made on first start and kept in the store (or read from a file, e.g. a Secret).
//! - Subscriptions: checked against an allowlist of push services ([`endpoint`]); a device re-confirms
//!   its subscription on every app start, and unconfirmed ones expire.
//! - The outbox: the store queues one row per event and device in the same transaction as the run change,
//!   so a notification exists exactly when its event does, across restarts too. The delivery task
//!   ([`Push::run`]) sends due rows: encrypted (aes128gcm) and signed (VAPID), with TTL, Urgency and Topic;
//!   retries 5xx and timeouts with backoff, waits out a 429's `Retry-After`, drops the subscription on
//!   404/410, follows no redirects. A device that has the run open on a live connection is skipped.
//! - [`message`]: what each notification says; [`crypto`]: its encryption and VAPID signature;
//!   [`foreground`]: which device has which run open.

pub mod crypto;
pub mod endpoint;
pub mod foreground;
pub mod message;

use std::sync::Arc;
use std::time::Duration;

use agentfarm_shared::push::{NewSubscription, PushKey, Subscription};
use agentfarm_shared::validate::{self, Violations};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SecondsFormat, Utc};
use tokio::sync::Notify;
use tokio::sync::broadcast::error::RecvError;

use self::crypto::{SealError, VapidKey};
use self::endpoint::Allowlist;
use self::foreground::Foreground;
use crate::backoff::Backoff;
use crate::error::AppError;
use crate::metrics::LabeledCounter;
use crate::store::{DuePush, PushKind, Store, StoredSubscription};

/// Longest device name.
const MAX_DEVICE: usize = 100;
/// Notifications sent per store query.
const BATCH: u32 = 32;
/// Longest a push service may take to answer.
const SEND_TIMEOUT: Duration = Duration::from_secs(15);
/// Attempts before a notification is given up.
const MAX_ATTEMPTS: u32 = 12;
/// The first retry's delay; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest retry delay.
const MAX_BACKOFF: Duration = Duration::from_secs(600);
/// Longest wait between looks at the outbox, and how often unconfirmed subscriptions are dropped.
const IDLE_LOOK: Duration = Duration::from_secs(60);

/// How the push service is set up.
#[derive(Debug, Clone)]
pub struct PushSettings {
    /// The VAPID `sub` contact; notifications are off without it.
    pub contact: Option<String>,
    /// The VAPID private key from a file, if given (else one is made and stored).
    pub private_key: Option<String>,
    /// Which push services subscriptions may use.
    pub allowlist: Allowlist,
    /// How long a subscription lives unconfirmed.
    pub subscription_ttl: chrono::Duration,
    /// Where the app is served, for the page a notification opens.
    pub base_url: String,
}

/// Why push could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The configured key is not a P-256 private key.
    #[error("the VAPID private key is not a base64url P-256 scalar")]
    BadKey,
    /// The key file could not be read.
    #[error("cannot read the VAPID private key {path}: {message}")]
    KeyFile {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// The push service.
pub struct Push {
    store: Store,
    settings: PushSettings,
    vapid: VapidKey,
    foreground: Arc<Foreground>,
    wake: Notify,
    http: reqwest::Client,
    /// Delivery attempts by outcome, for `/metrics`.
    deliveries: LabeledCounter,
}

impl Push {
    /// Loads or makes the keys; call [`Push::run`] to start delivering.
    pub async fn new(
        store: Store,
        settings: PushSettings,
        foreground: Arc<Foreground>,
    ) -> Result<Arc<Push>, PushError> {
        let private = match &settings.private_key {
            Some(private) => private.clone(),
            None => {
                let make = || {
                    let key = VapidKey::generate();
                    Ok((key.private_base64(), key.public_base64().to_owned()))
                };
                store.push_keys(make, Utc::now()).await?.0
            }
        };
        let vapid = VapidKey::from_base64(&private).ok_or(PushError::BadKey)?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(SEND_TIMEOUT)
            .build()
            .map_err(|err| PushError::Client(err.to_string()))?;
        Ok(Arc::new(Push {
            store,
            settings,
            vapid,
            foreground,
            wake: Notify::new(),
            http,
            deliveries: LabeledCounter::with_values("outcome", &Outcome::LABELS),
        }))
    }

    fn enabled(&self) -> Result<&str, AppError> {
        self.settings.contact.as_deref().ok_or_else(|| {
            AppError::Conflict(
                "notifications are off: start the server with --push-contact mailto:you@example.com".into(),
            )
        })
    }

    /// The application server key.
    pub fn key(&self) -> Result<PushKey, AppError> {
        self.enabled()?;
        Ok(PushKey {
            public_key: self.vapid.public_base64().to_owned(),
        })
    }

    /// Subscribes a device, or confirms it; true when it is new.
    pub async fn subscribe(&self, new: NewSubscription) -> Result<(Subscription, bool), AppError> {
        self.enabled()?;
        let mut v = Violations::default();
        v.check("endpoint", self.settings.allowlist.check(&new.endpoint).map(drop));
        v.check("keys.p256dh", key_bytes(&new.keys.p256dh, 65));
        v.check("keys.auth", key_bytes(&new.keys.auth, 16));
        v.check("device", validate::text(&new.device, MAX_DEVICE, true));
        v.finish()?;
        let now = Utc::now();
        let device = if new.device.trim().is_empty() {
            "a device".to_owned()
        } else {
            new.device.trim().to_owned()
        };
        let confirmed = self
            .store
            .upsert_subscription(
                StoredSubscription {
                    id: uuid::Uuid::new_v4().to_string(),
                    endpoint: new.endpoint,
                    p256dh: new.keys.p256dh,
                    auth: new.keys.auth,
                    device,
                    created_at: now,
                    confirmed_at: now,
                },
                new.confirm,
            )
            .await?;
        let (stored, created) = confirmed.ok_or_else(|| {
            AppError::NotFound(
                "this device's subscription (it was removed; turn notifications on again)".into(),
            )
        })?;
        Ok((listed(&stored), created))
    }

    /// Every subscribed device.
    pub async fn subscriptions(&self) -> Result<Vec<Subscription>, AppError> {
        Ok(self.store.subscriptions().await?.iter().map(listed).collect())
    }

    /// Removes a device.
    pub async fn unsubscribe(&self, id: String) -> Result<(), AppError> {
        if self.store.delete_subscription(id.clone()).await? {
            Ok(())
        } else {
            Err(AppError::NotFound(format!("subscription {id}")))
        }
    }

    /// Sends a test notification to one device.
    pub async fn test(&self, id: String) -> Result<(), AppError> {
        self.enabled()?;
        if !self.store.enqueue_test_push(id.clone(), Utc::now()).await? {
            return Err(AppError::NotFound(format!("subscription {id}")));
        }
        self.wake.notify_one();
        Ok(())
    }

    /// Which device has which run open.
    pub fn foreground(&self) -> &Arc<Foreground> {
        &self.foreground
    }

    /// Delivery attempts by outcome (`sent`, `gone`, `dropped`, `retried`), for `/metrics`.
    pub fn deliveries(&self) -> &LabeledCounter {
        &self.deliveries
    }

    /// Delivers the outbox for as long as the server runs. `changes` wakes it when a run changes (the store
    /// may have queued notifications with it).
    /// Ends between two notifications once `closed` resolves.
    pub async fn run(
        self: Arc<Self>,
        mut changes: tokio::sync::broadcast::Receiver<crate::hub::RunEvent>,
        closed: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        if self.settings.contact.is_none() {
            return;
        }
        tokio::pin!(closed);
        let mut expired_at: Option<tokio::time::Instant> = None;
        loop {
            if expired_at.is_none_or(|at| at.elapsed() >= IDLE_LOOK) {
                expired_at = Some(tokio::time::Instant::now());
                if let Err(err) = self.expire().await {
                    tracing::warn!(%err, "dropping unconfirmed subscriptions failed; trying again later");
                }
            }
            if let Err(err) = self.deliver_due().await {
                tracing::warn!(%err, "delivering notifications failed; trying again later");
            }
            let next = match self.store.next_push_due().await {
                Ok(Some(at)) => (at - Utc::now()).to_std().unwrap_or_default().min(IDLE_LOOK),
                _ => IDLE_LOOK,
            };
            // Only a run change can have queued a notification.
            let run_changed = async {
                loop {
                    match changes.recv().await {
                        Ok(crate::hub::RunEvent::Changed(_)) | Err(RecvError::Lagged(_)) => return true,
                        Ok(crate::hub::RunEvent::Removed(_)) => {}
                        Err(RecvError::Closed) => return false,
                    }
                }
            };
            tokio::select! {
                () = &mut closed => return,
                () = tokio::time::sleep(next) => {}
                () = self.wake.notified() => {}
                open = run_changed => {
                    if !open {
                        return;
                    }
                }
            }
        }
    }

    /// Drops subscriptions their devices stopped confirming.
    async fn expire(&self) -> Result<(), AppError> {
        let expired = self
            .store
            .expire_subscriptions(Utc::now() - self.settings.subscription_ttl)
            .await?;
        if expired > 0 {
            tracing::info!(expired, "dropped subscriptions their devices stopped confirming");
        }
        Ok(())
    }

    async fn deliver_due(&self) -> Result<(), AppError> {
        loop {
            let due = self.store.due_pushes(Utc::now(), BATCH).await?;
            if due.is_empty() {
                return Ok(());
            }
            for push in due {
                self.deliver(push).await?;
            }
        }
    }

    async fn deliver(&self, push: DuePush) -> Result<(), AppError> {
        let kind = match push.kind.as_str() {
            "succeeded" => PushKind::Succeeded,
            "failed" => PushKind::Failed,
            "waiting_for_input" => PushKind::WaitingForInput,
            "limit_hit" => PushKind::LimitHit,
            _ => PushKind::Test,
        };
        if let Some(run) = &push.run
            && self.foreground.is_open(&push.subscription.id, &run.id)
        {
            tracing::debug!(run_id = run.id, "not pushing: the device has the run open");
            return Ok(self.store.push_done(push.id).await?);
        }
        if kind != PushKind::Test && push.run.is_none() {
            // The run was deleted before its notification went out.
            return Ok(self.store.push_done(push.id).await?);
        }
        let badge = self.store.runs_waiting().await?;
        let payload = message::payload(kind, push.run.as_ref(), &self.settings.base_url, badge);
        let outcome = match self
            .send(&push.subscription, kind, push.run.as_ref(), &payload)
            .await
        {
            Ok(outcome) => outcome,
            Err(err) => {
                tracing::warn!(%err, "cannot build a notification; dropping it");
                Outcome::Drop
            }
        };
        self.deliveries.inc_by(outcome.label(), 1);
        match outcome {
            Outcome::Sent => self.store.push_done(push.id).await?,
            Outcome::Gone => {
                tracing::info!(
                    device = push.subscription.device,
                    "the push service forgot this device; removing it"
                );
                self.store
                    .delete_subscription(push.subscription.id.clone())
                    .await?;
            }
            Outcome::Drop => self.store.push_done(push.id).await?,
            Outcome::RetryAfter(wait) => {
                self.store
                    .push_retry(
                        push.id,
                        Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default(),
                    )
                    .await?;
            }
            Outcome::Retry if push.attempts + 1 >= MAX_ATTEMPTS => {
                tracing::warn!(
                    device = push.subscription.device,
                    "giving up a notification after {MAX_ATTEMPTS} attempts"
                );
                self.store.push_done(push.id).await?;
            }
            Outcome::Retry => {
                let wait = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF).delay(push.attempts);
                self.store
                    .push_retry(
                        push.id,
                        Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default(),
                    )
                    .await?;
            }
        }
        Ok(())
    }

    async fn send(
        &self,
        to: &StoredSubscription,
        kind: PushKind,
        run: Option<&agentfarm_shared::run::Run>,
        payload: &agentfarm_shared::push::PushPayload,
    ) -> Result<Outcome, SealError> {
        let contact = self.settings.contact.as_deref().unwrap_or_default();
        let Ok(url) = self.settings.allowlist.check(&to.endpoint) else {
            // The allowlist changed since it subscribed.
            return Ok(Outcome::Gone);
        };
        let authorization = self
            .vapid
            .authorization(&url.origin().ascii_serialization(), contact)?;
        let body = crypto::encrypt(
            &to.p256dh,
            &to.auth,
            serde_json::to_vec(payload).unwrap_or_default(),
        )?;
        let request = self
            .http
            .post(url)
            .header("Authorization", authorization)
            .header("TTL", message::ttl(kind).to_string())
            .header("Urgency", message::urgency(kind))
            .header("Topic", message::topic(run))
            .header("Content-Encoding", "aes128gcm")
            .header("Content-Type", "application/octet-stream")
            .body(body);
        Ok(match request.send().await {
            Ok(response) => outcome(response.status().as_u16(), response.headers()),
            Err(err) => {
                tracing::debug!(%err, "the push service did not answer; retrying later");
                Outcome::Retry
            }
        })
    }
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Delivered to the push service.
    Sent,
    /// The subscription is dead: remove it.
    Gone,
    /// Refused for good (bad request, too large, unauthorized): drop this notification.
    Drop,
    /// Try again after this long (429 with `Retry-After`).
    RetryAfter(Duration),
    /// Try again with backoff (5xx, no answer).
    Retry,
}

impl Outcome {
    /// Every label value, so that each series exists from the start.
    const LABELS: [&'static str; 4] = ["sent", "gone", "dropped", "retried"];

    /// Its label on the deliveries counter: one of [`Outcome::LABELS`].
    fn label(self) -> &'static str {
        match self {
            Outcome::Sent => "sent",
            Outcome::Gone => "gone",
            Outcome::Drop => "dropped",
            Outcome::RetryAfter(_) | Outcome::Retry => "retried",
        }
    }
}

fn outcome(status: u16, headers: &reqwest::header::HeaderMap) -> Outcome {
    let retry_after = || {
        headers
            .get("retry-after")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
            .map(Duration::from_secs)
    };
    match status {
        200..=299 => Outcome::Sent,
        404 | 410 => Outcome::Gone,
        429 => Outcome::RetryAfter(retry_after().unwrap_or(Duration::from_secs(60)).min(MAX_BACKOFF)),
        500..=599 => retry_after().map_or(Outcome::Retry, |wait| Outcome::RetryAfter(wait.min(MAX_BACKOFF))),
        _ => Outcome::Drop,
    }
}

fn key_bytes(value: &str, len: usize) -> Result<(), String> {
    match URL_SAFE_NO_PAD.decode(value.trim_end_matches('=')) {
        Ok(bytes) if bytes.len() == len => Ok(()),
        _ => Err(format!("must be {len} bytes, base64url")),
    }
}

fn listed(stored: &StoredSubscription) -> Subscription {
    let stamp = |at: DateTime<Utc>| at.to_rfc3339_opts(SecondsFormat::Secs, true);
    Subscription {
        id: stored.id.clone(),
        device: stored.device.clone(),
        service: url::Url::parse(&stored.endpoint)
            .ok()
            .and_then(|url| url.host_str().map(str::to_owned))
            .unwrap_or_default(),
        created_at: stamp(stored.created_at),
        confirmed_at: stamp(stored.confirmed_at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_each_answer_means() {
        let none = reqwest::header::HeaderMap::new();
        let mut later = reqwest::header::HeaderMap::new();
        later.insert("retry-after", "7".parse().unwrap());
        assert_eq!(outcome(201, &none), Outcome::Sent);
        assert_eq!(outcome(404, &none), Outcome::Gone);
        assert_eq!(outcome(410, &none), Outcome::Gone);
        assert_eq!(outcome(429, &later), Outcome::RetryAfter(Duration::from_secs(7)));
        assert_eq!(outcome(503, &none), Outcome::Retry);
        assert_eq!(outcome(413, &none), Outcome::Drop);
    }
}
