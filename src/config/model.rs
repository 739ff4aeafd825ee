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
            .flat_map(|c| {
                let own = match &c.file {
                    Some(_) => None,
                    None => Some(&c.template),
                };
                own.into_iter()
                    .chain(c.guard.templates())
                    .chain(c.file.iter().flat_map(|f| f.templates()))
            })
            .chain(self.dir.iter())
            .chain(self.env.iter().map(|(_, v)| v))
            .chain(self.checks.guard.templates())
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
    /// Handlers to notify when the step changed something (recorded; see the handlers
    /// of `[handlers]`).
    pub notify: Vec<String>,
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
