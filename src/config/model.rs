//! The validated model of a nexus.toml. Everything here has been checked by `load`:
//! deps exist and form a DAG, hosts parse, placeholders are known. Nothing downstream
//! re-validates. Must not: hold raw TOML or do I/O.

use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use super::host::HostSpec;
use super::template::Template;

/// There is no default timeout of a command or a task (docs/nexus-toml.md): a command
/// may run as long as it runs, as in make, unless `timeout` or `task_timeout` says
/// otherwise. A dead SSH connection is found by keepalives, not by a timeout.
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct Config {
    /// The nexus.toml that was read, as given or found.
    pub path: PathBuf,
    /// The directory holding it: local commands run here unless a task sets `dir`.
    pub root: PathBuf,
    /// The file's text, kept to point at lines in errors found after loading.
    pub source: String,
    pub settings: Settings,
    /// Host groups in file order, flattened to hosts (groups of groups resolved).
    pub groups: Vec<(String, Vec<HostSpec>)>,
    /// Tasks in file order; `deps` index into this list.
    pub tasks: Vec<Task>,
    /// `[vars]`: template variables of every task, in file order.
    pub vars: Vec<(String, toml::Value)>,
    /// `default`: the task a bare `nexus` runs (an index into `tasks`).
    pub default: Option<usize>,
    /// `[env]`: environment of every task's commands (a task's `env` wins).
    pub env: Vec<(String, Spanned<Template>)>,
    /// `dotenv`: the files as written (relative to the project root), with their spans.
    pub dotenv_files: Vec<(String, Range<usize>)>,
    /// What the dotenv files define, later files winning; filled by `config::load`
    /// (`parse` reads no files). The process environment wins over these.
    pub dotenv: Vec<(String, String)>,
    /// Variables of each host (by its label): the `vars` of every group that holds it,
    /// in file order, then the host's own (later ones win). Hosts without any are absent.
    pub host_vars: std::collections::HashMap<String, Vec<(String, toml::Value)>>,
    /// `[handlers]` in file order (docs/nexus-toml.md, "Handlers").
    pub handlers: Vec<Handler>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKeyChecking {
    Strict,
    AcceptNew,
    Tofu,
    Off,
}

impl HostKeyChecking {
    pub const NAMES: &'static [&'static str] = &["strict", "accept-new", "tofu", "off"];

    pub fn parse(s: &str) -> Option<HostKeyChecking> {
        match s {
            "strict" => Some(HostKeyChecking::Strict),
            "accept-new" => Some(HostKeyChecking::AcceptNew),
            "tofu" => Some(HostKeyChecking::Tofu),
            "off" => Some(HostKeyChecking::Off),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub ssh_user: Option<String>,
    pub ssh_port: u16,
    pub ssh_identity: Option<String>,
    /// None: `ssh_config = "none"`; Some(path) otherwise (default `~/.ssh/config`).
    pub ssh_config: Option<String>,
    pub known_hosts: Option<String>,
    pub host_key_checking: HostKeyChecking,
    pub connect_timeout: Duration,
    pub parallel_limit: usize,
    pub pool_size: usize,
    pub max_connections: usize,
    /// Handshakes at once per endpoint (exec/ssh/pace.rs).
    pub handshakes_per_endpoint: usize,
    pub log_level: Option<String>,
    /// `output`: how command output is shown (`--output` and `-q` win).
    pub output: Option<crate::output::Mode>,
    /// `secrets_keyfile`: master key file of `.nexus/secrets.enc`, as written.
    pub secrets_keyfile: Option<String>,
    /// `timeout`: limit of one command attempt when the command sets none (`run
    /// --timeout` wins); None: no limit.
    pub timeout: Option<Duration>,
    /// `task_timeout`: limit of a task on one host when the task sets none.
    pub task_timeout: Option<Duration>,
    /// `shell`: the program and arguments local commands run under, the command line
    /// last; None: `sh -c`.
    pub shell: Option<Vec<String>>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            ssh_user: None,
            ssh_port: 22,
            ssh_identity: None,
            ssh_config: Some("~/.ssh/config".to_string()),
            known_hosts: None,
            host_key_checking: HostKeyChecking::Strict,
            connect_timeout: Duration::from_secs(10),
            parallel_limit: 10,
            pool_size: 4,
            max_connections: 256,
            handshakes_per_endpoint: crate::exec::ssh::pace::DEFAULT_LIMIT,
            log_level: None,
            output: None,
            secrets_keyfile: None,
            timeout: None,
            task_timeout: None,
            shell: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    Local,
    Remote(HostSpec),
}

impl Target {
    pub fn label(&self) -> String {
        match self {
            Target::Local => "local".to_string(),
            Target::Remote(h) => h.label(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Parallel,
    Serial,
    /// In batches (`batch`, `canary`), each gated by `wait_for` and `max_fail`.
    Rolling,
}

#[derive(Debug, Clone)]
pub struct Task {
    pub name: String,
    pub desc: Option<String>,
    /// Indices into `Config::tasks`.
    pub deps: Vec<usize>,
    pub targets: Vec<Target>,
    /// How `on` was written (group and host names), for `nexus list`.
    pub on: Vec<String>,
    pub strategy: Strategy,
    /// The task's own `timeout` (on one host); None: `[config] task_timeout`, else none.
    pub timeout: Option<Duration>,
    pub dir: Option<Spanned<Template>>,
    pub env: Vec<(String, Spanned<Template>)>,
    pub continue_on_error: bool,
    pub commands: Vec<Command>,
    /// `args`: the task's parameters, in order.
    pub params: Vec<Param>,
    /// Other names that run this task (`aliases`).
    pub aliases: Vec<String>,
    /// Left out of `nexus list` (`private = true`, or a name starting with `_`).
    pub private: bool,
    /// Runs alone, attached to the terminal (`interactive = true`).
    pub interactive: bool,
    /// `sources`, `outputs`, `creates`, `unless` (docs/nexus-toml.md, "Up-to-date checks").
    pub checks: super::checks::Checks,
    /// Span of the task's name in `[tasks.NAME]`.
    pub span: Range<usize>,
    /// `batch`, `max_fail`, `canary`, `wait_for`, `rollback` (src/run/rollout.rs); None
    /// when the task sets none of them.
    pub rollout: Option<Rollout>,
    /// `run_once = true`: the task runs on the first of its hosts only.
    pub run_once: bool,
    /// `force_handlers = true`: notified handlers run even when the task failed there.
    pub force_handlers: bool,
    /// `artifacts`: paths and globs (relative to the working directory) of files the task
    /// hands to the tasks that depend on it (src/run/artifacts.rs).
    pub artifacts: Vec<String>,
    /// `artifacts_from`: the direct dependencies (indices into `Config::tasks`) whose
    /// artifacts the task takes; None: all of them.
    pub artifacts_from: Option<Vec<usize>>,
}

/// A number of hosts: `2`, or a percentage of the task's hosts, `"25%"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amount {
    Count(usize),
    Percent(u32),
}

impl Amount {
    /// Hosts of a batch out of `total`: a percentage rounded up, at least one.
    pub fn batch_of(self, total: usize) -> usize {
        match self {
            Amount::Count(n) => n.max(1),
            Amount::Percent(p) => (total * p as usize).div_ceil(100).max(1),
        }
    }

    /// Failures tolerated out of `total`: a percentage rounded down.
    pub fn tolerated_of(self, total: usize) -> usize {
        match self {
            Amount::Count(n) => n,
            Amount::Percent(p) => total * p as usize / 100,
        }
    }

    /// As written: `2` or `"25%"`.
    pub fn display(self) -> String {
        match self {
            Amount::Count(n) => n.to_string(),
            Amount::Percent(p) => format!("{p}%"),
        }
    }
}

/// How a task goes through its hosts beyond "all at once" (docs/nexus-toml.md,
/// "Rollouts").
#[derive(Debug, Clone, Default)]
pub struct Rollout {
    /// Hosts per batch, in turn; the last repeats. Empty: one host at a time for
    /// `rolling` and `serial`, every host at once for `parallel`.
    pub batch: Vec<Amount>,
    /// Failed hosts tolerated before the rollout stops (default 0).
    pub max_fail: Option<Amount>,
    /// A first batch of this size, then `canary_wait`.
    pub canary: Option<Amount>,
    pub canary_wait: Duration,
    pub wait_for: Option<WaitFor>,
    /// Steps run on the failed hosts when the rollout stops.
    pub rollback: Vec<Command>,
}

/// `wait_for`: a health check run on each host after its steps.
#[derive(Debug, Clone)]
pub struct WaitFor {
    pub text: String,
    pub template: Spanned<Template>,
    pub timeout: Duration,
    pub interval: Duration,
    /// Passes in a row that make the host healthy.
    pub successes: u32,
}

pub const WAIT_FOR_TIMEOUT: Duration = Duration::from_secs(60);
pub const WAIT_FOR_INTERVAL: Duration = Duration::from_secs(2);

/// `[handlers.NAME]`: steps run once at the end of a task on a host that notified it.
#[derive(Debug, Clone)]
pub struct Handler {
    pub name: String,
    pub commands: Vec<Command>,
    /// Handlers notified when this one succeeds.
    pub notify: Vec<Spanned<String>>,
    /// Span of the name in `[handlers.NAME]`.
    pub span: Range<usize>,
}

/// One task parameter: `name` (required), `name=default`, `*name` (any number of words)
/// or `+name` (at least one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    pub default: Option<String>,
    pub variadic: Option<Variadic>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variadic {
    /// `*name`: zero or more words.
    Any,
    /// `+name`: one or more words.
    AtLeastOne,
}

impl Task {
    /// Every template of the task: its commands (and their `creates` and `unless`),
    /// `dir`, `env` values, the task's `creates` and `unless`.
    pub fn templates(&self) -> impl Iterator<Item = &Spanned<Template>> {
        self.commands
            .iter()
            .flat_map(Command::templates)
            .chain(self.dir.iter())
            .chain(self.env.iter().map(|(_, v)| v))
            .chain(self.checks.guard.templates())
            .chain(self.rollout.iter().flat_map(Rollout::templates))
    }

    /// The rollout the task goes through, if it is not "every host at once": `serial`
    /// is rolling with batch 1.
    pub fn rollout_plan(&self) -> Option<Rollout> {
        let mut r = match (&self.rollout, self.strategy) {
            (None, Strategy::Parallel) => return None,
            (Some(r), _) => r.clone(),
            (None, _) => Rollout::default(),
        };
        if r.batch.is_empty() {
            r.batch = match self.strategy {
                Strategy::Parallel => vec![Amount::Percent(100)],
                Strategy::Serial | Strategy::Rolling => vec![Amount::Count(1)],
            };
        }
        Some(r)
    }
}

impl Rollout {
    /// The templates of `wait_for` and `rollback`.
    pub fn templates(&self) -> impl Iterator<Item = &Spanned<Template>> {
        self.wait_for
            .iter()
            .map(|w| &w.template)
            .chain(self.rollback.iter().flat_map(Command::templates))
    }
}

impl Config {
    /// The handler called `name`.
    pub fn handler(&self, name: &str) -> Option<usize> {
        self.handlers.iter().position(|h| h.name == name)
    }
}

#[derive(Debug, Clone)]
pub struct Command {
    /// The command as written, for display.
    pub text: String,
    pub template: Spanned<Template>,
    pub sudo: bool,
    pub user: Option<String>,
    pub pty: bool,
    /// The command's own `timeout` (one attempt); None: `run --timeout`, else
    /// `[config] timeout`, else none.
    pub timeout: Option<Duration>,
    pub retries: u32,
    pub retry_delay: Duration,
    pub continue_on_error: bool,
    /// `creates` / `unless`: skipped where the path exists or the command exits 0.
    pub guard: super::checks::Guard,
    /// An `upload`, `template` or `download` step (src/transfer): `template` then holds
    /// its description, rendered for display.
    pub file: Option<Box<FileStep>>,
    /// `notify`: handlers notified when the command ran and succeeded (a file step: when
    /// it changed something).
    pub notify: Vec<Spanned<String>>,
}

/// A file step (docs/nexus-toml.md, "Files").
#[derive(Debug, Clone)]
pub struct FileStep {
    pub kind: FileKind,
    /// upload and template: a local path (relative to the project root); download: a
    /// path on the target.
    pub from: Spanned<Template>,
    /// upload and template: a path on the target; download: a local path.
    pub to: Spanned<Template>,
    /// Globs (relative to the uploaded directory) of files not to upload.
    pub exclude: Vec<String>,
    /// Permission bits of the files written (default: the source's).
    pub mode: Option<u32>,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub sudo: bool,
    /// Run on the new file (`%s` is its path) before it replaces the old one.
    pub validate: Option<Spanned<Template>>,
    /// The step's own template variables (template steps).
    pub vars: Vec<(String, toml::Value)>,
    /// A template step's file, read and checked by `config::load`.
    pub body: Option<TemplateFile>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Upload,
    Template,
    Download,
}

impl FileKind {
    pub fn name(self) -> &'static str {
        match self {
            FileKind::Upload => "upload",
            FileKind::Template => "template",
            FileKind::Download => "download",
        }
    }
}

/// A template file: where it is, and its text parsed.
#[derive(Debug, Clone)]
pub struct TemplateFile {
    /// As it is shown in messages (relative to the current directory where possible).
    pub shown: PathBuf,
    /// The file's text; its span is the step's path in nexus.toml (where problems found
    /// after loading, like an unknown secret, are shown).
    pub template: Spanned<Template>,
}

impl Command {
    /// A step with `text` as written and its template, every option at its default.
    pub fn new(text: String, template: Spanned<Template>) -> Command {
        Command {
            text,
            template,
            sudo: false,
            user: None,
            pty: false,
            timeout: None,
            retries: 0,
            retry_delay: DEFAULT_RETRY_DELAY,
            continue_on_error: false,
            guard: Default::default(),
            file: None,
            notify: Vec::new(),
        }
    }

    /// Every template of the step: its command line (for a file step: its paths, its
    /// validator and its template file instead), its `creates` and `unless`.
    pub fn templates(&self) -> impl Iterator<Item = &Spanned<Template>> {
        let own = match &self.file {
            Some(_) => None,
            None => Some(&self.template),
        };
        own.into_iter()
            .chain(self.guard.templates())
            .chain(self.file.iter().flat_map(|f| f.templates()))
    }
}

impl FileStep {
    /// The step's templates: paths, validator, and the template file once loaded.
    pub fn templates(&self) -> impl Iterator<Item = &Spanned<Template>> {
        std::iter::once(&self.from)
            .chain(std::iter::once(&self.to))
            .chain(self.validate.iter())
            .chain(self.body.iter().map(|b| &b.template))
    }
}

/// A value and where its text starts in the file (byte offset of the template's first
/// character, so a template span can be mapped back), or None when that is unknown.
#[derive(Debug, Clone)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Range<usize>,
    /// Byte offset in the file of the template text's first character when the TOML
    /// string had no escapes (so offsets map 1:1), else None.
    pub text_start: Option<usize>,
}

impl<T> Spanned<T> {
    /// Map a range inside the value's text to a range in the file.
    pub fn file_span(&self, inner: Range<usize>) -> Range<usize> {
        match self.text_start {
            Some(s) => s + inner.start..s + inner.end,
            None => self.span.clone(),
        }
    }
}

impl Config {
    /// The task called `name`, or that has `name` among its aliases.
    pub fn task_index(&self, name: &str) -> Option<usize> {
        self.tasks.iter().position(|t| t.name == name).or_else(|| {
            self.tasks
                .iter()
                .position(|t| t.aliases.iter().any(|a| a == name))
        })
    }

    pub fn task_names(&self) -> impl Iterator<Item = &str> {
        self.tasks.iter().map(|t| t.name.as_str())
    }

    /// Names that run a task: task names and aliases (for suggestions).
    pub fn runnable_names(&self) -> impl Iterator<Item = &str> {
        self.tasks.iter().flat_map(|t| {
            std::iter::once(t.name.as_str()).chain(t.aliases.iter().map(String::as_str))
        })
    }

    /// The templates a run of `tasks` renders, each with who uses it ("task `x`", or
    /// "[env]", which every task with commands renders).
    pub fn run_templates(&self, tasks: &[usize]) -> Vec<(String, &Spanned<Template>)> {
        let mut out: Vec<(String, &Spanned<Template>)> = Vec::new();
        for &i in tasks {
            let t = &self.tasks[i];
            out.extend(t.templates().map(|tpl| (format!("task `{}`", t.name), tpl)));
        }
        if tasks.iter().any(|&i| !self.tasks[i].commands.is_empty()) {
            out.extend(self.env.iter().map(|(_, v)| ("[env]".to_string(), v)));
            // A task may run a handler pending from an earlier run: every handler counts.
            for h in &self.handlers {
                let steps = h.commands.iter().flat_map(Command::templates);
                out.extend(steps.map(|tpl| (format!("handler `{}`", h.name), tpl)));
            }
        }
        out
    }

    /// The value of `name` in a dotenv file, when the process environment lacks it.
    pub fn dotenv_var(&self, name: &str) -> Option<&str> {
        self.dotenv
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}
