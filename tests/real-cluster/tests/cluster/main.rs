//! The real-cluster suite: agentfarm's cluster path on an upstream Kubernetes running on this machine
//! (`agentfarm-cluster up`: `cargo xtask test` brings it up around the suite and takes it down after; `cargo
//! xtask cluster up` does it by hand). Without a cluster every test fails, saying so: never a silent skip.
//!
//! - [`suite`]: the shared cluster, the fakes on the host's bridge address, the control plane in the cluster.
//! - [`runs`]: following a run through the app's stream, its stored log, its pod and Job.
//! - [`journey`]: the whole journey under gVisor and under runc.
//! - [`credentials`]: an agent hunting for tokens finds only its run's capability.
//! - [`manifests`]: the overlay applied server-side, Pod Security, the sandbox policy, `agentfarm doctor`.
//! - [`failures`]: what only a real cluster shows: OOM, deadlines, a missing image or Secret, a stop, a pod
//!   deleted behind the server's back, a stray Job.
//! - [`restarts`]: the control plane killed mid-run, the API server restarted under a watch and a log stream.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod credentials;
mod failures;
mod journey;
mod manifests;
mod restarts;
mod runs;
mod suite;
