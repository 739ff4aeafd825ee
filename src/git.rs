//! The commit and branch of the project's git repository, read from `.git` itself (HEAD,
//! the branch's ref file, packed-refs; worktrees through their `gitdir:`/`commondir`), so
//! that every run can export them (`NEXUS_GIT_SHA`, `NEXUS_GIT_BRANCH`) without starting
//! git. A layout this reader does not know (reftable, a ref it cannot find) falls back to
//! `git rev-parse`. Must not: write anything.

use std::path::{Path, PathBuf};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GitInfo {
    pub sha: String,
    /// The branch name; `HEAD` when detached (as `git rev-parse --abbrev-ref HEAD` says).
    pub branch: String,
}

/// The repository `dir` is in, if any: Ok(None) outside every repository; Err when it is
/// in one whose HEAD cannot be read (a repository without commits, a broken one).
pub fn head(dir: &Path) -> Result<Option<GitInfo>, String> {
    let Some(gitdir) = find_gitdir(dir) else {
        return Ok(None);
    };
    match read_head(&gitdir) {
        Some(info) => Ok(Some(info)),
        None => rev_parse(dir).map(Some),
    }
}

/// The git directory of the repository holding `dir`: `.git` (a directory, or a file
/// saying `gitdir: PATH` in worktrees and submodules) here or in a parent.
fn find_gitdir(dir: &Path) -> Option<PathBuf> {
    let mut at = Some(dir);
    while let Some(d) = at {
        let dotgit = d.join(".git");
        if dotgit.is_dir() {
            return Some(dotgit);
        }
        if let Ok(text) = std::fs::read_to_string(&dotgit) {
            let path = text.strip_prefix("gitdir:")?.trim();
            return Some(d.join(path));
        }
        at = d.parent();
    }
    None
}

fn read_head(gitdir: &Path) -> Option<GitInfo> {
    let head = std::fs::read_to_string(gitdir.join("HEAD")).ok()?;
    let head = head.trim();
    let Some(refname) = head.strip_prefix("ref:").map(str::trim) else {
        // Detached: HEAD holds the commit.
        return is_sha(head).then(|| GitInfo {
            sha: head.to_string(),
            branch: "HEAD".to_string(),
        });
    };
    let branch = refname.strip_prefix("refs/heads/").unwrap_or(refname);
    // Branch refs live in the common directory of a worktree.
    let common = std::fs::read_to_string(gitdir.join("commondir"))
        .map(|c| gitdir.join(c.trim()))
        .unwrap_or_else(|_| gitdir.to_path_buf());
    let sha = [gitdir, common.as_path()]
        .iter()
        .find_map(|d| loose_ref(d, refname))
        .or_else(|| packed_ref(&common, refname))?;
    Some(GitInfo {
        sha,
        branch: branch.to_string(),
    })
}

fn loose_ref(gitdir: &Path, refname: &str) -> Option<String> {
    let text = std::fs::read_to_string(gitdir.join(refname)).ok()?;
    let sha = text.trim();
    is_sha(sha).then(|| sha.to_string())
}

fn packed_ref(gitdir: &Path, refname: &str) -> Option<String> {
    let text = std::fs::read_to_string(gitdir.join("packed-refs")).ok()?;
    text.lines().find_map(|l| {
        let (sha, name) = l.split_once(' ')?;
        (name == refname && is_sha(sha)).then(|| sha.to_string())
    })
}

fn is_sha(s: &str) -> bool {
    matches!(s.len(), 40 | 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `git rev-parse` for what the files did not tell.
fn rev_parse(dir: &Path) -> Result<GitInfo, String> {
    let git = |args: &[&str]| -> Result<String, String> {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| format!("cannot run git: {}", crate::error::io_reason(&e)))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
            return Err(format!(
                "git {} failed in {}: {err}",
                args.join(" "),
                dir.display()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    Ok(GitInfo {
        sha: git(&["rev-parse", "HEAD"])?,
        branch: git(&["rev-parse", "--abbrev-ref", "HEAD"])?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What git itself says, for the repositories this reader must agree with.
    fn git(dir: &Path, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .expect("git");
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    #[test]
    fn agrees_with_git_on_branches_packed_refs_detached_heads_and_worktrees() {
        let tmp = std::env::temp_dir().join(format!("nexus-git-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let repo = tmp.join("repo");
        std::fs::create_dir_all(repo.join("sub")).unwrap();
        assert_eq!(
            head(&repo.join("sub")),
            Ok(None),
            "outside every repository"
        );
        git(&repo, &["init", "-q", "-b", "feature/x$(touch${IFS}pwned)"]);
        std::fs::write(repo.join("f"), "1").unwrap();
        git(&repo, &["add", "f"]);
        git(&repo, &["commit", "-q", "-m", "one"]);
        let want = |dir: &Path| GitInfo {
            sha: git(dir, &["rev-parse", "HEAD"]),
            branch: git(dir, &["rev-parse", "--abbrev-ref", "HEAD"]),
        };
        let sub = repo.join("sub");
        assert_eq!(head(&sub).unwrap(), Some(want(&repo)));
        assert_eq!(
            head(&sub).unwrap().unwrap().branch,
            "feature/x$(touch${IFS}pwned)"
        );
        git(&repo, &["pack-refs", "--all"]);
        assert_eq!(head(&sub).unwrap(), Some(want(&repo)), "packed refs");
        let wt = tmp.join("wt");
        git(
            &repo,
            &["worktree", "add", "-q", "-b", "other", wt.to_str().unwrap()],
        );
        assert_eq!(head(&wt).unwrap(), Some(want(&wt)), "worktree");
        git(&repo, &["checkout", "-q", "--detach"]);
        assert_eq!(head(&repo).unwrap(), Some(want(&repo)), "detached");
        assert_eq!(head(&repo).unwrap().unwrap().branch, "HEAD");
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
