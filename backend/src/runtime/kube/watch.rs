//! Watching the agents namespace: one watcher for Jobs and one for pods (agentfarm's label), each with
//! kube-runtime's backoff. Every change goes to its run's tracker; a (re)list replaces what the trackers
//! know, so an object deleted while the watch was down reads as gone. After the first complete listing,
//! objects of no active run are swept away.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Resource};
use prometheus_client::metrics::counter::Counter;
use tokio::sync::mpsc;

use super::Inbox;
use super::KubeSettings;
use super::job::{RUN_LABEL, managed_selector};

/// Something per run.
type ByRun<T> = HashMap<String, T>;

/// A change from either watcher (short-lived: one at a time, so the size difference does not matter).
#[allow(clippy::large_enum_variant)]
enum Change {
    Job(Event<Job>),
    Pod(Event<Pod>),
}

/// What the watchers know, and who listens.
#[derive(Default)]
pub struct Registry {
    trackers: ByRun<mpsc::UnboundedSender<Inbox>>,
    jobs: Listing<Job>,
    pods: Listing<Pod>,
    /// The active runs handed over at start (`None` until then); the sweep spares them.
    adopted: Option<HashSet<String>>,
    swept: bool,
}

/// One kind's objects by run, as of the last listing plus the changes since.
struct Listing<K> {
    current: ByRun<K>,
    /// Filled during a (re)list.
    incoming: Option<ByRun<K>>,
    /// A listing has completed at least once.
    listed: bool,
}

impl<K> Default for Listing<K> {
    fn default() -> Self {
        Listing {
            current: HashMap::new(),
            incoming: None,
            listed: false,
        }
    }
}

impl Registry {
    /// A tracker for `run_id`; it is told at once what the listings already know.
    pub fn register(&mut self, run_id: &str, inbox: mpsc::UnboundedSender<Inbox>) {
        if self.jobs.listed {
            let _ = inbox.send(Inbox::Job(self.jobs.current.get(run_id).cloned().map(Box::new)));
        }
        if self.pods.listed {
            let _ = inbox.send(Inbox::Pod(self.pods.current.get(run_id).cloned().map(Box::new)));
        }
        self.trackers.insert(run_id.to_owned(), inbox);
    }

    /// The tracker of `run_id` is done.
    pub fn unregister(&mut self, run_id: &str) {
        self.trackers.remove(run_id);
    }

    /// Passes `message` to `run_id`'s tracker; false when there is none.
    pub fn send(&self, run_id: &str, message: Inbox) -> bool {
        self.trackers
            .get(run_id)
            .is_some_and(|tracker| tracker.send(message).is_ok())
    }

    /// The runs adopted at start: everything else found then is swept. Returns the runs to sweep now, when the
    /// first listings completed before the runs were handed over (else the listings' end returns them).
    #[must_use]
    pub fn adopted(&mut self, runs: HashSet<String>) -> Vec<String> {
        self.adopted = Some(runs);
        self.strays()
    }

    /// Runs with objects that are neither adopted nor tracked, once: when both the adopted runs and the first
    /// complete listings are in.
    fn strays(&mut self) -> Vec<String> {
        let Some(adopted) = &self.adopted else {
            return Vec::new();
        };
        if self.swept || !self.jobs.listed || !self.pods.listed {
            return Vec::new();
        }
        self.swept = true;
        let mut strays: Vec<String> = self
            .jobs
            .current
            .keys()
            .chain(self.pods.current.keys())
            .filter(|run| !adopted.contains(*run) && !self.trackers.contains_key(*run))
            .cloned()
            .collect();
        strays.sort();
        strays.dedup();
        strays
    }
}

/// The run an object belongs to.
fn run_of(object: &impl Resource) -> Option<String> {
    object.meta().labels.as_ref()?.get(RUN_LABEL).cloned()
}

/// A watched kind's place in the registry and its tracker message.
trait Watched: Resource + Clone + Sized {
    fn listing(registry: &mut Registry) -> &mut Listing<Self>;
    fn message(object: Option<Self>) -> Inbox;
    fn deleted(object: &Self) -> Inbox;
}

impl Watched for Job {
    fn listing(registry: &mut Registry) -> &mut Listing<Self> {
        &mut registry.jobs
    }
    fn message(object: Option<Self>) -> Inbox {
        Inbox::Job(object.map(Box::new))
    }
    fn deleted(_: &Self) -> Inbox {
        Inbox::Job(None)
    }
}

impl Watched for Pod {
    fn listing(registry: &mut Registry) -> &mut Listing<Self> {
        &mut registry.pods
    }
    fn message(object: Option<Self>) -> Inbox {
        Inbox::Pod(object.map(Box::new))
    }
    fn deleted(object: &Self) -> Inbox {
        Inbox::PodDeleted(object.meta().name.clone().unwrap_or_default())
    }
}

/// Applies one watcher event; returns the strays to sweep, if this completed the first listings.
fn apply<K: Watched>(registry: &mut Registry, event: Event<K>) -> Vec<String> {
    match event {
        Event::Apply(object) => {
            if let Some(run) = run_of(&object) {
                registry.send(&run, K::message(Some(object.clone())));
                K::listing(registry).current.insert(run, object);
            }
        }
        Event::Delete(object) => {
            if let Some(run) = run_of(&object) {
                let listing = K::listing(registry);
                let same =
                    listing.current.get(&run).and_then(|o| o.meta().name.clone()) == object.meta().name;
                if same {
                    listing.current.remove(&run);
                }
                registry.send(&run, K::deleted(&object));
            }
        }
        Event::Init => K::listing(registry).incoming = Some(HashMap::new()),
        Event::InitApply(object) => {
            if let (Some(run), Some(incoming)) = (run_of(&object), K::listing(registry).incoming.as_mut()) {
                // A Job has one pod; should there be more, the newest speaks for the run.
                let newer = incoming.get(&run).is_none_or(|held: &K| {
                    held.meta().creation_timestamp <= object.meta().creation_timestamp
                });
                if newer {
                    incoming.insert(run, object);
                }
            }
        }
        Event::InitDone => {
            let listing = K::listing(registry);
            listing.current = listing.incoming.take().unwrap_or_default();
            listing.listed = true;
            let runs: Vec<String> = registry.trackers.keys().cloned().collect();
            let current = &K::listing(registry).current;
            let updates: Vec<(String, Inbox)> = runs
                .into_iter()
                .map(|run| {
                    let message = K::message(current.get(&run).cloned());
                    (run, message)
                })
                .collect();
            for (run, message) in updates {
                registry.send(&run, message);
            }
            return registry.strays();
        }
    }
    Vec::new()
}

/// Watches Jobs and pods until the runtime is dropped with the process, counting in `restarts` each failure
/// after which a watcher starts over (with backoff).
pub async fn run(
    jobs: Api<Job>,
    pods: Api<Pod>,
    secrets: Api<Secret>,
    registry: Arc<Mutex<Registry>>,
    settings: Arc<KubeSettings>,
    restarts: Counter,
) {
    let config = watcher::Config::default().labels(&managed_selector());
    let job_events = watcher::watcher(jobs.clone(), config.clone())
        .default_backoff()
        .map(|event| event.map(Change::Job));
    let pod_events = watcher::watcher(pods.clone(), config)
        .default_backoff()
        .map(|event| event.map(Change::Pod));
    let mut events = std::pin::pin!(futures_util::stream::select(job_events, pod_events));
    while let Some(event) = events.next().await {
        let strays = match event {
            Ok(Change::Job(event)) => apply(&mut lock(&registry), event),
            Ok(Change::Pod(event)) => apply(&mut lock(&registry), event),
            Err(err) => {
                restarts.inc();
                tracing::warn!(%err, namespace = settings.namespace, "watching the agents failed; retrying with backoff");
                Vec::new()
            }
        };
        sweep(&jobs, &pods, &secrets, strays);
    }
}

/// Deletes, in the background, the Jobs, pods and capability Secrets of `strays`: runs agentfarm does not
/// track.
pub fn sweep(jobs: &Api<Job>, pods: &Api<Pod>, secrets: &Api<Secret>, strays: Vec<String>) {
    for run_id in strays {
        tracing::warn!(
            run_id,
            "deleting the Job of a run agentfarm does not track (unknown, or already ended)"
        );
        let (jobs, pods, secrets) = (jobs.clone(), pods.clone(), secrets.clone());
        tokio::spawn(async move {
            // Deleting the Job stops a running agent with its grace period (it pushes on SIGTERM).
            if let Err(err) = super::release(&jobs, &pods, &secrets, &run_id).await {
                tracing::warn!(run_id, %err, "cannot delete the stray Job");
            }
        });
    }
}

fn lock(registry: &Mutex<Registry>) -> std::sync::MutexGuard<'_, Registry> {
    registry.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use kube::api::ObjectMeta;

    use super::*;

    fn job_of(run: &str) -> Job {
        Job {
            metadata: ObjectMeta {
                name: Some(format!("agent-{run}")),
                labels: Some([(RUN_LABEL.to_owned(), run.to_owned())].into()),
                ..ObjectMeta::default()
            },
            ..Job::default()
        }
    }

    fn list(registry: &mut Registry, jobs: Vec<Job>) -> Vec<String> {
        let mut strays = apply::<Pod>(registry, Event::Init);
        strays.extend(apply::<Pod>(registry, Event::InitDone));
        strays.extend(apply::<Job>(registry, Event::Init));
        for job in jobs {
            strays.extend(apply(registry, Event::InitApply(job)));
        }
        strays.extend(apply::<Job>(registry, Event::InitDone));
        strays
    }

    #[test]
    fn strays_are_swept_once_whether_the_listings_or_the_adopted_runs_come_first() {
        let mut listed_first = Registry::default();
        assert!(list(&mut listed_first, vec![job_of("kept"), job_of("stray")]).is_empty());
        assert_eq!(listed_first.adopted(["kept".to_owned()].into()), ["stray"]);

        let mut adopted_first = Registry::default();
        assert!(adopted_first.adopted(["kept".to_owned()].into()).is_empty());
        assert_eq!(
            list(&mut adopted_first, vec![job_of("kept"), job_of("stray")]),
            ["stray"]
        );
        // A relist later sweeps nothing: the sweep is for what was left over from before the start.
        assert!(list(&mut adopted_first, vec![job_of("late")]).is_empty());
    }
}
