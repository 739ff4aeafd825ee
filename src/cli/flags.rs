//! Every command and flag, declared once. Parsing, `--help`, the bash/zsh/fish
//! completion scripts and the manual page are all generated from these two tables.

/// A subcommand.
pub struct CommandDef {
    pub name: &'static str,
    /// Positional arguments as shown in usage, e.g. "TASK...".
    pub args: &'static str,
    pub about: &'static str,
    /// Positionals: (min, max); max None = unbounded.
    pub arity: (usize, Option<usize>),
    /// What positionals complete to: "tasks", "commands", "shells" or "".
    pub complete: &'static str,
}

pub const COMMANDS: &[CommandDef] = &[
    CommandDef {
        name: "run",
        args: "TASK...",
        about: "Run tasks and everything they depend on",
        arity: (1, None),
        complete: "tasks",
    },
    CommandDef {
        name: "preflight",
        args: "TASK...",
        about: "Check config, reachability, SSH auth and sudo for tasks, without running them",
        arity: (1, None),
        complete: "tasks",
    },
    CommandDef {
        name: "list",
        args: "",
        about: "List tasks with their parameters, description, aliases, dependencies and targets",
        arity: (0, Some(0)),
        complete: "",
    },
    CommandDef {
        name: "validate",
        args: "",
        about: "Load and check nexus.toml without running or connecting",
        arity: (0, Some(0)),
        complete: "",
    },
    CommandDef {
        name: "init",
        args: "",
        about: "Write a commented starter nexus.toml",
        arity: (0, Some(0)),
        complete: "",
    },
    CommandDef {
        name: "hosts",
        args: "resolve HOST",
        about: "Print the SSH settings nexus would use for HOST, in `ssh -G` form",
        arity: (2, Some(2)),
        complete: "",
    },
    CommandDef {
        name: "runs",
        args: "[show ID | gc]",
        about: "List recent runs, show one, or remove old journals",
        arity: (0, Some(2)),
        complete: "",
    },
    CommandDef {
        name: "resume",
        args: "[RUN_ID]",
        about: "Continue an interrupted run (the latest one by default)",
        arity: (0, Some(1)),
        complete: "",
    },
    CommandDef {
        name: "secret",
        args: "init | set NAME | get NAME | list | delete NAME | rotate-key",
        about: "Keep secrets in the project's encrypted store, .nexus/secrets.enc",
        arity: (1, Some(2)),
        complete: "",
    },
    CommandDef {
        name: "version",
        args: "",
        about: "Print version, commit and target",
        arity: (0, Some(0)),
        complete: "",
    },
    CommandDef {
        name: "help",
        args: "[COMMAND]",
        about: "Show help for nexus or one command",
        arity: (0, Some(1)),
        complete: "commands",
    },
    CommandDef {
        name: "completions",
        args: "SHELL",
        about: "Print a completion script for bash, zsh or fish",
        arity: (1, Some(1)),
        complete: "shells",
    },
    CommandDef {
        name: "schema",
        args: "",
        about: "Print the JSON Schema of nexus.toml, for editors (taplo, Even Better TOML)",
        arity: (0, Some(0)),
        complete: "",
    },
    CommandDef {
        name: "man",
        args: "",
        about: "Print the nexus(1) manual page (roff; `nexus man | man -l -` shows it)",
        arity: (0, Some(0)),
        complete: "",
    },
];

/// A flag; `commands` empty means it applies to every command (global).
pub struct Flag {
    pub long: &'static str,
    pub short: Option<char>,
    /// Value name if the flag takes a value.
    pub value: Option<&'static str>,
    /// Allowed values, when fixed.
    pub choices: &'static [&'static str],
    pub help: &'static str,
    pub commands: &'static [&'static str],
}

impl Flag {
    pub fn applies_to(&self, command: &str) -> bool {
        self.commands.is_empty() || self.commands.contains(&command)
    }
}

pub const FLAGS: &[Flag] = &[
    Flag {
        long: "config",
        short: Some('c'),
        value: Some("PATH"),
        choices: &[],
        help:
            "Use this nexus.toml (default: ./nexus.toml or the nearest parent's; env NEXUS_CONFIG)",
        commands: &[],
    },
    Flag {
        long: "help",
        short: Some('h'),
        value: None,
        choices: &[],
        help: "Show help",
        commands: &[],
    },
    Flag {
        long: "version",
        short: Some('V'),
        value: None,
        choices: &[],
        help: "Print the version",
        commands: &[],
    },
    Flag {
        long: "plain",
        short: None,
        value: None,
        choices: &[],
        help: "No color, no Unicode symbols",
        commands: &[],
    },
    Flag {
        long: "log-level",
        short: None,
        value: Some("LEVEL"),
        choices: &["error", "warn", "info", "debug", "trace", "off"],
        help: "Diagnostics on stderr at this level and above (env NEXUS_LOG_LEVEL; default warn)",
        commands: &[],
    },
    Flag {
        long: "log-format",
        short: None,
        value: Some("FORMAT"),
        choices: &["text", "json"],
        help: "Diagnostics as text or JSON lines",
        commands: &[],
    },
    Flag {
        long: "verbose",
        short: Some('v'),
        value: None,
        choices: &[],
        help: "Also echo each command before it runs",
        commands: &["run", "resume"],
    },
    Flag {
        long: "quiet",
        short: Some('q'),
        value: None,
        choices: &[],
        help: "No command output except for failures (--output quiet)",
        commands: &["run", "resume"],
    },
    Flag {
        long: "output",
        short: None,
        value: Some("MODE"),
        choices: &["stream", "grouped", "quiet"],
        help: "Command output: stream (as it comes, prefixed when tasks overlap), grouped (one block per task and host), quiet (only for failures); default: [config] output, else stream",
        commands: &["run", "resume"],
    },
    Flag {
        long: "format",
        short: None,
        value: Some("FORMAT"),
        choices: &["text", "json", "quiet"],
        help: "text, or json (events for run/resume, one document otherwise); preflight also takes quiet (failures only)",
        commands: &["run", "resume", "list", "runs", "preflight"],
    },
    Flag {
        long: "continue-on-error",
        short: None,
        value: None,
        choices: &[],
        help: "Keep going after a failure: run every task whose dependencies succeeded",
        commands: &["run", "resume"],
    },
    Flag {
        long: "parallel-limit",
        short: Some('p'),
        value: Some("N"),
        choices: &[],
        help: "Run at most N tasks at once (default: parallel_limit, 10)",
        commands: &["run", "resume"],
    },
    Flag {
        long: "hosts",
        short: Some('H'),
        value: Some("LIST"),
        choices: &[],
        help: "Run remote tasks on these hosts or groups instead (comma-separated)",
        commands: &["run", "preflight"],
    },
    Flag {
        long: "user",
        short: Some('u'),
        value: Some("NAME"),
        choices: &[],
        help: "SSH user for every host of this run",
        commands: &["run"],
    },
    Flag {
        long: "identity",
        short: Some('i'),
        value: Some("PATH"),
        choices: &[],
        help: "SSH private key, tried before the agent and the default keys",
        commands: &["run"],
    },
    Flag {
        long: "ssh-config",
        short: None,
        value: Some("PATH"),
        choices: &[],
        help: "Read this ssh_config instead of the one nexus.toml or ~/.ssh/config names",
        commands: &["hosts"],
    },
    Flag {
        long: "dry-run",
        short: Some('n'),
        value: None,
        choices: &[],
        help: "Show the pre-flight checks and the plan; run nothing",
        commands: &["run"],
    },
    Flag {
        long: "diff",
        short: None,
        value: None,
        choices: &[],
        help: "With --dry-run: show a unified diff of each text file a file step would change",
        commands: &["run"],
    },
    Flag {
        long: "skip-connectivity",
        short: None,
        value: None,
        choices: &[],
        help: "Do not check that hosts accept TCP connections",
        commands: &["preflight"],
    },
    Flag {
        long: "skip-auth",
        short: None,
        value: None,
        choices: &[],
        help: "Do not log in to check SSH authentication",
        commands: &["preflight"],
    },
    Flag {
        long: "skip-sudo-check",
        short: None,
        value: None,
        choices: &[],
        help: "Do not check `sudo -n` on hosts whose tasks use sudo",
        commands: &["preflight"],
    },
    Flag {
        long: "skip-disk-check",
        short: None,
        value: None,
        choices: &[],
        help: "Do not check free disk space (checked only when a plan uploads files)",
        commands: &["preflight"],
    },
    Flag {
        long: "timeout",
        short: None,
        value: Some("DURATION"),
        choices: &[],
        help: "run, resume: limit of each command attempt that sets no timeout of its own (instead of [config] timeout); preflight: limit of each check (default 5s)",
        commands: &["run", "resume", "preflight"],
    },
    Flag {
        long: "parallel",
        short: None,
        value: Some("N"),
        choices: &[],
        help: "Hosts checked at once (default 10)",
        commands: &["preflight"],
    },
    Flag {
        long: "always",
        short: Some('B'),
        value: None,
        choices: &[],
        help: "Run tasks even when their up-to-date checks say there is nothing to do",
        commands: &["run"],
    },
    Flag {
        long: "no-resume",
        short: None,
        value: None,
        choices: &[],
        help: "Do not offer to resume an interrupted run of the same targets",
        commands: &["run"],
    },
    Flag {
        long: "interrupted",
        short: None,
        value: None,
        choices: &[],
        help: "Only runs that were interrupted",
        commands: &["runs"],
    },
    Flag {
        long: "all",
        short: None,
        value: None,
        choices: &[],
        help: "Runs of every project, not only this one's",
        commands: &["runs"],
    },
    Flag {
        long: "keep",
        short: None,
        value: Some("N"),
        choices: &[],
        help: "runs gc: keep the newest N journals of each project (default 200)",
        commands: &["runs"],
    },
    Flag {
        long: "names",
        short: None,
        value: None,
        choices: &[],
        help: "Print task names only, one per line",
        commands: &["list"],
    },
    Flag {
        long: "force",
        short: None,
        value: None,
        choices: &[],
        help: "init: overwrite; resume: even if nexus.toml changed; run: skip hosts that fail pre-flight; preflight: exit 0 anyway",
        commands: &["init", "resume", "run", "preflight"],
    },
    Flag {
        long: "keyfile",
        short: None,
        value: Some("PATH"),
        choices: &[],
        help: "Master key file of the secret store (after NEXUS_MASTER_KEY; before NEXUS_KEYFILE and [config] secrets_keyfile); init creates it when missing",
        commands: &["secret", "run", "resume"],
    },
    Flag {
        long: "from-file",
        short: None,
        value: Some("PATH"),
        choices: &[],
        help: "secret set: the value is this file's content, as it is",
        commands: &["secret"],
    },
    Flag {
        long: "new-keyfile",
        short: None,
        value: Some("PATH"),
        choices: &[],
        help: "secret rotate-key: the new master key's file (a new random key is written there when missing); without it, a new passphrase is asked",
        commands: &["secret"],
    },
];

pub fn flag_by_long(name: &str) -> Option<&'static Flag> {
    FLAGS.iter().find(|f| f.long == name)
}

pub fn flag_by_short(c: char) -> Option<&'static Flag> {
    FLAGS.iter().find(|f| f.short == Some(c))
}

pub fn command(name: &str) -> Option<&'static CommandDef> {
    COMMANDS.iter().find(|c| c.name == name)
}
