//! One repository of a run: clone it onto the run's branch, and checkpoint it — commit what changed, push
//! the branch, describe the diff.

use std::path::{Path, PathBuf};

use agentfarm_shared::runner::{FileDiff, RunnerEvent};

use crate::git::{Git, GitError};

/// Longest patch put in a `diff` event, in bytes.
pub const MAX_PATCH_BYTES: usize = 64 * 1024;

/// `owner/repo[@base]`, already validated by the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoRef {
    /// The owner.
    pub owner: String,
    /// The repository.
    pub name: String,
    /// The base branch, when the config names one.
    pub base: Option<String>,
}

impl RepoRef {
    /// Reads `owner/repo[@base]`.
    pub fn parse(text: &str) -> Option<RepoRef> {
        let (path, base) = match text.split_once('@') {
            Some((path, base)) => (path, Some(base.to_owned())),
            None => (text, None),
        };
        let (owner, name) = path.split_once('/')?;
        let plain = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        };
        (plain(owner) && plain(name) && !owner.starts_with('-') && !name.starts_with(['-', '.'])).then(|| {
            RepoRef {
                owner: owner.to_owned(),
                name: name.to_owned(),
                base,
            }
        })
    }

    /// `owner/repo`.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }
}

/// A cloned repository on the run's branch.
#[derive(Debug, Clone)]
pub struct Checkout {
    /// Which repository.
    pub repo: RepoRef,
    /// Where it is.
    pub dir: PathBuf,
    /// The branch the pull request goes into.
    pub base: String,
    /// The run's branch.
    pub branch: String,
    /// The commit last pushed (or found on the remote): a checkpoint at the same commit publishes nothing.
    pub pushed: Option<String>,
}

/// Clones `repo` from `git_url` into `dir` and checks out `branch`: the remote's, when it exists (a continued
/// run), else a new one from the base.
pub async fn clone(
    git: &Git,
    git_url: &str,
    repo: RepoRef,
    dir: PathBuf,
    branch: &str,
) -> Result<(Checkout, RunnerEvent), GitError> {
    let url = format!(
        "{}/{}/{}.git",
        git_url.trim_end_matches('/'),
        repo.owner,
        repo.name
    );
    let parent = dir.parent().unwrap_or(Path::new("."));
    let target = dir.to_string_lossy().into_owned();
    let mut args = vec!["clone", "--no-recurse-submodules"];
    if let Some(base) = &repo.base {
        args.extend(["--branch", base.as_str()]);
    }
    args.extend(["--", url.as_str(), target.as_str()]);
    git.run(parent, &args).await?;
    let base = match &repo.base {
        Some(base) => base.clone(),
        None => {
            let head = git
                .run(&dir, &["rev-parse", "--abbrev-ref", "origin/HEAD"])
                .await?;
            head.strip_prefix("origin/").unwrap_or(&head).to_owned()
        }
    };
    let remote_ref = format!("refs/heads/{branch}");
    let continued = !git
        .run(&dir, &["ls-remote", "--heads", "origin", &remote_ref])
        .await?
        .is_empty();
    let pushed = if continued {
        git.run(
            &dir,
            &[
                "fetch",
                "--no-recurse-submodules",
                "origin",
                &format!("{remote_ref}:refs/remotes/origin/{branch}"),
            ],
        )
        .await?;
        git.run(&dir, &["checkout", "-B", branch, &format!("origin/{branch}")])
            .await?;
        Some(git.run(&dir, &["rev-parse", "HEAD"]).await?)
    } else {
        git.run(&dir, &["checkout", "-b", branch]).await?;
        None
    };
    // So that Claude can commit too; identity only, nothing secret.
    git.run(&dir, &["config", "user.name", "agentfarm"]).await?;
    git.run(
        &dir,
        &["config", "user.email", "agentfarm@users.noreply.github.com"],
    )
    .await?;
    let commit = git.run(&dir, &["rev-parse", "HEAD"]).await?;
    let event = RunnerEvent::Cloned {
        repo: repo.full_name(),
        branch: branch.to_owned(),
        base: base.clone(),
        continued,
        commit,
    };
    Ok((
        Checkout {
            repo,
            dir,
            base,
            branch: branch.to_owned(),
            pushed,
        },
        event,
    ))
}

/// What a checkpoint did.
#[derive(Debug, Default)]
pub struct Checkpoint {
    /// Events to print, in order.
    pub events: Vec<RunnerEvent>,
    /// True when the branch moved and has commits the base lacks: the pull request should say so.
    pub publish: bool,
}

impl Checkout {
    /// Commits everything that changed (with `message`); if the branch moved since the last push and is
    /// ahead of the base, pushes it and describes the diff against the base.
    pub async fn checkpoint(&mut self, git: &Git, message: &str) -> Result<Checkpoint, GitError> {
        let dir = self.dir.clone();
        let mut done = Checkpoint::default();
        git.run(&dir, &["add", "--all"]).await?;
        if !git.check(&dir, &["diff", "--cached", "--quiet"]).await? {
            git.run(&dir, &["commit", "--quiet", "--no-verify", "-m", message])
                .await?;
            done.events.push(RunnerEvent::Committed {
                repo: self.repo.full_name(),
                commit: git.run(&dir, &["rev-parse", "HEAD"]).await?,
                message: message.lines().next().unwrap_or_default().to_owned(),
            });
        }
        let range = format!("origin/{}...HEAD", self.base);
        let ahead: u64 = git
            .run(
                &dir,
                &["rev-list", "--count", &format!("origin/{}..HEAD", self.base)],
            )
            .await?
            .parse()
            .unwrap_or(0);
        let head = git.run(&dir, &["rev-parse", "HEAD"]).await?;
        if ahead == 0 || self.pushed.as_deref() == Some(head.as_str()) {
            return Ok(done);
        }
        git.run(
            &dir,
            &[
                "push",
                "--quiet",
                "--no-verify",
                "origin",
                &format!("HEAD:refs/heads/{}", self.branch),
            ],
        )
        .await?;
        self.pushed = Some(head.clone());
        done.events.push(RunnerEvent::Pushed {
            repo: self.repo.full_name(),
            branch: self.branch.clone(),
            commit: head,
        });
        let numstat = git.run(&dir, &["diff", "--numstat", &range]).await?;
        let mut patch = git.run(&dir, &["diff", &range]).await?;
        let truncated = patch.len() > MAX_PATCH_BYTES;
        if truncated {
            let mut end = MAX_PATCH_BYTES;
            while !patch.is_char_boundary(end) {
                end -= 1;
            }
            patch.truncate(end);
        }
        done.events.push(RunnerEvent::Diff {
            repo: self.repo.full_name(),
            files: parse_numstat(&numstat),
            patch,
            truncated,
        });
        done.publish = true;
        Ok(done)
    }
}

/// Reads `git diff --numstat` (`added<TAB>removed<TAB>path`, `-` for binary files).
fn parse_numstat(numstat: &str) -> Vec<FileDiff> {
    numstat
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, '\t');
            let (added, removed, path) = (parts.next()?, parts.next()?, parts.next()?);
            Some(FileDiff {
                path: path.to_owned(),
                added: added.parse().ok(),
                removed: removed.parse().ok(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_refs() {
        assert_eq!(
            RepoRef::parse("octo/app@release/1"),
            Some(RepoRef {
                owner: "octo".into(),
                name: "app".into(),
                base: Some("release/1".into())
            })
        );
        assert_eq!(
            RepoRef::parse("octo/app").map(|r| r.full_name()).as_deref(),
            Some("octo/app")
        );
        for bad in ["octo", "../x/y", "-u/x", "a/.git", "a/b c"] {
            assert_eq!(RepoRef::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn numstat() {
        let files = parse_numstat("3\t1\tsrc/a.rs\n-\t-\tlogo.png\n");
        assert_eq!(
            files[0],
            FileDiff {
                path: "src/a.rs".into(),
                added: Some(3),
                removed: Some(1)
            }
        );
        assert_eq!(
            files[1],
            FileDiff {
                path: "logo.png".into(),
                added: None,
                removed: None
            }
        );
    }
}
