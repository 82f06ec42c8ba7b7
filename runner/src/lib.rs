//! The agent runner: what runs inside each agent's pod (and in each run's work dir on the local runtime).
//! It turns a [`RunnerSpec`](agentfarm_shared::runner::RunnerSpec) into a branch and a pull request.
//!
//! 1. Clones each repository through the control plane's git proxy, the run's capability supplied by a
//!    credential helper ([`git`]), and checks out the run's branch, continuing it when it already exists
//!    ([`repo`]).
//! 2. Starts Claude Code headless ([`claude`]), gives it the task as the first stream-json user message,
//!    and relays follow-ups and interrupts that arrive on the runner's own stdin ([`session`]).
//! 3. Prints every Claude event unchanged and its own events in the `{"type":"agentfarm",…}` envelope
//!    ([`output`]), with credentials masked ([`Redactor`](agentfarm_shared::redact::Redactor)).
//! 4. Whenever Claude finishes a turn, and once more when it exits: commits, pushes the branch, and opens
//!    the pull request or updates the open one, through the control plane ([`control`]).
//!
//! SIGTERM (or SIGINT) interrupts Claude; what exists is still pushed before the runner exits.
//!
//! Exit codes: 0 when Claude succeeded and everything was published; Claude's own code when it failed;
//! [`EXIT_SETUP`] when the run could not start; [`EXIT_PUBLISH`] when Claude succeeded but a commit, push or
//! pull request failed.

pub mod claude;
pub mod control;
pub mod git;
pub mod output;
pub mod repo;
pub mod session;

/// The run could not start: bad spec, failed clone, Claude missing.
pub const EXIT_SETUP: i32 = 2;
/// Claude succeeded but its work could not be published.
pub const EXIT_PUBLISH: i32 = 3;
