//! File steps as written: `{ upload = "dist/", to = "/opt/app/" }`, `{ template =
//! "conf/app.ini.j2", to = "/etc/app.ini" }`, `{ download = "/var/log/app.log", to =
//! "logs/{{ host }}/app.log" }` and their options (docs/nexus-toml.md, "Files"). Each
//! becomes a `Command` carrying a `FileStep`, so that it is numbered, journaled, retried
//! and resumed like any command. Template files are read by `config::load`, not here.
//! Must not: read files or touch the network.

use std::ops::Range;

use toml::de::DeTable;

use super::load::{Value, Walker};

use super::model::{Command, FileKind, FileStep, Spanned};
use super::template::Template;

/// The keys that name a file step's kind.
pub const FILE_KINDS: &[&str] = &["upload", "template", "download"];

impl Walker<'_> {
    /// A table with `upload`, `template` or `download`: the step, or None (reported).
    pub(super) fn file_step(
        &mut self,
        t: &DeTable,
        span: Range<usize>,
        task: &str,
    ) -> Option<Command> {
        let kind = self.file_kind(t, span.clone(), task)?;
        let from_v = t.get(kind.name())?;
        let from_text = self.string(from_v, kind.name())?;
        if from_text.trim().is_empty() {
            self.error(
                from_v.span(),
                format!("the {} step of task `{task}` names no path", kind.name()),
                Some(format!(
                    "write the path: {{ {} = \"...\", to = \"...\" }}",
                    kind.name()
                )),
            );
            return None;
        }
        let Some(to_v) = t.get("to") else {
            self.error(
                span,
                format!("the {} step of task `{task}` has no `to`", kind.name()),
                Some(format!(
                    "write where it goes: {{ {} = \"{from_text}\", to = \"...\" }}",
                    kind.name()
                )),
            );
            return None;
        };
        let to_text = self.string(to_v, "to")?;
        let from = self.template(&from_text, from_v.span())?;
        let to = self.template(&to_text, to_v.span())?;
        let mut step = FileStep {
            kind,
            from,
            to,
            exclude: Vec::new(),
            mode: None,
            owner: None,
            group: None,
            sudo: false,
            validate: None,
            vars: Vec::new(),
            body: None,
        };
        let shown = format!("{} {from_text} -> {to_text}", kind.name());
        let display = Spanned {
            value: Template::parse(&shown).unwrap_or_else(|_| Template::literal(&from_text)),
            span: span.clone(),
            text_start: None,
        };
        let mut command = Command::new(shown, display);
        self.file_options(t, &mut step, &mut command);
        command.sudo = step.sudo;
        command.file = Some(Box::new(step));
        Some(command)
    }

    /// Which file step `t` is (exactly one of `upload`, `template`, `download`, and no
    /// `cmd`), its other keys checked.
    fn file_kind(&mut self, t: &DeTable, span: Range<usize>, task: &str) -> Option<FileKind> {
        let kinds: Vec<&str> = FILE_KINDS
            .iter()
            .copied()
            .filter(|k| t.contains_key(*k))
            .collect();
        if kinds.len() > 1 || t.contains_key("cmd") {
            let mut found = kinds.clone();
            if t.contains_key("cmd") {
                found.push("cmd");
            }
            self.error(
                span,
                format!(
                    "a step of task `{task}` has both `{}` and `{}`",
                    found[0], found[1]
                ),
                Some("one step does one thing: split it into two steps".into()),
            );
            return None;
        }
        let kind = match *kinds.first()? {
            "upload" => FileKind::Upload,
            "template" => FileKind::Template,
            _ => FileKind::Download,
        };
        let mut allowed: Vec<&str> = vec![kind.name()];
        let declared = super::keys::FILE_STEP.iter().map(|f| f.name);
        allowed.extend(
            declared
                .filter(|k| !FILE_KINDS.contains(k))
                .filter(|k| match *k {
                    "exclude" => kind == FileKind::Upload,
                    "vars" => kind == FileKind::Template,
                    "validate" | "owner" | "group" | "mode" => kind != FileKind::Download,
                    _ => true,
                }),
        );
        self.unknown_keys(
            t,
            &allowed,
            &format!(
                "a{} {} step",
                if kind == FileKind::Upload { "n" } else { "" },
                kind.name()
            ),
        );
        Some(kind)
    }

    fn file_options(&mut self, t: &DeTable, step: &mut FileStep, c: &mut Command) {
        for (k, v) in t.iter() {
            match k.get_ref().as_ref() {
                "exclude" => {
                    step.exclude = self.globs(v, "exclude");
                }
                "mode" => step.mode = self.octal_mode(v),
                "owner" => step.owner = self.user_name(v, "owner"),
                "group" => step.group = self.user_name(v, "group"),
                "sudo" => step.sudo = self.boolean(v, "sudo").unwrap_or(false),
                "validate" => {
                    if let Some(text) = self.string(v, "validate") {
                        step.validate = self.template(&text, v.span());
                    }
                }
                "vars" => {
                    if let Some(vt) = self.table(v, "vars") {
                        step.vars = self.vars(vt);
                    }
                }
                // What a file step shares with a command is read as a command reads it.
                name @ ("notify" | "timeout" | "retries" | "retry_delay" | "continue_on_error") => {
                    if let Some(key) = super::keys::COMMAND.iter().find(|k| k.name == name) {
                        (key.read)(self, v, c);
                    }
                }
                _ => {}
            }
        }
        if step
            .validate
            .as_ref()
            .is_some_and(|v| !v.value.source().contains("%s"))
        {
            let span = step
                .validate
                .as_ref()
                .map(|v| v.span.clone())
                .unwrap_or_default();
            self.error(
                span,
                "`validate` does not say where the new file is",
                Some(
                    "write `%s` where the validator takes the file: validate = \"nginx -t -c %s\""
                        .into(),
                ),
            );
        }
    }

    /// `mode = "0644"`: permission bits in octal.
    fn octal_mode(&mut self, v: &Value) -> Option<u32> {
        let m = self.string(v, "mode")?;
        let ok = (3..=4).contains(&m.len()) && m.chars().all(|c| ('0'..='7').contains(&c));
        match u32::from_str_radix(&m, 8) {
            Ok(n) if ok && n <= 0o7777 => Some(n),
            _ => {
                self.error(
                    v.span(),
                    format!("`mode` `{m}` is not a file mode"),
                    Some(
                        "write the permission bits in octal, as chmod takes them: mode = \"0640\""
                            .into(),
                    ),
                );
                None
            }
        }
    }
}
