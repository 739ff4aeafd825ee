//! Steps that are not written as a command line: `{ secret = "NAME", to = "PATH", mode,
//! owner, group, sudo }` writes a secret to a file on the target. It becomes a command
//! whose line is generated here (a template: the value comes from `secret()`, so the line
//! travels on stdin and is masked everywhere). The file is written beside its target with
//! umask 077, given its mode and owner, then renamed over it: a reader never sees half a
//! value. Must not: put the value anywhere but in the generated template.

use std::ops::Range;

use toml::de::DeTable;

use super::keys;
use super::load::Walker;
use super::model::{Command, Spanned};
use super::template::Template;

impl Walker<'_> {
    /// `{ secret = "NAME", to = "PATH", ... }` as a command.
    pub(super) fn secret_step(
        &mut self,
        t: &DeTable,
        span: Range<usize>,
        task: &str,
    ) -> Option<Command> {
        self.unknown_keys(t, &keys::names(keys::SECRET_STEP), "a secret step");
        let name = self.string(t.get("secret")?, "secret")?;
        let Some(to_v) = t.get("to") else {
            self.error(
                span,
                format!("the secret step of {} `{task}` has no `to`", self.steps_of),
                Some(format!(
                    "write {{ secret = \"{name}\", to = \"/path/of/the/file\" }}"
                )),
            );
            return None;
        };
        let to = self.string(to_v, "to")?;
        // `to` may use variables ({{ host }}): its syntax is checked where it is written.
        self.template(&to, to_v.span())?;
        let mode = match t.get("mode") {
            Some(v) => self.file_mode(v)?,
            None => "0600".to_string(),
        };
        let owner = t.get("owner").and_then(|v| self.user_name(v, "owner"));
        let group = t.get("group").and_then(|v| self.user_name(v, "group"));
        let sudo = t
            .get("sudo")
            .and_then(|v| self.boolean(v, "sudo"))
            .unwrap_or(false);
        let text = secret_script(&name, &to, &mode, owner.as_deref(), group.as_deref());
        let template = match Template::parse(&text) {
            Ok(t) => t,
            Err(e) => {
                self.error(
                    to_v.span(),
                    format!("cannot use `to` here: {}", e.message),
                    e.help,
                );
                return None;
            }
        };
        let mut c = Command::new(
            format!("secret {name} -> {to}"),
            Spanned {
                value: template,
                span: to_v.span(),
                text_start: None,
            },
        );
        c.sudo = sudo;
        Some(c)
    }

    /// `mode = "0640"`: octal permission bits.
    fn file_mode(&mut self, v: &super::load::Value) -> Option<String> {
        let m = self.string(v, "mode")?;
        let ok = (3..=4).contains(&m.len())
            && m.chars().all(|c| ('0'..='7').contains(&c))
            && u32::from_str_radix(&m, 8).is_ok_and(|n| n <= 0o7777);
        if ok {
            return Some(m);
        }
        self.error(
            v.span(),
            format!("`mode` `{m}` is not a file mode"),
            Some("write the permission bits in octal, as chmod takes them: mode = \"0640\"".into()),
        );
        None
    }
}

/// The shell (as a template) that writes secret `name` to `to`.
fn secret_script(
    name: &str,
    to: &str,
    mode: &str,
    owner: Option<&str>,
    group: Option<&str>,
) -> String {
    let chown = match (owner, group) {
        (Some(o), Some(g)) => format!(" && chown {o}:{g} \"$__nexus_t\""),
        (Some(o), None) => format!(" && chown {o} \"$__nexus_t\""),
        (None, Some(g)) => format!(" && chgrp {g} \"$__nexus_t\""),
        (None, None) => String::new(),
    };
    let name = name.replace('\\', "\\\\").replace('"', "\\\"");
    format!(
        "{{% set __to %}}{to}{{% endset %}}umask 077 && __nexus_t=$(mktemp \"$(dirname -- {{{{ __to | quote }}}})/.nexus-secret.XXXXXX\") && \
         {{ printf '%s' {{{{ secret(\"{name}\") | quote }}}} > \"$__nexus_t\" && chmod {mode} \"$__nexus_t\"{chown} && mv -f -- \"$__nexus_t\" {{{{ __to | quote }}}}; }} \
         || {{ rm -f -- \"$__nexus_t\"; exit 1; }}"
    )
}
