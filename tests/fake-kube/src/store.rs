//! The object store: objects keyed by kind, namespace and name, a global resourceVersion counter, and the
//! retained event window watches replay from. Everything here runs under the one state lock.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::SystemTime;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::kind::Kind;
use crate::status::ApiError;
use crate::{AccessRule, Creation, RecordedRequest};

/// The grace period of a Pod deletion that names none and whose Pod sets no
/// `spec.terminationGracePeriodSeconds`.
pub(crate) const DEFAULT_GRACE_SECONDS: i64 = 30;

/// Most events retained for replay; older ones fall out of the window (a watch from before it gets 410).
const MAX_EVENTS: usize = 10_000;

/// `(kind, namespace, name)`; the namespace is empty for cluster-scoped kinds.
pub(crate) type Key = (Kind, String, String);

/// A watch event as stored and broadcast.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    /// resourceVersion of the change.
    pub(crate) rv: u64,
    /// Kind of the object.
    pub(crate) kind: Kind,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub(crate) kind_of_change: &'static str,
    /// The object after the change.
    pub(crate) object: Value,
}

/// One log line of a pod.
#[derive(Debug, Clone)]
pub(crate) struct LogLine {
    /// When it was appended.
    pub(crate) at: DateTime<Utc>,
    /// The text, without newline.
    pub(crate) text: String,
}

/// Fault switches.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    /// Fail this many further requests with `fail_code`.
    pub(crate) fail_next: u32,
    /// Fail every request until recovered.
    pub(crate) failing: bool,
    /// Code for the two above.
    pub(crate) fail_code: u16,
    /// Answer this many further watches with a 410 `ERROR` event.
    pub(crate) gone_watches: u32,
    /// Send every live watch event twice.
    pub(crate) duplicate_events: bool,
}

/// Everything the fake knows.
#[derive(Default)]
pub(crate) struct Store {
    /// Last resourceVersion handed out.
    pub(crate) rv: u64,
    /// Live objects.
    pub(crate) objects: BTreeMap<Key, Value>,
    /// Retained events, oldest first.
    pub(crate) events: VecDeque<Arc<Event>>,
    /// Events with `rv > window_start` are retained; a watch from an older version gets 410.
    pub(crate) window_start: u64,
    /// Events recorded under the lock, broadcast when it is released.
    pub(crate) pending: Vec<Arc<Event>>,
    /// Pod logs by `(namespace, pod)`.
    pub(crate) logs: HashMap<(String, String), Vec<LogLine>>,
    /// Attach stdin by `(namespace, pod)`.
    pub(crate) stdin: HashMap<(String, String), Vec<u8>>,
    /// Every request received.
    pub(crate) requests: Vec<RecordedRequest>,
    /// Every object created through the API.
    pub(crate) creations: Vec<Creation>,
    /// Fault switches.
    pub(crate) faults: Faults,
    /// SelfSubjectAccessReview rules; first match wins, no match allows.
    pub(crate) access_rules: Vec<AccessRule>,
    /// The process kubelet's feed, when it runs: every Pod event, and removals without an event.
    pub(crate) kubelet: Option<mpsc::UnboundedSender<Arc<Event>>>,
}

/// Now, as a `DateTime`.
pub(crate) fn now() -> DateTime<Utc> {
    DateTime::<Utc>::from(SystemTime::now())
}

/// Now, in the API's second-granularity timestamp format.
pub(crate) fn timestamp() -> String {
    now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A random lowercase suffix of `len` characters from the alphabet Kubernetes uses for generated names.
pub(crate) fn random_suffix(len: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .take(len)
        .map(|byte| char::from(ALPHABET[usize::from(*byte) % ALPHABET.len()]))
        .collect()
}

/// The `(namespace, name)` of a stored object.
pub(crate) fn name_of(object: &Value) -> (String, String) {
    let text = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    (text("/metadata/namespace"), text("/metadata/name"))
}

impl Store {
    /// The next resourceVersion.
    pub(crate) fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    /// Records an event (the object's resourceVersion must already be set to `rv`).
    fn record(&mut self, kind: Kind, kind_of_change: &'static str, object: Value) {
        let event = Arc::new(Event {
            rv: self.rv,
            kind,
            kind_of_change,
            object,
        });
        self.events.push_back(Arc::clone(&event));
        while self.events.len() > MAX_EVENTS {
            if let Some(dropped) = self.events.pop_front() {
                self.window_start = dropped.rv;
            }
        }
        self.notify_kubelet(&event);
        self.pending.push(event);
    }

    /// Passes a Pod event to the process kubelet, if it runs.
    fn notify_kubelet(&mut self, event: &Arc<Event>) {
        if event.kind != Kind::Pod {
            return;
        }
        if let Some(kubelet) = &self.kubelet
            && kubelet.send(Arc::clone(event)).is_err()
        {
            self.kubelet = None;
        }
    }

    /// Appends a line (without newline) to a pod's log, timestamped now.
    pub(crate) fn append_log(&mut self, namespace: &str, pod: &str, text: String) {
        self.logs
            .entry((namespace.to_owned(), pod.to_owned()))
            .or_default()
            .push(LogLine { at: now(), text });
    }

    /// Forgets every retained event: watches from any version before now get 410.
    pub(crate) fn compact(&mut self) {
        self.events.clear();
        self.window_start = self.rv;
    }

    /// A stored object.
    pub(crate) fn get(&self, kind: Kind, namespace: &str, name: &str) -> Result<&Value, ApiError> {
        self.objects
            .get(&(kind, namespace.to_owned(), name.to_owned()))
            .ok_or_else(|| ApiError::not_found(&kind.qualified(), name))
    }

    /// Creates `object` in `namespace` (ignored for cluster-scoped kinds), filling in server-set metadata.
    pub(crate) fn create(
        &mut self,
        kind: Kind,
        namespace: &str,
        mut object: Value,
    ) -> Result<Value, ApiError> {
        if !object.is_object() {
            return Err(ApiError::bad_request("the body must be a JSON object"));
        }
        let namespace = if kind.namespaced() { namespace } else { "" };
        let mut name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if name.is_empty() {
            let prefix = object
                .pointer("/metadata/generateName")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if prefix.is_empty() {
                return Err(ApiError::code(
                    422,
                    "metadata.name: Required value: name or generateName is required",
                ));
            }
            name = format!("{prefix}{}", random_suffix(5));
        }
        let key = (kind, namespace.to_owned(), name.clone());
        if self.objects.contains_key(&key) {
            return Err(ApiError::new(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", kind.qualified()),
            ));
        }
        let rv = self.next_rv();
        object["apiVersion"] = json!(kind.api_version());
        object["kind"] = json!(kind.name());
        let metadata = &mut object["metadata"];
        if !metadata.is_object() {
            *metadata = json!({});
        }
        metadata["name"] = json!(name);
        if kind.namespaced() {
            metadata["namespace"] = json!(namespace);
        }
        metadata["uid"] = json!(uuid::Uuid::new_v4().to_string());
        metadata["resourceVersion"] = json!(rv.to_string());
        metadata["creationTimestamp"] = json!(timestamp());
        metadata["generation"] = json!(1);
        if let Some(map) = metadata.as_object_mut() {
            map.remove("deletionTimestamp");
        }
        self.objects.insert(key, object.clone());
        self.record(kind, "ADDED", object.clone());
        Ok(object)
    }

    /// Stores `object` as the new version of an existing object: a new resourceVersion, `generation` bumped
    /// if `spec` changed, and a MODIFIED event; or, if it is being deleted and has no finalizers left, its
    /// removal with a DELETED event.
    pub(crate) fn update(&mut self, kind: Kind, mut object: Value) -> Result<Value, ApiError> {
        let (namespace, name) = name_of(&object);
        let key = (kind, namespace, name.clone());
        let Some(old) = self.objects.get(&key) else {
            return Err(ApiError::not_found(&kind.qualified(), &name));
        };
        // Immutable, server-owned metadata.
        for field in [
            "uid",
            "creationTimestamp",
            "namespace",
            "name",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ] {
            match old.pointer(&format!("/metadata/{field}")) {
                Some(value) => object["metadata"][field] = value.clone(),
                None => {
                    if let Some(map) = object["metadata"].as_object_mut() {
                        map.remove(field);
                    }
                }
            }
        }
        let generation = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let spec_changed = old.get("spec") != object.get("spec");
        object["metadata"]["generation"] = json!(if spec_changed { generation + 1 } else { generation });
        object["apiVersion"] = json!(kind.api_version());
        object["kind"] = json!(kind.name());
        let rv = self.next_rv();
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        if object.pointer("/metadata/deletionTimestamp").is_some() && !has_finalizers(&object) {
            self.objects.remove(&key);
            self.record(kind, "DELETED", object.clone());
            self.after_removal(kind, &object);
            return Ok(object);
        }
        self.objects.insert(key, object.clone());
        self.record(kind, "MODIFIED", object.clone());
        Ok(object)
    }

    /// Deletes an object: with finalizers it only gets `deletionTimestamp` (MODIFIED); otherwise it is
    /// removed (DELETED). `cascade` also deletes the Pods a Job owns (`Background`/`Foreground` propagation).
    /// A Pod's `metadata.deletionGracePeriodSeconds` becomes `grace`, else its
    /// `spec.terminationGracePeriodSeconds`, else 30 (what the process kubelet waits before `SIGKILL`).
    pub(crate) fn delete(
        &mut self,
        kind: Kind,
        namespace: &str,
        name: &str,
        cascade: bool,
        grace: Option<i64>,
    ) -> Result<Value, ApiError> {
        let namespace = if kind.namespaced() { namespace } else { "" };
        let object = self.get(kind, namespace, name)?.clone();
        if cascade && kind == Kind::Job {
            let uid = object.pointer("/metadata/uid").cloned().unwrap_or(Value::Null);
            let owned: Vec<String> = self
                .objects
                .iter()
                .filter(|((pod_kind, pod_ns, _), pod)| {
                    *pod_kind == Kind::Pod
                        && pod_ns == namespace
                        && pod
                            .pointer("/metadata/ownerReferences")
                            .and_then(Value::as_array)
                            .is_some_and(|owners| owners.iter().any(|owner| owner.get("uid") == Some(&uid)))
                })
                .map(|((_, _, pod_name), _)| pod_name.clone())
                .collect();
            for pod in owned {
                self.delete(Kind::Pod, namespace, &pod, false, None)?;
            }
        }
        let key = (kind, namespace.to_owned(), name.to_owned());
        let already_deleting = object.pointer("/metadata/deletionTimestamp").is_some();
        let mut marked = object;
        if !already_deleting {
            let grace = if kind == Kind::Pod {
                grace.unwrap_or_else(|| termination_grace(&marked))
            } else {
                0
            };
            marked["metadata"]["deletionTimestamp"] = json!(timestamp());
            marked["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
        }
        if has_finalizers(&marked) {
            if already_deleting {
                return Ok(marked);
            }
            let rv = self.next_rv();
            marked["metadata"]["resourceVersion"] = json!(rv.to_string());
            self.objects.insert(key, marked.clone());
            self.record(kind, "MODIFIED", marked.clone());
            return Ok(marked);
        }
        if kind == Kind::Pod {
            // A Pod's DELETED event carries its deletion metadata, as the real one does.
            self.objects.insert(key, marked);
        }
        self.remove(kind, namespace, name, true)
    }

    /// Removes an object, with a DELETED event if `announce`.
    pub(crate) fn remove(
        &mut self,
        kind: Kind,
        namespace: &str,
        name: &str,
        announce: bool,
    ) -> Result<Value, ApiError> {
        let key = (kind, namespace.to_owned(), name.to_owned());
        let Some(mut object) = self.objects.remove(&key) else {
            return Err(ApiError::not_found(&kind.qualified(), name));
        };
        if announce {
            let rv = self.next_rv();
            object["metadata"]["resourceVersion"] = json!(rv.to_string());
            self.record(kind, "DELETED", object.clone());
        } else if kind == Kind::Pod {
            // No watcher hears of it, but the kubelet still stops its containers.
            let event = Arc::new(Event {
                rv: self.rv,
                kind,
                kind_of_change: "DELETED",
                object: object.clone(),
            });
            self.notify_kubelet(&event);
        }
        self.after_removal(kind, &object);
        Ok(object)
    }

    /// Drops per-pod side data of a removed pod.
    fn after_removal(&mut self, kind: Kind, object: &Value) {
        if kind == Kind::Pod {
            let key = name_of(object);
            self.logs.remove(&key);
        }
    }
}

/// A Pod's `spec.terminationGracePeriodSeconds`, else 30.
pub(crate) fn termination_grace(pod: &Value) -> i64 {
    pod.pointer("/spec/terminationGracePeriodSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(DEFAULT_GRACE_SECONDS)
}

/// Whether `metadata.finalizers` is non-empty.
pub(crate) fn has_finalizers(object: &Value) -> bool {
    object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|finalizers| !finalizers.is_empty())
}
