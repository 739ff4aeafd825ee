//! Every key nexus.toml accepts, declared once per table: its name, the kind of value it
//! takes, a sentence about it, and (for the tables read key by key) how the loader reads
//! it into the model. Unknown-key errors, their suggestions, the list of what a table
//! takes and the JSON Schema of `nexus schema` all come from these tables.
//! Must not: read anything but the one value a key is given.

use toml::de::DeValue;

use super::load::{TaskDraft, Value, Walker};
use super::model::{Command, HostKeyChecking, Settings, Strategy};
use crate::error::did_you_mean;

/// The kind of value a key takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    Bool,
    Integer {
        min: i64,
        max: i64,
    },
    /// An integer of milliseconds or a string with a unit.
    Duration,
    /// A string, or a list of strings.
    Strings,
    /// A list of strings.
    List,
    /// One of these words.
    Choice(&'static [&'static str]),
    /// A table of names to strings.
    Env,
    /// A command string, a command table, or a list of them.
    Steps,
    Table,
    /// A number of hosts or a percentage of them (`"25%"`).
    Amount,
    /// An amount, or a list of them.
    Amounts,
    /// An octal file mode such as "0640".
    FileMode,
    /// `[config]`: the keys of `CONFIG`.
    Config,
    /// `[vars]`: variable names to any TOML value.
    Vars,
    /// `[hosts]`: group names to a host string, a list, or a table of `GROUP` keys.
    HostGroups,
    /// `[tasks]`: task names to tables of `TASK` keys.
    Tasks,
}

/// Reads one key's value into `T`, reporting problems on the walker.
pub type Read<T> = fn(&mut Walker<'_>, &Value<'_>, &mut T);

pub struct Key<T: 'static> {
    pub name: &'static str,
    pub kind: Kind,
    pub doc: &'static str,
    pub read: Read<T>,
}

/// A key whose value hand-written code reads (the top level, host group tables, secret
/// steps): declared for the unknown-key errors and the schema.
pub struct Field {
    pub name: &'static str,
    pub kind: Kind,
    pub doc: &'static str,
}

/// What the schema needs of a declared key, whichever table declares it.
pub trait Declared {
    fn name(&self) -> &'static str;
    fn kind(&self) -> Kind;
    fn doc(&self) -> &'static str;
}

impl<T> Declared for Key<T> {
    fn name(&self) -> &'static str {
        self.name
    }
    fn kind(&self) -> Kind {
        self.kind
    }
    fn doc(&self) -> &'static str {
        self.doc
    }
}

impl Declared for Field {
    fn name(&self) -> &'static str {
        self.name
    }
    fn kind(&self) -> Kind {
        self.kind
    }
    fn doc(&self) -> &'static str {
        self.doc
    }
}

/// The names of a table's keys, in declaration order.
pub fn names<K: Declared>(keys: &[K]) -> Vec<&'static str> {
    keys.iter().map(Declared::name).collect()
}

/// Keys of the top level (read by `load::document` itself).
pub const TOP: &[Field] = &[
    Field {
        name: "version",
        kind: Kind::Integer { min: 1, max: 1 },
        doc: "file format version; this nexus reads 1",
    },
    Field {
        name: "default",
        kind: Kind::String,
        doc: "the task (or alias) a bare `nexus` runs; without it, `nexus` lists the tasks",
    },
    Field {
        name: "dotenv",
        kind: Kind::Strings,
        doc: "NAME=value files relative to the project root, read before the run (missing ones skipped; the shell's environment wins)",
    },
    Field {
        name: "config",
        kind: Kind::Config,
        doc: "settings: SSH, limits, output",
    },
    Field {
        name: "vars",
        kind: Kind::Vars,
        doc: "template variables: names to any TOML value, used as {{ name }}",
    },
    Field {
        name: "env",
        kind: Kind::Env,
        doc: "environment variables of every task's commands (a task's own `env` wins)",
    },
    Field {
        name: "hosts",
        kind: Kind::HostGroups,
        doc: "host groups: a host string, a list of them, or { hosts = [...], groups = [...] }",
    },
    Field {
        name: "tasks",
        kind: Kind::Tasks,
        doc: "the tasks, by name",
    },
    Field {
        name: "handlers",
        kind: Kind::Table,
        doc: "handlers, by name: steps run once at the end of a task on a host that notified them ({ run = [...], notify = [...] })",
    },
];

/// Keys of a host group written as a table.
pub const GROUP: &[Field] = &[
    Field {
        name: "groups",
        kind: Kind::Strings,
        doc: "other host groups whose hosts this group includes",
    },
    Field {
        name: "hosts",
        kind: Kind::Strings,
        doc: "host strings: host, user@host, user@host:port or [ipv6]:port; or { host = \"...\", vars = { ... } } tables",
    },
    Field {
        name: "vars",
        kind: Kind::Vars,
        doc: "template variables of every host of the group",
    },
];

/// The keys of file steps (`upload`, `template`, `download`; src/config/files.rs says
/// which kind takes which).
pub const FILE_STEP: &[Field] = &[
    Field { name: "upload", kind: Kind::String, doc: "a local file or directory (relative to the project root) to put on the target; a directory's contents go under `to`" },
    Field { name: "template", kind: Kind::String, doc: "a local Jinja2 file (relative to the project root) rendered per host and put on the target" },
    Field { name: "download", kind: Kind::String, doc: "a file or directory on the target to bring here" },
    Field { name: "to", kind: Kind::String, doc: "where it goes (ending in / : into that directory); on the target, or here for download" },
    Field { name: "exclude", kind: Kind::Strings, doc: "upload: globs of paths not to send" },
    Field { name: "mode", kind: Kind::FileMode, doc: "permission bits of the files written, in octal (default: the source's)" },
    Field { name: "owner", kind: Kind::String, doc: "owner of the files written (needs sudo)" },
    Field { name: "group", kind: Kind::String, doc: "group of the files written (needs sudo)" },
    Field { name: "sudo", kind: Kind::Bool, doc: "read and write as root through `sudo -n`" },
    Field { name: "validate", kind: Kind::String, doc: "a command run on the new file (%s) before it replaces the old one" },
    Field { name: "notify", kind: Kind::Strings, doc: "handlers to notify when the step changed something" },
    Field { name: "vars", kind: Kind::Vars, doc: "template: variables of this template only" },
    Field { name: "timeout", kind: Kind::Duration, doc: "limit of one attempt" },
    Field { name: "retries", kind: Kind::Integer { min: 0, max: 100 }, doc: "attempts after the first when it fails" },
    Field { name: "retry_delay", kind: Kind::Duration, doc: "first delay between attempts" },
    Field { name: "continue_on_error", kind: Kind::Bool, doc: "a failure is reported and the task goes on" },
];

/// The keys of a secret step (`run` item `{ secret = "NAME", to = "PATH" }`).
pub const SECRET_STEP: &[Field] = &[
    Field {
        name: "secret",
        kind: Kind::String,
        doc: "name of the secret in .nexus/secrets.enc whose value is written",
    },
    Field {
        name: "to",
        kind: Kind::String,
        doc: "path of the file on the target (replaced whole, never half written)",
    },
    Field {
        name: "mode",
        kind: Kind::FileMode,
        doc: "permission bits in octal (default \"0600\")",
    },
    Field {
        name: "owner",
        kind: Kind::String,
        doc: "user that owns the file (chown)",
    },
    Field {
        name: "group",
        kind: Kind::String,
        doc: "group of the file (chgrp)",
    },
    Field {
        name: "sudo",
        kind: Kind::Bool,
        doc: "write the file through `sudo -n`",
    },
];

pub const LOG_LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace", "off"];

pub const CONFIG: &[Key<Settings>] = &[
    Key {
        name: "ssh_user",
        kind: Kind::String,
        doc: "SSH user when neither the host string nor ssh_config names one (default: the local user)",
        read: |w, v, s| s.ssh_user = w.user_name(v, "ssh_user").or(s.ssh_user.take()),
    },
    Key {
        name: "ssh_port",
        kind: Kind::Integer { min: 1, max: 65535 },
        doc: "SSH port when neither the host string nor ssh_config names one (default 22)",
        read: |w, v, s| {
            if let Some(n) = w.integer(v, "ssh_port", 1, 65535) {
                s.ssh_port = n as u16;
            }
        },
    },
    Key {
        name: "ssh_identity",
        kind: Kind::String,
        doc: "private key tried first (before ssh-agent and the default keys)",
        read: |w, v, s| s.ssh_identity = w.string(v, "ssh_identity"),
    },
    Key {
        name: "ssh_config",
        kind: Kind::String,
        doc: "ssh_config file to read (default ~/.ssh/config); \"none\" reads none",
        read: |w, v, s| {
            if let Some(p) = w.string(v, "ssh_config") {
                s.ssh_config = (p != "none").then_some(p);
            }
        },
    },
    Key {
        name: "known_hosts",
        kind: Kind::String,
        doc: "known_hosts file (default ~/.ssh/known_hosts, or ssh_config's UserKnownHostsFile)",
        read: |w, v, s| s.known_hosts = w.string(v, "known_hosts"),
    },
    Key {
        name: "host_key_checking",
        kind: Kind::Choice(HostKeyChecking::NAMES),
        doc: "strict (default), accept-new, tofu or off",
        read: |w, v, s| {
            if let Some(text) = w.choice(v, "host_key_checking", HostKeyChecking::NAMES) {
                s.host_key_checking = HostKeyChecking::parse(&text).unwrap_or(s.host_key_checking);
            }
        },
    },
    Key {
        name: "connect_timeout",
        kind: Kind::Duration,
        doc: "limit of one attempt to connect and log in (default 10s)",
        read: |w, v, s| {
            if let Some(d) = w.duration(v, "connect_timeout", false) {
                s.connect_timeout = d;
            }
        },
    },
    Key {
        name: "parallel_limit",
        kind: Kind::Integer { min: 1, max: 10_000 },
        doc: "tasks running at once (default 10)",
        read: |w, v, s| {
            if let Some(n) = w.integer(v, "parallel_limit", 1, 10_000) {
                s.parallel_limit = n as usize;
            }
        },
    },
    Key {
        name: "pool_size",
        kind: Kind::Integer { min: 1, max: 1_000 },
        doc: "SSH connections kept per host (default 4)",
        read: |w, v, s| {
            if let Some(n) = w.integer(v, "pool_size", 1, 1_000) {
                s.pool_size = n as usize;
            }
        },
    },
    Key {
        name: "max_connections",
        kind: Kind::Integer {
            min: 1,
            max: 100_000,
        },
        doc: "SSH connections open at once, all hosts together (default 256)",
        read: |w, v, s| {
            if let Some(n) = w.integer(v, "max_connections", 1, 100_000) {
                s.max_connections = n as usize;
            }
        },
    },
    Key {
        name: "handshakes_per_endpoint",
        kind: Kind::Integer { min: 1, max: 1000 },
        doc: "SSH handshakes at once with one server address, bastion or ProxyCommand (default 6: below OpenSSH's MaxStartups 10)",
        read: |w, v, s| {
            if let Some(n) = w.integer(v, "handshakes_per_endpoint", 1, 1000) {
                s.handshakes_per_endpoint = n as usize;
            }
        },
    },
    Key {
        name: "log_level",
        kind: Kind::Choice(LOG_LEVELS),
        doc: "diagnostics shown on stderr (default warn); --log-level and NEXUS_LOG_LEVEL win",
        read: |w, v, s| {
            if let Some(level) = w.choice(v, "log_level", LOG_LEVELS) {
                s.log_level = Some(level);
            }
        },
    },
    Key {
        name: "output",
        kind: Kind::Choice(crate::output::Mode::NAMES),
        doc: "command output: stream (default), grouped or quiet; --output and -q win",
        read: read_output,
    },
    Key {
        name: "secrets_keyfile",
        kind: Kind::String,
        doc: "master key file of .nexus/secrets.enc (after NEXUS_MASTER_KEY, --keyfile and NEXUS_KEYFILE)",
        read: |w, v, s| s.secrets_keyfile = w.string(v, "secrets_keyfile"),
    },
    Key {
        name: "timeout",
        kind: Kind::Duration,
        doc: "limit of one command attempt when the command sets none (default: none); run --timeout wins",
        read: |w, v, s| s.timeout = w.duration(v, "timeout", false).or(s.timeout),
    },
    Key {
        name: "task_timeout",
        kind: Kind::Duration,
        doc: "limit of a task on one host when the task sets none (default: none)",
        read: |w, v, s| s.task_timeout = w.duration(v, "task_timeout", false).or(s.task_timeout),
    },
    Key {
        name: "shell",
        kind: Kind::List,
        doc: "program and arguments local commands run under, the command last (default [\"sh\", \"-c\"])",
        read: |w, v, s| s.shell = w.shell(v).or(s.shell.take()),
    },
];

/// `[config] output`.
fn read_output(w: &mut Walker<'_>, v: &Value<'_>, s: &mut Settings) {
    if let Some(m) = w.choice(v, "output", crate::output::Mode::NAMES) {
        s.output = crate::output::Mode::parse(&m);
    }
}

pub const TASK: &[Key<TaskDraft>] = &[
    Key {
        name: "desc",
        kind: Kind::String,
        doc: "one line shown by `nexus list`",
        read: |w, v, d| d.task.desc = w.printable_text(v, "desc"),
    },
    Key {
        name: "deps",
        kind: Kind::Strings,
        doc: "tasks that must succeed first",
        read: |w, v, d| w.deps(v, d),
    },
    Key {
        name: "on",
        kind: Kind::Strings,
        doc: "\"local\" (default), host groups or hosts",
        read: |w, v, d| w.on(v, d),
    },
    Key {
        name: "strategy",
        kind: Kind::Choice(&["parallel", "serial", "rolling"]),
        doc: "parallel (every host at once, default), serial (one host at a time) or rolling (in batches)",
        read: |w, v, d| {
            if let Some(s) = w.strategy(v) {
                d.task.strategy = s;
            }
        },
    },
    Key {
        name: "timeout",
        kind: Kind::Duration,
        doc: "limit of the whole task on one host (default: [config] task_timeout, else none)",
        read: |w, v, d| d.task.timeout = w.duration(v, "timeout", false).or(d.task.timeout),
    },
    Key {
        name: "dir",
        kind: Kind::String,
        doc: "working directory: relative to the project root locally, the remote cwd remotely",
        read: |w, v, d| {
            if let Some(s) = w.string(v, "dir") {
                d.task.dir = w.template(&s, v.span());
            }
        },
    },
    Key {
        name: "env",
        kind: Kind::Env,
        doc: "environment variables of the task's commands",
        read: |w, v, d| d.task.env = w.env(v),
    },
    Key {
        name: "args",
        kind: Kind::Strings,
        doc: "parameters: `name` (required), `name=default`, `*name` (any number), `+name` (at least one)",
        read: |w, v, d| d.task.params = w.params(v),
    },
    Key {
        name: "continue_on_error",
        kind: Kind::Bool,
        doc: "a failing command is reported and the task goes on",
        read: |w, v, d| {
            d.task.continue_on_error = w.boolean(v, "continue_on_error").unwrap_or(false);
        },
    },
    Key {
        name: "run",
        kind: Kind::Steps,
        doc: "a command, or a list of commands and command tables",
        read: |w, v, d| d.task.commands = w.commands(v, &d.task.name.clone()),
    },
    Key {
        name: "aliases",
        kind: Kind::Strings,
        doc: "other names that run the task (`nexus run ALIAS`)",
        read: |w, v, d| d.aliases = w.aliases(v),
    },
    Key {
        name: "private",
        kind: Kind::Bool,
        doc: "left out of `nexus list`, still runnable (also: a name starting with `_`)",
        read: |w, v, d| d.task.private |= w.boolean(v, "private").unwrap_or(false),
    },
    Key {
        name: "interactive",
        kind: Kind::Bool,
        doc: "runs alone, attached to the terminal (stdin too); its output is not captured",
        read: |w, v, d| {
            d.task.interactive = w.boolean(v, "interactive").unwrap_or(false);
            d.interactive_span = Some(v.span());
        },
    },
    Key {
        name: "sources",
        kind: Kind::Strings,
        doc: "files the task reads (globs from the project root, `**` too): skipped while they, its outputs and its definition are unchanged (local tasks)",
        read: |w, v, d| d.task.checks.sources = w.globs(v, "sources"),
    },
    Key {
        name: "outputs",
        kind: Kind::Strings,
        doc: "files the task writes (globs from the project root): each must exist, unchanged, for the task to be skipped",
        read: |w, v, d| d.task.checks.outputs = w.globs(v, "outputs"),
    },
    Key {
        name: "creates",
        kind: Kind::String,
        doc: "skip the task on a host where this path exists",
        read: |w, v, d| d.task.checks.guard.creates = w.guard_template(v, "creates"),
    },
    Key {
        name: "unless",
        kind: Kind::String,
        doc: "skip the task on a host where this command exits 0",
        read: |w, v, d| d.task.checks.guard.unless = w.guard_template(v, "unless"),
    },
    Key {
        name: "batch",
        kind: Kind::Amounts,
        doc: "rolling: hosts per batch, a number, a percentage or a list [1, \"25%\", \"100%\"] (default 1)",
        read: |w, v, d| w.batch(v, d),
    },
    Key {
        name: "max_fail",
        kind: Kind::Amount,
        doc: "failed hosts (unhealthy ones too) tolerated before the rollout stops: a number or a percentage (default 0)",
        read: |w, v, d| {
            if let Some(a) = w.amount(v, "max_fail", true) {
                super::rollout::rollout(d).max_fail = Some(a);
            }
        },
    },
    Key {
        name: "canary",
        kind: Kind::Amount,
        doc: "rolling: a first batch of this many hosts (or percentage), then canary_wait",
        read: |w, v, d| {
            d.rolling_keys.push(("canary", v.span()));
            if let Some(a) = w.amount(v, "canary", false) {
                super::rollout::rollout(d).canary = Some(a);
            }
        },
    },
    Key {
        name: "canary_wait",
        kind: Kind::Duration,
        doc: "rolling: pause after the canary batch (default none)",
        read: |w, v, d| {
            d.rolling_keys.push(("canary_wait", v.span()));
            if let Some(t) = w.duration(v, "canary_wait", true) {
                super::rollout::rollout(d).canary_wait = t;
            }
        },
    },
    Key {
        name: "wait_for",
        kind: Kind::Table,
        doc: "health check after each host's steps: { cmd, timeout = \"60s\", interval = \"2s\", successes = 1 }",
        read: |w, v, d| w.wait_for(v, d),
    },
    Key {
        name: "rollback",
        kind: Kind::Steps,
        doc: "steps run on the failed hosts when the rollout stops",
        read: |w, v, d| {
            let steps = w.commands(v, &d.task.name.clone());
            super::rollout::rollout(d).rollback = steps;
        },
    },
    Key {
        name: "run_once",
        kind: Kind::Bool,
        doc: "run on the first host of the task only",
        read: |w, v, d| d.task.run_once = w.boolean(v, "run_once").unwrap_or(false),
    },
    Key {
        name: "force_handlers",
        kind: Kind::Bool,
        doc: "run notified handlers on a host even when the task failed there",
        read: |w, v, d| d.task.force_handlers = w.boolean(v, "force_handlers").unwrap_or(false),
    },
    Key {
        name: "artifacts",
        kind: Kind::Strings,
        doc: "files the task makes (paths or globs from its working directory): collected after it succeeds and put in place for the tasks that depend on it",
        read: |w, v, d| d.task.artifacts = w.globs(v, "artifacts"),
    },
    Key {
        name: "artifacts_from",
        kind: Kind::List,
        doc: "the dependencies whose artifacts the task takes (default: all its direct `deps`; [] none)",
        read: |w, v, d| d.artifacts_from = Some(w.string_list(v, "artifacts_from").unwrap_or_default()),
    },
];

pub const COMMAND: &[Key<Command>] = &[
    Key {
        name: "cmd",
        kind: Kind::String,
        doc: "the command line",
        read: |_, _, _| {}, // read first, by `Walker::command_table`
    },
    Key {
        name: "sudo",
        kind: Kind::Bool,
        doc: "run through `sudo -n`",
        read: |w, v, c| c.sudo = w.boolean(v, "sudo").unwrap_or(false) || c.user.is_some(),
    },
    Key {
        name: "user",
        kind: Kind::String,
        doc: "run as this user (`sudo -n -u USER`)",
        read: |w, v, c| {
            c.user = w.user_name(v, "user");
            c.sudo = c.sudo || c.user.is_some();
        },
    },
    Key {
        name: "pty",
        kind: Kind::Bool,
        doc: "ask for a terminal (remote only)",
        read: |w, v, c| c.pty = w.boolean(v, "pty").unwrap_or(false),
    },
    Key {
        name: "timeout",
        kind: Kind::Duration,
        doc: "limit of one attempt (default: run --timeout, else [config] timeout, else none)",
        read: |w, v, c| c.timeout = w.duration(v, "timeout", false).or(c.timeout),
    },
    Key {
        name: "retries",
        kind: Kind::Integer { min: 0, max: 100 },
        doc: "attempts after the first when it fails (default 0)",
        read: |w, v, c| c.retries = w.integer(v, "retries", 0, 100).unwrap_or(0) as u32,
    },
    Key {
        name: "retry_delay",
        kind: Kind::Duration,
        doc: "first delay between attempts, doubling with jitter up to 30s (default 1s)",
        read: |w, v, c| {
            c.retry_delay = w.duration(v, "retry_delay", true).unwrap_or(c.retry_delay);
        },
    },
    Key {
        name: "continue_on_error",
        kind: Kind::Bool,
        doc: "a failure is reported and the task goes on",
        read: |w, v, c| {
            c.continue_on_error = w.boolean(v, "continue_on_error").unwrap_or(false);
        },
    },
    Key {
        name: "creates",
        kind: Kind::String,
        doc: "skip the command where this path exists",
        read: |w, v, c| c.guard.creates = w.guard_template(v, "creates"),
    },
    Key {
        name: "unless",
        kind: Kind::String,
        doc: "skip the command where this command exits 0",
        read: |w, v, c| c.guard.unless = w.guard_template(v, "unless"),
    },
    Key {
        name: "notify",
        kind: Kind::Strings,
        doc: "handlers notified when the command ran and succeeded",
        read: |w, v, c| c.notify = w.notify(v),
    },
];

impl Walker<'_> {
    /// A string that must be one of `choices`.
    pub(super) fn choice(&mut self, v: &Value, key: &str, choices: &[&str]) -> Option<String> {
        let text = self.string(v, key)?;
        if choices.contains(&text.as_str()) {
            return Some(text);
        }
        let help = did_you_mean(&text, choices.iter().copied())
            .unwrap_or_else(|| format!("choose one of: {}", choices.join(", ")));
        self.error(v.span(), format!("unknown {key} `{text}`"), Some(help));
        None
    }

    /// `shell`: a program and its arguments, the command line goes last.
    fn shell(&mut self, v: &Value) -> Option<Vec<String>> {
        let example = "shell = [\"bash\", \"-euo\", \"pipefail\", \"-c\"]";
        let DeValue::Array(items) = v.get_ref() else {
            self.error(
                v.span(),
                format!(
                    "`shell` must be a list of strings, found {}",
                    v.get_ref().type_str()
                ),
                Some(format!(
                    "give the program and its arguments apart; the command line goes last: {example}"
                )),
            );
            return None;
        };
        let mut words = Vec::new();
        for item in items.iter() {
            let word = self.string(item, "shell")?;
            if !self.no_nul(&word, item.span()) {
                return None;
            }
            words.push(word);
        }
        if words.first().is_none_or(|w| w.is_empty()) {
            self.error(
                v.span(),
                "`shell` names no program",
                Some(format!("the first word is the program: {example}")),
            );
            return None;
        }
        Some(words)
    }

    fn strategy(&mut self, v: &Value) -> Option<Strategy> {
        let s = self.string(v, "strategy")?;
        match s.as_str() {
            "parallel" => Some(Strategy::Parallel),
            "serial" => Some(Strategy::Serial),
            "rolling" => Some(Strategy::Rolling),
            other => {
                let help = if other == "canary" {
                    "a canary is the first batch of a rolling task: strategy = \"rolling\" with canary = 1".to_string()
                } else {
                    did_you_mean(other, ["parallel", "serial", "rolling"])
                        .unwrap_or_else(|| "choose parallel, serial or rolling".into())
                };
                self.error(v.span(), format!("unknown strategy `{other}`"), Some(help));
                None
            }
        }
    }

    /// `env = { NAME = "value" }`: strings (numbers and booleans as written).
    pub(super) fn env(
        &mut self,
        v: &Value,
    ) -> Vec<(String, super::model::Spanned<super::template::Template>)> {
        let mut out = Vec::new();
        let Some(et) = self.table(v, "env") else {
            return out;
        };
        for (ek, ev) in et.iter() {
            let name = ek.get_ref().to_string();
            if !self.env_name(&name, ek.span()) {
                continue;
            }
            let text = match ev.get_ref() {
                DeValue::String(s) => Some(s.to_string()),
                DeValue::Integer(i) => Some(i.as_str().to_string()),
                DeValue::Boolean(b) => Some(b.to_string()),
                _ => {
                    self.type_error(ev, &name, "a string");
                    None
                }
            };
            if let Some(tpl) = text.and_then(|t| self.template(&t, ev.span())) {
                out.push((name, tpl));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_table_declares_a_key_twice() {
        for names in [names(CONFIG), names(TASK), names(COMMAND)] {
            let mut seen = std::collections::HashSet::new();
            for n in names {
                assert!(seen.insert(n), "`{n}` declared twice");
            }
        }
    }

    #[test]
    fn every_declared_key_is_read() {
        let src = "[config]\nssh_user = \"u\"\nssh_port = 2222\nssh_identity = \"k\"\nssh_config = \"none\"\n\
                   known_hosts = \"kh\"\nhost_key_checking = \"off\"\nconnect_timeout = \"3s\"\n\
                   parallel_limit = 3\npool_size = 2\nmax_connections = 9\nlog_level = \"debug\"\n\
                   timeout = \"4s\"\ntask_timeout = \"6s\"\nshell = [\"bash\", \"-c\"]\n\
                   [tasks.a]\nrun = \"true\"\n[tasks.b]\ndesc = \"d\"\ndeps = [\"a\"]\non = \"local\"\n\
                   strategy = \"serial\"\ntimeout = \"9s\"\ndir = \"x\"\nenv = { A = \"1\" }\n\
                   continue_on_error = true\naliases = [\"bb\"]\nprivate = true\ninteractive = true\n\
                   run = [{ cmd = \"c\", user = \"u\", pty = true, \
                   timeout = \"2s\", retries = 3, retry_delay = \"5s\", continue_on_error = true }]\n\
                   [tasks.c]\nstrategy = \"rolling\"\nbatch = [1, \"50%\"]\nmax_fail = \"10%\"\ncanary = 2\n\
                   canary_wait = \"3s\"\nwait_for = { cmd = \"w\", timeout = \"7s\", interval = \"1s\", successes = 2 }\n\
                   rollback = \"r\"\nrun_once = true\nforce_handlers = true\nrun = [{ cmd = \"c\", notify = \"h\" }]\n\
                   [handlers.h]\nrun = \"x\"\n";
        let c = super::super::load::parse(
            std::path::Path::new("nexus.toml"),
            std::path::Path::new("."),
            src,
        );
        // An interactive task's command may not use sudo: the one error of the file.
        let e = c.unwrap_err();
        assert_eq!(e.diagnostics.len(), 1, "{e}");
        let c = super::super::load::parse(
            std::path::Path::new("nexus.toml"),
            std::path::Path::new("."),
            &src.replace("interactive = true", "interactive = false"),
        )
        .unwrap();
        let s = &c.settings;
        assert_eq!(s.ssh_user.as_deref(), Some("u"));
        assert_eq!(
            (s.ssh_port, s.parallel_limit, s.pool_size, s.max_connections),
            (2222, 3, 2, 9)
        );
        assert_eq!(s.ssh_config, None);
        assert_eq!(s.host_key_checking, HostKeyChecking::Off);
        assert_eq!(s.log_level.as_deref(), Some("debug"));
        let secs = std::time::Duration::from_secs;
        assert_eq!((s.timeout, s.task_timeout), (Some(secs(4)), Some(secs(6))));
        assert_eq!(
            s.shell.as_deref(),
            Some(&["bash".to_string(), "-c".to_string()][..])
        );
        let b = &c.tasks[1];
        assert_eq!(b.desc.as_deref(), Some("d"));
        assert_eq!((b.deps.clone(), b.strategy), (vec![0], Strategy::Serial));
        assert!(b.continue_on_error && b.dir.is_some() && b.env.len() == 1);
        assert_eq!(
            (b.aliases.clone(), b.private, b.timeout),
            (vec!["bb".to_string()], true, Some(secs(9)))
        );
        let cmd = &b.commands[0];
        assert!(cmd.sudo && cmd.pty && cmd.continue_on_error);
        assert_eq!((cmd.user.as_deref(), cmd.retries), (Some("u"), 3));
        assert_eq!((cmd.retry_delay, cmd.timeout), (secs(5), Some(secs(2))));
        let c = &c.tasks[2];
        assert!(c.run_once && c.force_handlers && c.strategy == Strategy::Rolling);
        assert_eq!(c.commands[0].notify[0].value, "h");
        let r = c.rollout.as_ref().unwrap();
        use super::super::model::Amount::{Count, Percent};
        assert_eq!(r.batch, vec![Count(1), Percent(50)]);
        assert_eq!((r.max_fail, r.canary), (Some(Percent(10)), Some(Count(2))));
        assert_eq!((r.canary_wait, r.rollback.len()), (secs(3), 1));
        let w = r.wait_for.as_ref().unwrap();
        assert_eq!((w.timeout, w.interval, w.successes), (secs(7), secs(1), 2));
    }
}
