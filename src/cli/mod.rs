//! Command line: lexopt turns argv into `Raw` (command, positionals, flag values) using
//! the tables in `flags`; `args` turns that into one typed, checked value per command.
//! Unknown commands and flags get suggestions. Must not: load config or run anything.

pub mod args;
pub mod flags;
pub mod help;
pub mod man;

use std::collections::HashMap;
use std::ffi::OsString;

use flags::{Flag, FLAGS};

use crate::error::{did_you_mean, Error};

/// The command line as parsed, before its values are typed.
#[derive(Debug, Default)]
pub struct Raw {
    /// The subcommand; None when only global flags were given (e.g. `nexus --version`).
    pub command: Option<&'static str>,
    /// `nexus TASK ...`: the first word was no command name, and is taken as `run`'s.
    pub shorthand: bool,
    pub positionals: Vec<String>,
    /// The words after `--` (for a task's variadic parameter).
    pub rest: Vec<String>,
    values: HashMap<&'static str, Vec<String>>,
}

impl Raw {
    pub fn has(&self, long: &str) -> bool {
        self.values.contains_key(long)
    }

    pub fn value(&self, long: &str) -> Option<&str> {
        self.values
            .get(long)
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    /// A positive integer flag.
    pub fn count(&self, long: &str) -> Result<Option<usize>, Error> {
        match self.value(long) {
            None => Ok(None),
            Some(v) => match v.parse::<usize>() {
                Ok(n) if n > 0 => Ok(Some(n)),
                _ => Err(Error::usage(format!(
                    "--{long} needs a positive whole number, got `{v}`"
                ))
                .with_help(format!("for example: --{long} 4"))),
            },
        }
    }
}

fn usage_error(message: String, help: Option<String>, command: Option<&str>) -> Error {
    let mut e = Error::usage(message);
    if let Some(h) = help {
        e = e.with_help(h);
    }
    let more = match command {
        Some(c) => format!("see `nexus help {c}`"),
        None => "see `nexus help`".to_string(),
    };
    e.with_help(more)
}

fn unknown_flag(shown: &str, command: Option<&str>) -> Error {
    let names: Vec<String> = FLAGS
        .iter()
        .filter(|f| command.is_none_or(|c| f.applies_to(c)))
        .map(|f| format!("--{}", f.long))
        .collect();
    let help = did_you_mean(shown, names.iter().map(String::as_str));
    usage_error(format!("unknown flag `{shown}`"), help, command)
}

/// Parse and check argv (without the program name).
pub fn parse(argv: Vec<OsString>) -> Result<args::Invocation, Error> {
    args::typed(&parse_raw(argv)?)
}

/// Parse argv (without the program name) into flags and positionals.
pub fn parse_raw(mut argv: Vec<OsString>) -> Result<Raw, Error> {
    let rest = match argv.iter().position(|a| a == "--") {
        Some(i) => {
            let after = argv.split_off(i + 1);
            argv.pop();
            after
                .into_iter()
                .map(|a| {
                    a.into_string()
                        .map_err(|v| Error::usage(format!("argument {v:?} is not valid UTF-8")))
                })
                .collect::<Result<Vec<_>, _>>()?
        }
        None => Vec::new(),
    };
    let mut p = RawParser {
        parser: lexopt::Parser::from_args(argv),
        raw: Raw {
            rest,
            ..Raw::default()
        },
        seen: Vec::new(),
    };
    while p.step()? {}
    p.finish()
}

struct RawParser {
    parser: lexopt::Parser,
    raw: Raw,
    /// Flags seen before the command is known: checked once it is.
    seen: Vec<(&'static Flag, String)>,
}

impl RawParser {
    /// Take one argument; false at the end.
    fn step(&mut self) -> Result<bool, Error> {
        use lexopt::prelude::*;
        let arg = match self.parser.next() {
            Ok(Some(a)) => a,
            Ok(None) => return Ok(false),
            Err(e) => return Err(usage_error(e.to_string(), None, self.raw.command)),
        };
        let (flag, shown) = match arg {
            Short(c) => match flags::flag_by_short(c) {
                Some(f) => (f, format!("-{c}")),
                None => return Err(unknown_flag(&format!("-{c}"), self.raw.command)),
            },
            Long(name) => match flags::flag_by_long(name) {
                Some(f) => (f, format!("--{name}")),
                None => return Err(unknown_flag(&format!("--{name}"), self.raw.command)),
            },
            Value(v) => {
                let v = v
                    .into_string()
                    .map_err(|v| Error::usage(format!("argument {v:?} is not valid UTF-8")))?;
                self.word(v)?;
                return Ok(true);
            }
        };
        let value = self.flag_value(flag, &shown)?;
        self.seen.push((flag, shown));
        self.raw.values.entry(flag.long).or_default().push(value);
        Ok(true)
    }

    /// A word: the command, then positionals.
    fn word(&mut self, v: String) -> Result<(), Error> {
        if self.raw.command.is_some() {
            self.raw.positionals.push(v);
            return Ok(());
        }
        match flags::command(&v) {
            Some(c) => self.raw.command = Some(c.name),
            None => {
                // `nexus TASK ...` is `nexus run TASK ...` (cmd::run tells a mistyped
                // command from an unknown task).
                self.raw.command = Some("run");
                self.raw.shorthand = true;
                self.raw.positionals.push(v);
            }
        }
        Ok(())
    }

    /// The value of `flag` (empty for a switch), checked against its choices.
    fn flag_value(&mut self, flag: &'static Flag, shown: &str) -> Result<String, Error> {
        let Some(name) = flag.value else {
            return Ok(String::new());
        };
        let command = self.raw.command;
        let v = self
            .parser
            .value()
            .map_err(|_| usage_error(format!("{shown} needs a value ({name})"), None, command))?
            .into_string()
            .map_err(|v| Error::usage(format!("value {v:?} of {shown} is not valid UTF-8")))?;
        if !flag.choices.is_empty() && !flag.choices.contains(&v.as_str()) {
            let help = did_you_mean(&v, flag.choices.iter().copied())
                .unwrap_or_else(|| format!("choose one of: {}", flag.choices.join(", ")));
            return Err(usage_error(
                format!("{shown} does not take `{v}`"),
                Some(help),
                command,
            ));
        }
        Ok(v)
    }

    /// Flags that do not apply to the command, and its number of positionals.
    fn finish(self) -> Result<Raw, Error> {
        let Some(cmd) = self.raw.command else {
            // A bare `nexus` runs the default task: it takes `run`'s flags.
            let bare = !self.raw.has("help") && !self.raw.has("version");
            if let Some((flag, shown)) =
                self.seen.iter().find(|(f, _)| bare && !f.applies_to("run"))
            {
                return Err(usage_error(
                    format!("{shown} needs a command"),
                    Some(format!("it is a flag of: {}", flag.commands.join(", "))),
                    None,
                ));
            }
            return Ok(self.raw);
        };
        let shown_cmd = if self.raw.shorthand {
            format!("nexus {}", self.raw.positionals[0])
        } else {
            format!("nexus {cmd}")
        };
        for (flag, shown) in &self.seen {
            if !flag.applies_to(cmd) {
                return Err(usage_error(
                    format!("{shown} does not apply to `{shown_cmd}`"),
                    Some(format!("it is a flag of: {}", flag.commands.join(", "))),
                    Some(cmd),
                ));
            }
        }
        if !self.raw.has("help") {
            check_arity(cmd, &self.raw.positionals)?;
        }
        if !self.raw.rest.is_empty() && cmd != "run" {
            return Err(usage_error(
                format!("`--` does not apply to `nexus {cmd}`"),
                Some("`nexus run TASK ARGS... -- WORDS...` passes words to a task's variadic parameter".into()),
                Some(cmd),
            ));
        }
        Ok(self.raw)
    }
}

fn check_arity(cmd: &str, positionals: &[String]) -> Result<(), Error> {
    let Some(def) = flags::command(cmd) else {
        return Ok(());
    };
    let (min, max) = def.arity;
    if positionals.len() < min {
        let hint = if cmd == "run" {
            Some("name at least one task; `nexus list` shows them".to_string())
        } else {
            None
        };
        return Err(usage_error(
            format!("`nexus {cmd}` needs {}", def.args),
            hint,
            Some(cmd),
        ));
    }
    if let Some(max) = max {
        if positionals.len() > max {
            let extra = &positionals[max];
            return Err(usage_error(
                format!("unexpected argument `{extra}` for `nexus {cmd}`"),
                None,
                Some(cmd),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::flags::COMMANDS;
    use super::*;
    use std::collections::HashSet;

    fn p(args: &[&str]) -> Result<Raw, Error> {
        parse_raw(args.iter().map(OsString::from).collect())
    }

    fn typed(args: &[&str]) -> Result<args::Invocation, Error> {
        parse(args.iter().map(OsString::from).collect())
    }

    #[test]
    fn no_two_flags_share_a_name() {
        let mut longs = HashSet::new();
        let mut shorts = HashSet::new();
        for f in FLAGS {
            assert!(longs.insert(f.long), "--{} declared twice", f.long);
            if let Some(s) = f.short {
                assert!(shorts.insert(s), "-{s} declared twice");
            }
        }
        let mut cmds = HashSet::new();
        for c in COMMANDS {
            assert!(cmds.insert(c.name), "command {} declared twice", c.name);
        }
    }

    #[test]
    fn flags_anywhere() {
        let a = p(&["-v", "run", "build", "-p", "2", "test"]).unwrap();
        assert_eq!(a.command, Some("run"));
        assert_eq!(a.positionals, vec!["build", "test"]);
        assert!(a.has("verbose"));
        assert_eq!(a.count("parallel-limit").unwrap(), Some(2));
        let a = p(&["run", "--parallel-limit=3", "x"]).unwrap();
        assert_eq!(a.value("parallel-limit"), Some("3"));
    }

    #[test]
    fn errors_suggest() {
        let e = p(&["run", "--verbos", "x"]).unwrap_err();
        assert_eq!(e.title, "unknown flag `--verbos`");
        let a = p(&["rnu", "-v"]).unwrap();
        assert_eq!((a.command, a.shorthand), (Some("run"), true));
        assert_eq!(a.positionals, ["rnu"]);
        let e = p(&["build", "--names"]).unwrap_err();
        assert_eq!(e.title, "--names does not apply to `nexus build`");
        let e = p(&["--names"]).unwrap_err();
        assert_eq!(e.title, "--names needs a command");
        assert!(p(&["-n", "-v"]).is_ok());
        let e = p(&["list", "-v"]).unwrap_err();
        assert_eq!(e.title, "-v does not apply to `nexus list`");
        let e = p(&["run"]).unwrap_err();
        assert_eq!(e.title, "`nexus run` needs TASK...");
        let e = p(&["run", "x", "--format", "yaml"]).unwrap_err();
        assert_eq!(e.title, "--format does not take `yaml`");
    }

    #[test]
    fn invalid_combinations_are_refused_before_anything_is_read() {
        let title = |a: &[&str]| typed(a).unwrap_err().title;
        assert_eq!(
            title(&["run", "x", "--format", "quiet"]),
            "--format quiet is for `nexus preflight`, not `nexus run`"
        );
        assert_eq!(
            title(&["run", "x", "-q", "-v"]),
            "-q/--quiet and -v/--verbose cannot be used together"
        );
        assert_eq!(
            title(&["run", "x", "-u", ""]),
            "-u/--user needs a user name, got an empty string"
        );
        assert_eq!(
            title(&["runs", "--keep", "3"]),
            "--keep is for `nexus runs gc`"
        );
        assert_eq!(
            title(&["preflight", "x", "--timeout", "soon"]),
            "--timeout: `soon` is not a duration"
        );
        assert_eq!(
            title(&["completions", "tcsh"]),
            "no completions for shell `tcsh`"
        );
        match typed(&["hosts", "resolve", "h", "--ssh-config", "none"])
            .unwrap()
            .command
        {
            args::Command::HostsResolve { ssh_config, .. } => assert_eq!(ssh_config, Some(None)),
            other => panic!("{other:?}"),
        }
    }
}
