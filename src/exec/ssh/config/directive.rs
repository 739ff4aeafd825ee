//! The parsed form of an ssh_config file (statements: Host, Match, settings, included
//! files) and the checks each directive gets while it is read, with OpenSSH's messages.
//! Must not: evaluate Host/Match against a host (eval.rs) or expand values (expand.rs).

use std::path::{Path, PathBuf};

use super::include::parse_include;
use super::jump::parse_jump;
use super::keywords;
use super::lex::{argv_split, split_keyword};
use super::values::{a2port, convtime};
use super::{ConfigError, MAX_HOSTS_FILES};
use crate::exec::ssh::pattern::{match_list, ListMatch};

#[derive(Debug, Clone)]
pub(super) enum Stmt {
    /// `Host` patterns, each possibly `!`-negated.
    Host(Vec<String>),
    Match(Vec<Crit>),
    Set(Setting, At),
    /// The statements of each file an `Include` line matched, in glob order.
    Include(Vec<Vec<Stmt>>),
    /// A keyword OpenSSH does not know, read after an `IgnoreUnknown` list that names
    /// it: refused when a host is resolved unless the `IgnoreUnknown` in force for that
    /// host names it (with no such list before it, it is refused while parsing).
    Unknown(String, At),
}

/// Where a directive stands: its file and 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct At {
    pub(super) file: PathBuf,
    pub(super) line: usize,
}

impl At {
    pub(super) fn err(&self, message: impl Into<String>) -> ConfigError {
        err(&self.file, self.line, message)
    }
}

/// OpenSSH's words for a keyword it does not know, and what to try.
pub(super) fn bad_option(keyword: &str) -> String {
    format!(
        "Bad configuration option: {keyword} (OpenSSH 9.x has no such keyword: check its spelling, or name it in an IgnoreUnknown line before it)"
    )
}

/// What parsing carries across lines and included files.
#[derive(Debug, Default)]
pub(super) struct ParseCx {
    /// `Include` nesting of the file being read.
    pub(super) depth: usize,
    /// Every `IgnoreUnknown` list read so far, whatever block it stands in.
    ignore_lists: Vec<String>,
}

#[derive(Debug, Clone)]
pub(super) enum CritKind {
    /// `all` (only ever alone, or after `canonical`/`final`).
    All,
    Host(String),
    OriginalHost(String),
    User(String),
    LocalUser(String),
    /// `canonical` / `final`: false on the (only) pass nexus makes.
    PostCanon,
    /// `exec`, `localnetwork`: never evaluated, the line never matches.
    Unsupported,
}

#[derive(Debug, Clone)]
pub(super) struct Crit {
    pub(super) negate: bool,
    pub(super) kind: CritKind,
}

#[derive(Debug, Clone)]
pub(super) enum Setting {
    HostName(String),
    User(String),
    Port(u16),
    IdentityFile(String),
    IdentitiesOnly(bool),
    StrictHostKeyChecking(&'static str),
    UserKnownHostsFile(Vec<String>),
    /// None = `none` (leaves the value unset, as OpenSSH does).
    ConnectTimeout(Option<u64>),
    ServerAliveInterval(Option<u64>),
    ServerAliveCountMax(u64),
    /// None = `none`.
    ProxyJump(Option<String>),
    /// As written (the raw rest of the line); None = `none`.
    ProxyCommand(Option<String>),
    KexAlgorithms(String),
    HostKeyAlgorithms(String),
    /// The `IgnoreUnknown` pattern list (first one in force wins).
    IgnoreUnknown(String),
    /// Only for the `%k` token.
    HostKeyAlias(String),
}

pub(super) fn err(file: &Path, line: usize, message: impl Into<String>) -> ConfigError {
    ConfigError {
        file: file.to_path_buf(),
        line,
        message: message.into(),
    }
}

pub(super) fn parse_text(
    text: &str,
    file: &Path,
    cx: &mut ParseCx,
) -> Result<Vec<Stmt>, ConfigError> {
    let mut out = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let n = i + 1;
        let line = raw.trim_end_matches([' ', '\t', '\r', '\n', '\x0c']);
        let Some((keyword, rest)) = split_keyword(line) else {
            continue;
        };
        // OpenSSH's order: a missing value, an unknown keyword, then bad quotes.
        let no_argument = || err(file, n, format!("no argument after keyword \"{keyword}\""));
        if rest.trim_start_matches([' ', '\t', '\r', '\n']).is_empty() {
            return Err(no_argument());
        }
        let unknown = !keywords::is_known(&keyword);
        if unknown && !cx.may_ignore(&keyword) {
            return Err(err(file, n, bad_option(&keyword)));
        }
        let args = argv_split(rest).ok_or_else(|| err(file, n, "invalid quotes"))?;
        let at = At {
            file: file.to_path_buf(),
            line: n,
        };
        if unknown {
            out.push(Stmt::Unknown(keyword, at));
            continue;
        }
        if args.is_empty() {
            return Err(no_argument());
        }
        let line = Line {
            kw: &keyword,
            args,
            rest,
            at,
        };
        if let Some(stmt) = parse_directive(line, cx)? {
            out.push(stmt);
        }
    }
    Ok(out)
}

impl ParseCx {
    /// Could an `IgnoreUnknown` read so far name `keyword`? (Which one is in force
    /// depends on the host, so the final word is eval's.)
    fn may_ignore(&self, keyword: &str) -> bool {
        self.ignore_lists
            .iter()
            .any(|l| match_list(keyword, l, true) == ListMatch::Positive)
    }
}

/// One directive line: its keyword (lowercased), split arguments, raw rest of the line
/// (ProxyJump and ProxyCommand read that), and where it stands.
struct Line<'a> {
    kw: &'a str,
    args: Vec<String>,
    rest: &'a str,
    at: At,
}

impl Line<'_> {
    fn err(&self, message: impl Into<String>) -> ConfigError {
        self.at.err(message)
    }

    /// Exactly one argument; `missing` is the message for none.
    fn one_arg(&self, missing: &str) -> Result<String, ConfigError> {
        let Some(a) = self.args.first().filter(|a| !a.is_empty()) else {
            return Err(self.err(missing));
        };
        if self.args.len() > 1 {
            return Err(self.err(format!(
                "keyword {} extra arguments at end of line",
                self.kw
            )));
        }
        Ok(a.clone())
    }

    /// The raw value after the keyword (`=` and blanks skipped), as OpenSSH reads
    /// ProxyJump and ProxyCommand.
    fn raw_value(&self) -> &str {
        self.rest.trim_start_matches([' ', '\t', '\r', '\n', '='])
    }
}

const MISSING: &str = "missing argument.";

fn parse_directive(line: Line<'_>, cx: &mut ParseCx) -> Result<Option<Stmt>, ConfigError> {
    let at = line.at.clone();
    let set = |s: Setting| Ok(Some(Stmt::Set(s, at)));
    match line.kw {
        "host" => {
            if line.args.iter().any(|a| a.is_empty()) {
                return Err(line.err(format!("keyword {} empty argument", line.kw)));
            }
            Ok(Some(Stmt::Host(line.args)))
        }
        "match" => Ok(Some(Stmt::Match(parse_match(
            &line.args,
            &line.at.file,
            line.at.line,
        )?))),
        "include" => Ok(Some(Stmt::Include(parse_include(
            &line.args, &line.at, cx,
        )?))),
        "ignoreunknown" => {
            let list = line.one_arg("Missing argument.")?;
            cx.ignore_lists.push(list.clone());
            set(Setting::IgnoreUnknown(list))
        }
        "hostkeyalias" => set(Setting::HostKeyAlias(line.one_arg("Missing argument.")?)),
        "hostname" => set(Setting::HostName(line.one_arg(MISSING)?)),
        "user" => set(Setting::User(line.one_arg(MISSING)?)),
        "kexalgorithms" => set(Setting::KexAlgorithms(line.one_arg(MISSING)?)),
        "hostkeyalgorithms" => set(Setting::HostKeyAlgorithms(line.one_arg(MISSING)?)),
        "identityfile" => set(Setting::IdentityFile(line.one_arg("Missing argument.")?)),
        "port" => {
            let a = line.one_arg(MISSING)?;
            match a2port(&a) {
                Some(p) => set(Setting::Port(p)),
                None => Err(line.err(format!("Bad port '{a}'."))),
            }
        }
        "identitiesonly" => set(Setting::IdentitiesOnly(parse_yes_no(&line)?)),
        "stricthostkeychecking" => set(Setting::StrictHostKeyChecking(parse_shkc(&line)?)),
        "userknownhostsfile" => parse_known_hosts(line),
        "connecttimeout" => set(Setting::ConnectTimeout(parse_time(&line)?)),
        "serveraliveinterval" => set(Setting::ServerAliveInterval(parse_time(&line)?)),
        "serveralivecountmax" => set(Setting::ServerAliveCountMax(parse_count(&line)?)),
        "proxyjump" => match parse_jump(line.raw_value()) {
            Some(v) => set(Setting::ProxyJump(v)),
            None => Err(line.err(format!("Invalid ProxyJump \"{}\"", line.raw_value()))),
        },
        "proxycommand" => {
            let cmd = line.raw_value();
            if cmd.is_empty() {
                return Err(line.err(MISSING));
            }
            let cmd = (!cmd.eq_ignore_ascii_case("none")).then(|| cmd.to_string());
            set(Setting::ProxyCommand(cmd))
        }
        _ => Ok(None),
    }
}

fn parse_yes_no(line: &Line<'_>) -> Result<bool, ConfigError> {
    let a = line.one_arg(MISSING)?;
    match a.to_ascii_lowercase().as_str() {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        _ => Err(line.err(format!("unsupported option \"{a}\"."))),
    }
}

/// StrictHostKeyChecking in `ssh -G`'s word.
fn parse_shkc(line: &Line<'_>) -> Result<&'static str, ConfigError> {
    let a = line.one_arg(MISSING)?;
    match a.to_ascii_lowercase().as_str() {
        "yes" | "true" => Ok("true"),
        "no" | "false" | "off" => Ok("false"),
        "ask" => Ok("ask"),
        "accept-new" => Ok("accept-new"),
        _ => Err(line.err(format!("unsupported option \"{a}\"."))),
    }
}

/// A time in seconds; None for `none`.
fn parse_time(line: &Line<'_>) -> Result<Option<u64>, ConfigError> {
    let a = line.one_arg("missing time value.")?;
    if a == "none" {
        return Ok(None);
    }
    match convtime(&a) {
        Some(t) => Ok(Some(t)),
        None => Err(line.err("invalid time value.")),
    }
}

/// A whole number 0..=INT_MAX, as OpenSSH's strtonum takes it, with its messages.
fn parse_count(line: &Line<'_>) -> Result<u64, ConfigError> {
    use std::num::IntErrorKind;
    let a = line.one_arg("missing argument.")?;
    match a.parse::<i64>() {
        Ok(n) if n < 0 => Err(line.err("integer value too small.")),
        Ok(n) if n > i64::from(i32::MAX) => Err(line.err("integer value too large.")),
        Ok(n) => Ok(n as u64),
        Err(e) if *e.kind() == IntErrorKind::PosOverflow => {
            Err(line.err("integer value too large."))
        }
        Err(e) if *e.kind() == IntErrorKind::NegOverflow => {
            Err(line.err("integer value too small."))
        }
        Err(_) => Err(line.err("integer value invalid.")),
    }
}

fn parse_known_hosts(line: Line<'_>) -> Result<Option<Stmt>, ConfigError> {
    let count = line.args.len();
    for (i, a) in line.args.iter().enumerate() {
        if a.is_empty() {
            return Err(line.err(format!("keyword {} empty argument", line.kw)));
        }
        if a.eq_ignore_ascii_case("none") && (i > 0 || count > 1) {
            return Err(line.err(format!(
                "keyword {} \"none\" argument must appear alone.",
                line.kw
            )));
        }
    }
    if count > MAX_HOSTS_FILES {
        return Err(line.err(format!("too many {} entries.", line.kw)));
    }
    Ok(Some(Stmt::Set(
        Setting::UserKnownHostsFile(line.args),
        line.at,
    )))
}

fn parse_match(args: &[String], file: &Path, n: usize) -> Result<Vec<Crit>, ConfigError> {
    let mut crits = Vec::new();
    let mut attributes = 0;
    let mut i = 0;
    while i < args.len() {
        let oattrib = &args[i];
        i += 1;
        let negate = oattrib.starts_with('!');
        let attrib = if negate { &oattrib[1..] } else { &oattrib[..] };
        let lower = attrib.to_ascii_lowercase();
        if lower == "all" {
            let next = args.get(i);
            if attributes > 1 || next.is_some_and(|a| !a.is_empty() && !a.starts_with('#')) {
                return Err(err(
                    file,
                    n,
                    format!("'{oattrib}' cannot be combined with other Match attributes"),
                ));
            }
            crits.push(Crit {
                negate,
                kind: CritKind::All,
            });
            return Ok(crits);
        }
        attributes += 1;
        if lower == "canonical" || lower == "final" {
            crits.push(Crit {
                negate,
                kind: CritKind::PostCanon,
            });
            continue;
        }
        let arg = match args.get(i) {
            Some(a) if !a.is_empty() && !a.starts_with('#') => a.clone(),
            _ => return Err(err(file, n, format!("Missing Match criteria for {attrib}"))),
        };
        i += 1;
        let kind = match lower.as_str() {
            "host" => CritKind::Host(arg),
            "originalhost" => CritKind::OriginalHost(arg),
            "user" => CritKind::User(arg),
            "localuser" => CritKind::LocalUser(arg),
            "exec" | "localnetwork" => CritKind::Unsupported,
            _ => {
                return Err(err(
                    file,
                    n,
                    format!("Unsupported Match attribute {attrib}"),
                ))
            }
        };
        crits.push(Crit { negate, kind });
    }
    if attributes == 0 {
        return Err(err(file, n, "One or more attributes required for Match"));
    }
    Ok(crits)
}
