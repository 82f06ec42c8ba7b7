//! Bare-repository helpers: where `owner/repo` lives under the root, creating one, and reading refs, files and
//! logs with the `git` binary on `PATH`. All blocking (`std::process`); async callers go through
//! `spawn_blocking`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A failed git invocation or an unusable name.
#[derive(Debug)]
pub(crate) struct RepoError(pub(crate) String);

impl std::fmt::Display for RepoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RepoError {}

/// Whether `name` can be an owner or repository name (GitHub's alphabet; never `.`/`..` or an option).
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && !name.starts_with('-')
        && name.len() <= 100
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Whether `branch` is a plausible branch name (no option-looking or path-escaping names, no revision syntax).
pub(crate) fn valid_branch(branch: &str) -> bool {
    !branch.is_empty()
        && !branch.starts_with('-')
        && !branch.starts_with('/')
        && !branch.ends_with('/')
        && !branch.ends_with(".lock")
        && !branch.contains("..")
        && !branch.contains("//")
        && !branch.contains("@{")
        && !branch
            .bytes()
            .any(|b| b.is_ascii_control() || b" ~^:?*[\\".contains(&b))
}

/// `<root>/<owner>/<repo>.git`, if both names are valid (whether or not it exists).
pub(crate) fn repo_path(root: &Path, owner: &str, repo: &str) -> Option<PathBuf> {
    (valid_name(owner) && valid_name(repo)).then(|| root.join(owner).join(format!("{repo}.git")))
}

/// `<root>/<owner>/<repo>.git` if it is an existing repository.
pub(crate) fn existing_repo(root: &Path, owner: &str, repo: &str) -> Option<PathBuf> {
    repo_path(root, owner, repo).filter(|path| path.join("HEAD").is_file())
}

/// A `git` command with a predictable environment (no system/global config, fixed identity) run in `dir`.
fn git(dir: &Path) -> Command {
    let mut command = Command::new("git");
    command
        .current_dir(dir)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .env_remove("GIT_OBJECT_DIRECTORY")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Fake GitHub")
        .env("GIT_AUTHOR_EMAIL", "fake-github@example.invalid")
        .env("GIT_COMMITTER_NAME", "Fake GitHub")
        .env("GIT_COMMITTER_EMAIL", "fake-github@example.invalid")
        .stdin(Stdio::null());
    command
}

/// Runs `command`, feeding it `input`; an error unless it exits 0.
fn run(mut command: Command, input: Option<&[u8]>) -> Result<Output, RepoError> {
    let describe = format!("{command:?}");
    if input.is_some() {
        command.stdin(Stdio::piped());
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| RepoError(format!("{describe}: cannot start git: {error}")))?;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(input)
            .map_err(|error| RepoError(format!("{describe}: writing stdin: {error}")))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|error| RepoError(format!("{describe}: {error}")))?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(RepoError(format!(
            "{describe} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

/// Trimmed stdout of a successful `git` run.
fn stdout_of(command: Command, input: Option<&[u8]>) -> Result<String, RepoError> {
    let output = run(command, input)?;
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Creates the bare repository at `path` whose `default_branch` (also its `HEAD`) holds one commit adding
/// `README.md` with `# {repo}\n`.
pub(crate) fn create(path: &Path, repo: &str, default_branch: &str) -> Result<(), RepoError> {
    if !valid_branch(default_branch) {
        return Err(RepoError(format!("invalid branch name {default_branch:?}")));
    }
    if path.exists() {
        return Err(RepoError(format!("{} already exists", path.display())));
    }
    std::fs::create_dir_all(path)
        .map_err(|error| RepoError(format!("creating {}: {error}", path.display())))?;
    let mut init = git(path);
    init.args([
        "init",
        "--quiet",
        "--bare",
        "--initial-branch",
        default_branch,
        ".",
    ]);
    run(init, None)?;

    let mut blob = git(path);
    blob.args(["hash-object", "-w", "--stdin"]);
    let blob = stdout_of(blob, Some(format!("# {repo}\n").as_bytes()))?;
    let mut tree = git(path);
    tree.arg("mktree");
    let tree = stdout_of(tree, Some(format!("100644 blob {blob}\tREADME.md\n").as_bytes()))?;
    let mut commit = git(path);
    commit.args(["commit-tree", &tree, "-m", "Initial commit"]);
    let commit = stdout_of(commit, None)?;
    let mut update = git(path);
    update.args(["update-ref", &format!("refs/heads/{default_branch}"), &commit]);
    run(update, None)?;
    Ok(())
}

/// Commit sha of `branch`, if it exists.
pub(crate) fn branch_head(path: &Path, branch: &str) -> Option<String> {
    if !valid_branch(branch) {
        return None;
    }
    let mut command = git(path);
    command.args([
        "rev-parse",
        "--verify",
        "--quiet",
        &format!("refs/heads/{branch}^{{commit}}"),
    ]);
    stdout_of(command, None).ok().filter(|sha| !sha.is_empty())
}

/// The branch `HEAD` points at (the repository's default branch).
pub(crate) fn default_branch(path: &Path) -> Option<String> {
    let mut command = git(path);
    command.args(["symbolic-ref", "--quiet", "HEAD"]);
    let head = stdout_of(command, None).ok()?;
    head.strip_prefix("refs/heads/").map(str::to_owned)
}

/// Content of `file` at `branch`, if both exist (lossy UTF-8).
pub(crate) fn file_at(path: &Path, branch: &str, file: &str) -> Option<String> {
    if !valid_branch(branch) || file.is_empty() {
        return None;
    }
    let mut command = git(path);
    command.args(["cat-file", "blob", &format!("refs/heads/{branch}:{file}")]);
    let output = run(command, None).ok()?;
    Some(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Full commit messages on `branch` (trailing newlines trimmed), newest first; empty if there is no branch.
pub(crate) fn log(path: &Path, branch: &str) -> Vec<String> {
    if !valid_branch(branch) {
        return Vec::new();
    }
    let mut command = git(path);
    command.args(["log", "-z", "--format=%B", &format!("refs/heads/{branch}"), "--"]);
    let Ok(output) = run(command, None) else {
        return Vec::new();
    };
    String::from_utf8_lossy(&output.stdout)
        .split('\0')
        .map(|message| message.trim_end_matches('\n').to_owned())
        .filter(|message| !message.is_empty())
        .collect()
}

/// Whether `head` has no commits that `base` lacks (GitHub's "No commits between …").
pub(crate) fn no_commits_between(path: &Path, base_sha: &str, head_sha: &str) -> bool {
    let mut command = git(path);
    command.args(["merge-base", "--is-ancestor", head_sha, base_sha]);
    run(command, None).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name("agent-farm_1.x"));
        for bad in ["", ".", "..", ".hidden", "-x", "a/b", "a b"] {
            assert!(!valid_name(bad), "{bad:?}");
        }
        assert!(valid_branch("agent/task-1"));
        for bad in ["", "-f", "a..b", "a b", "x.lock", "a:b", "HEAD@{1}", "/a", "a/"] {
            assert!(!valid_branch(bad), "{bad:?}");
        }
    }

    #[test]
    fn create_and_read() {
        let root = tempfile::tempdir().unwrap();
        let path = repo_path(root.path(), "octo", "demo").unwrap();
        create(&path, "demo", "trunk").unwrap();
        assert!(existing_repo(root.path(), "octo", "demo").is_some());
        assert!(existing_repo(root.path(), "octo", "other").is_none());
        assert_eq!(default_branch(&path).as_deref(), Some("trunk"));
        let head = branch_head(&path, "trunk").unwrap();
        assert_eq!(head.len(), 40);
        assert_eq!(branch_head(&path, "main"), None);
        assert_eq!(file_at(&path, "trunk", "README.md").as_deref(), Some("# demo\n"));
        assert_eq!(file_at(&path, "trunk", "nope.md"), None);
        assert_eq!(log(&path, "trunk"), vec!["Initial commit".to_owned()]);
        assert!(log(&path, "main").is_empty());
        assert!(no_commits_between(&path, &head, &head));
        assert!(create(&path, "demo", "trunk").is_err());
    }
}
