//! `#!` scripts (docs/nexus-toml.md, "Scripts"): a command whose first line starts with
//! `#!` is written to a private temporary file (mode 0700, in a directory of its own,
//! 0700) and run as an executable, so the kernel starts the interpreter the line names.
//! Locally nexus writes the file itself; where a shell must do it (remotely, or under
//! sudo as another user), `runner` is shell code that does the same from its input.
//! Must not: leave the file behind when the script ends.

use std::ffi::CString;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Whether a command (as expanded) is a script for the interpreter on its first line.
pub fn is_script(line: &str) -> bool {
    line.starts_with("#!")
}

/// The interpreter a script names (its `#!` line without `#!`), for messages.
pub fn interpreter(line: &str) -> &str {
    line.lines()
        .next()
        .unwrap_or("")
        .trim_start_matches("#!")
        .trim()
}

/// A script written to a private directory; the directory goes when this is dropped.
#[derive(Debug)]
pub struct ScriptFile {
    dir: PathBuf,
    pub path: PathBuf,
}

impl ScriptFile {
    /// Write `text` to `TMPDIR/nexus-script.XXXXXX/script`, the directory 0700 (made by
    /// mkdtemp, so no one else can have made it first) and the file 0700.
    pub fn write(text: &str) -> io::Result<ScriptFile> {
        let dir = private_dir(&std::env::temp_dir())?;
        let path = dir.join("script");
        let file = ScriptFile { dir, path };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o700)
            .open(&file.path)?;
        f.write_all(text.as_bytes())?;
        if !text.ends_with('\n') {
            f.write_all(b"\n")?;
        }
        Ok(file)
    }

    /// The directory the script is in (for messages about it).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for ScriptFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A new directory under `parent` that only this user can enter (mkdtemp(3)).
fn private_dir(parent: &Path) -> io::Result<PathBuf> {
    let template = parent.join("nexus-script.XXXXXX");
    let mut bytes = CString::new(template.as_os_str().as_bytes())
        .map_err(|_| io::Error::other("the temporary directory's path has a NUL byte"))?
        .into_bytes_with_nul();
    // SAFETY: `bytes` is a writable, NUL-terminated buffer that mkdtemp fills in place.
    let made = unsafe { libc::mkdtemp(bytes.as_mut_ptr().cast()) };
    if made.is_null() {
        return Err(io::Error::last_os_error());
    }
    bytes.pop();
    Ok(PathBuf::from(std::ffi::OsStr::from_bytes(&bytes)))
}

/// POSIX shell code that writes `text` to a private temporary file, runs it with stdin
/// from /dev/null, removes it (also when the shell is stopped by SIGHUP, SIGINT or
/// SIGTERM), and exits with the script's status. For a shell that reads this on its
/// input: the script is never in an argument list.
pub fn runner(text: &str) -> String {
    let mut body = text.to_string();
    if !body.ends_with('\n') {
        body.push('\n');
    }
    format!(
        "__nexus_d=$(mktemp -d \"${{TMPDIR:-/tmp}}/nexus-script.XXXXXX\") || exit 126\n\
         trap 'rm -rf \"$__nexus_d\"' EXIT\n\
         trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM\n\
         printf '%s' {} > \"$__nexus_d/script\" && chmod 700 \"$__nexus_d/script\" || exit 126\n\
         \"$__nexus_d/script\" </dev/null\n",
        super::ssh::remote::quote(&body)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_are_told_by_their_first_line() {
        assert!(is_script("#!/usr/bin/env python3\nprint(1)"));
        assert!(!is_script(" #!/bin/sh\necho"));
        assert!(!is_script("echo '#!'"));
        assert_eq!(
            interpreter("#! /usr/bin/env python3 \nx"),
            "/usr/bin/env python3"
        );
    }

    #[test]
    fn the_file_is_private_and_goes_with_its_directory() {
        use std::os::unix::fs::PermissionsExt;
        let f = ScriptFile::write("#!/bin/sh\necho hi").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode(f.dir()), mode(&f.path)), (0o700, 0o700));
        assert_eq!(
            std::fs::read_to_string(&f.path).unwrap(),
            "#!/bin/sh\necho hi\n"
        );
        let dir = f.dir().to_path_buf();
        drop(f);
        assert!(!dir.exists());
    }

    #[test]
    fn the_runner_runs_the_script_and_cleans_up() {
        let tmp = ScriptFile::write("#!/bin/sh\n").unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(runner(
                "#!/bin/sh\necho \"it's $0\" | sed 's|/.*/|/|'; exit 3",
            ))
            .env("TMPDIR", tmp.dir())
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "it's /script\n");
        assert_eq!(out.status.code(), Some(3));
        // Only the test's own script file is left in its directory.
        let left: Vec<_> = std::fs::read_dir(tmp.dir()).unwrap().flatten().collect();
        assert_eq!(left.len(), 1, "{left:?}");
    }
}
