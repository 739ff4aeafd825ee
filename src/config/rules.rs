//! What names and values in nexus.toml may contain beyond their type (docs/nexus-toml.md,
//! "Names and values"): environment variable names, plain user names, names that are
//! printed (tasks, host groups: no control characters), and no NUL byte in text handed
//! to the system. Checked when the file is loaded, so that nothing is dropped silently
//! or fails only when it runs. Host strings have their own rules, in `host`.
//! Must not: read anything but the value it is given.

use std::ops::Range;

use super::host::{self, USER_CHARS};
use super::load::{Value, Walker};
use crate::error::printable;

impl Walker<'_> {
    /// An environment variable name of a task's `env`: reported unless it is one.
    pub(super) fn env_name(&mut self, name: &str, span: Range<usize>) -> bool {
        if is_env_name(name) {
            return true;
        }
        let message = if name.is_empty() {
            "an environment variable name cannot be empty".to_string()
        } else {
            format!("`{name}` is not a valid environment variable name")
        };
        self.error(
            span,
            message,
            Some("a name has letters, digits and `_`, and does not start with a digit (like `RUST_LOG`)".into()),
        );
        false
    }

    /// A name that nexus prints (`what`: "task name", "host group name"): reported when
    /// it has a control character, which would reach the terminal as it is.
    pub(super) fn printable_name(&mut self, name: &str, span: Range<usize>, what: &str) -> bool {
        let Some(c) = name.chars().find(|c| c.is_control()) else {
            return true;
        };
        self.error(
            span,
            format!(
                "{what} `{name}` has a control character (`{}`)",
                printable(&c.to_string())
            ),
            Some("names are printed in terminals and logs: use visible characters".into()),
        );
        false
    }

    /// A string that nexus prints as one line (`desc`): reported when it has a control
    /// character.
    pub(super) fn printable_text(&mut self, v: &Value, key: &str) -> Option<String> {
        let text = self.string(v, key)?;
        let Some(c) = text.chars().find(|c| c.is_control()) else {
            return Some(text);
        };
        self.error(
            v.span(),
            format!(
                "`{key}` has a control character (`{}`)",
                printable(&c.to_string())
            ),
            Some("it is printed in terminals as one line: use visible characters".into()),
        );
        None
    }

    /// A plain user name (`user` of a command, `ssh_user`): not a placeholder, nothing a
    /// shell would read.
    pub(super) fn user_name(&mut self, v: &Value, key: &str) -> Option<String> {
        let name = self.string(v, key)?;
        if name.contains("{{") {
            self.error(
                v.span(),
                format!("`{key}` takes a plain user name; placeholders are not expanded there"),
                Some(format!("write the name itself: {key} = \"deploy\"")),
            );
            return None;
        }
        let message = if name.is_empty() {
            Some(format!("`{key}` is empty"))
        } else {
            host::user_problem(&name)
                .map(|p| format!("`{key}` `{name}` is not a plain user name: it {p}"))
        };
        if let Some(message) = message {
            self.error(
                v.span(),
                message,
                Some(format!("a user name has {USER_CHARS}")),
            );
            return None;
        }
        Some(name)
    }

    /// Text that reaches the system as a C string (a command, a directory, an
    /// environment value): reported when it has a NUL byte, which none can hold.
    pub(super) fn no_nul(&mut self, text: &str, span: Range<usize>) -> bool {
        if !text.contains('\0') {
            return true;
        }
        self.error(
            span,
            "this string has a NUL byte (`\\u0000`), which no command, path or environment variable can hold",
            Some("remove the `\\u0000`".into()),
        );
        false
    }
}

/// Letters, digits and `_`, not starting with a digit: what a shell can `export`.
pub fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}
