//! Command line: lexopt turns argv into `Raw` (command, positionals, flag values) using
//! the tables in `flags`; `args` turns that into one typed, checked value per command.
//! Unknown commands and flags get suggestions. Must not: load config or run anything.

pub mod args;
pub mod flags;
pub mod help;

use std::collections::HashMap;
use std::ffi::OsString;

use flags::{Flag, COMMANDS, FLAGS};

use crate::error::{did_you_mean, Error};

/// The command line as parsed, before its values are typed.
#[derive(Debug, Default)]
pub struct Raw {
    /// The subcommand; None when only global flags were given (e.g. `nexus --version`).
    pub command: Option<&'static str>,
    pub positionals: Vec<String>,
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
pub fn parse_raw(argv: Vec<OsString>) -> Result<Raw, Error> {
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_args(argv);
    let mut args = Raw::default();
    // Flags seen before the command is known: checked once it is.
    let mut seen: Vec<(&'static Flag, String)> = Vec::new();
    loop {
        let arg = match parser.next() {
            Ok(Some(a)) => a,
            Ok(None) => break,
            Err(e) => return Err(usage_error(e.to_string(), None, args.command)),
        };
        let (flag, shown) = match arg {
            Short(c) => match flags::flag_by_short(c) {
                Some(f) => (f, format!("-{c}")),
                None => return Err(unknown_flag(&format!("-{c}"), args.command)),
            },
            Long(name) => match flags::flag_by_long(name) {
                Some(f) => (f, format!("--{name}")),
                None => {
                    let shown = format!("--{name}");
                    return Err(unknown_flag(&shown, args.command));
                }
            },
            Value(v) => {
                let v = v
                    .into_string()
                    .map_err(|v| Error::usage(format!("argument {v:?} is not valid UTF-8")))?;
                if args.command.is_none() {
                    match flags::command(&v) {
                        Some(c) => args.command = Some(c.name),
                        None => {
                            let help = did_you_mean(&v, COMMANDS.iter().map(|c| c.name))
                                .or_else(|| Some("run `nexus help` to see the commands".into()));
                            let mut e = Error::usage(format!("unknown command `{v}`"));
                            if let Some(h) = help {
                                e = e.with_help(h);
                            }
                            return Err(e);
                        }
                    }
                } else {
                    args.positionals.push(v);
                }
                continue;
            }
        };
        let value = match flag.value {
            Some(_) => {
                let v = parser
                    .value()
                    .map_err(|_| {
                        usage_error(
                            format!("{shown} needs a value ({})", flag.value.unwrap_or("VALUE")),
                            None,
                            args.command,
                        )
                    })?
                    .into_string()
                    .map_err(|v| {
                        Error::usage(format!("value {v:?} of {shown} is not valid UTF-8"))
                    })?;
                if !flag.choices.is_empty() && !flag.choices.contains(&v.as_str()) {
                    let help = did_you_mean(&v, flag.choices.iter().copied())
                        .unwrap_or_else(|| format!("choose one of: {}", flag.choices.join(", ")));
                    return Err(usage_error(
                        format!("{shown} does not take `{v}`"),
                        Some(help),
                        args.command,
                    ));
                }
                v
            }
            None => String::new(),
        };
        seen.push((flag, shown));
        args.values.entry(flag.long).or_default().push(value);
    }
    if let Some(cmd) = args.command {
        for (flag, shown) in &seen {
            if !flag.applies_to(cmd) {
                let users: Vec<&str> = flag.commands.to_vec();
                return Err(usage_error(
                    format!("{shown} does not apply to `nexus {cmd}`"),
                    Some(format!("it is a flag of: {}", users.join(", "))),
                    Some(cmd),
                ));
            }
        }
        if !args.has("help") {
            check_arity(cmd, &args.positionals)?;
        }
    }
    Ok(args)
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
        let e = p(&["rnu"]).unwrap_err();
        assert_eq!(e.title, "unknown command `rnu`");
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
