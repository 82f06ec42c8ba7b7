//! Web Push: the server's public VAPID key, a device's subscription, and the notification payload (in the
//! declarative form iOS 18.4+ shows without the service worker, which the worker also reads).

use serde::{Deserialize, Serialize};

/// `GET /api/push/key`: the application server key for `pushManager.subscribe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushKey {
    /// The VAPID public key: an uncompressed P-256 point, base64url without padding.
    pub public_key: String,
}

/// The keys of a push subscription, as `PushSubscription.toJSON()` gives them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionKeys {
    /// The subscriber's P-256 public key, base64url.
    pub p256dh: String,
    /// The 16-byte authentication secret, base64url.
    pub auth: String,
}

/// `POST /api/push/subscriptions`: subscribe a device, or confirm it is still subscribed (same endpoint).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSubscription {
    /// The push service URL (https, a known push service).
    pub endpoint: String,
    /// Its keys.
    pub keys: SubscriptionKeys,
    /// A name for the device, shown in the list (e.g. "iPhone").
    #[serde(default)]
    pub device: String,
    /// True when the device only re-confirms an earlier subscription (at app start): refused with 404 if
    /// it was removed meanwhile, so a removal from another device sticks.
    #[serde(default)]
    pub confirm: bool,
    /// `PushSubscription.expirationTime`, when the browser gives one (ms since the epoch); ignored.
    #[serde(default, rename = "expirationTime", skip_serializing)]
    pub expiration_time: Option<f64>,
}

/// A subscribed device, as listed (the endpoint's secret path and the keys stay on the server).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    /// Its id.
    pub id: String,
    /// The device's name.
    pub device: String,
    /// The push service's host, e.g. `web.push.apple.com`.
    pub service: String,
    /// When it was subscribed (RFC 3339).
    pub created_at: String,
    /// When the device last confirmed it (RFC 3339): unconfirmed ones expire.
    pub confirmed_at: String,
}

/// The notification as sent: Apple's declarative Web Push form (`"web_push": 8030`), plus the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushPayload {
    /// Marks the declarative form.
    pub web_push: u32,
    /// What to show.
    pub notification: Notification,
    /// The run it is about (none for a test).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}

/// The declarative notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Title.
    pub title: String,
    /// Body text.
    pub body: String,
    /// The page a tap opens (absolute URL).
    pub navigate: String,
    /// Replaces an earlier notification with the same tag (one per run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The app icon's badge: runs that need the owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_badge: Option<u32>,
}

/// The value of [`PushPayload::web_push`].
pub const DECLARATIVE_WEB_PUSH: u32 = 8030;

/// The cookie that names this browser's push subscription, so the live connection knows which device it is
/// (pushes about a run that device has open are not sent).
pub const DEVICE_COOKIE: &str = "agentfarm_device";
