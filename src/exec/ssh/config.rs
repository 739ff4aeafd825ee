//! OpenSSH client configuration (`ssh_config(5)`) for nexus.
//!
//! Owns: reading an ssh_config file (and the files it `Include`s), validating the
//! directives nexus uses the way OpenSSH 9.x does, and resolving what one host alias
//! gets (`HostName`, `User`, `Port`, `IdentityFile`, `IdentitiesOnly`,
//! `StrictHostKeyChecking`, `UserKnownHostsFile`, `ConnectTimeout`,
//! `ServerAliveInterval`, `ProxyJump`), with host-string overrides on top and nexus
//! `[config]` fallbacks below. [`Resolved::ssh_g_lines`] prints the result in the
//! words and forms of `ssh -G`.
//!
//! Must not: open connections, run commands (`Match exec` never matches), touch the
//! network (`Match localnetwork` never matches), write files, or panic on anything a
//! config file contains. Keywords nexus does not use are accepted and ignored (OpenSSH
//! rejects unknown ones); their values are not checked.

use std::ffi::{CStr, CString};
use std::fmt;
use std::path::{Path, PathBuf};

/// Maximum `Include` nesting, as OpenSSH's `READCONF_MAX_DEPTH`.
const MAX_INCLUDE_DEPTH: usize = 16;
/// Maximum identity files, as OpenSSH's `SSH_MAX_IDENTITY_FILES`.
const MAX_IDENTITY_FILES: usize = 100;
/// Maximum known-hosts files per directive, as OpenSSH's `SSH_MAX_HOSTS_FILES`.
const MAX_HOSTS_FILES: usize = 16;

/// The identity files OpenSSH tries when none is configured, in its order.
const DEFAULT_IDENTITIES: [&str; 7] = [
    "~/.ssh/id_rsa",
    "~/.ssh/id_ecdsa",
    "~/.ssh/id_ecdsa_sk",
    "~/.ssh/id_ed25519",
    "~/.ssh/id_ed25519_sk",
    "~/.ssh/id_xmss",
    "~/.ssh/id_dsa",
];
const DEFAULT_KNOWN_HOSTS: [&str; 2] = ["~/.ssh/known_hosts", "~/.ssh/known_hosts2"];

/// A parsed ssh_config file, includes resolved. `Default` is an empty config.
#[derive(Debug, Default, Clone)]
pub struct SshConfig {
    stmts: Vec<Stmt>,
}

/// A configuration error: file, 1-based line (0 when it concerns the whole file), message.
#[derive(Debug)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Host-string level values (and `-u`/`-i`): they win over the file, like `ssh -l/-p/-i`.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity: Option<String>,
}

/// nexus `[config]` values: used only where the file left a value unset.
#[derive(Debug, Default, Clone)]
pub struct Fallbacks {
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity: Option<String>,
}

/// What one alias resolves to.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub hostname: String,
    pub user: String,
    pub port: u16,
    /// Expanded (`~`, `%` tokens, `${VAR}`); empty means `IdentityFile none`.
    pub identity_files: Vec<String>,
    pub identities_only: bool,
    /// `ssh -G`'s word: `ask`, `true` (yes), `false` (no/off), `accept-new`.
    pub strict_host_key_checking: String,
    /// Expanded files, or the single word `none`.
    pub user_known_hosts_files: Vec<String>,
    /// None = no timeout (`connecttimeout none`).
    pub connect_timeout: Option<u64>,
    pub server_alive_interval: u64,
    /// The hops in `ssh -G`'s form; None for a direct connection (`ProxyJump none`).
    pub proxy_jump: Option<String>,
    /// KexAlgorithms / HostKeyAlgorithms as written (`a,b`, `+a`, `-a`, `^a`); None if unset.
    pub kex_algorithms: Option<String>,
    pub host_key_algorithms: Option<String>,
}

// ---------------------------------------------------------------------------
// Parsed form

#[derive(Debug, Clone)]
enum Stmt {
    /// `Host` patterns, each possibly `!`-negated.
    Host(Vec<String>),
    Match(Vec<Crit>),
    Set(Setting),
    /// The statements of each file an `Include` line matched, in glob order.
    Include(Vec<Vec<Stmt>>),
}

#[derive(Debug, Clone)]
enum CritKind {
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
struct Crit {
    negate: bool,
    kind: CritKind,
}

#[derive(Debug, Clone)]
enum Setting {
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
    /// None = `none`.
    ProxyJump(Option<String>),
    ProxyCommand,
    KexAlgorithms(String),
    HostKeyAlgorithms(String),
}

// ---------------------------------------------------------------------------
// Public entry points

/// Read and parse `path` (and everything it includes).
pub fn parse_file(path: &Path) -> Result<SshConfig, ConfigError> {
    let bytes = std::fs::read(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        line: 0,
        message: format!("cannot read: {e}"),
    })?;
    let text = String::from_utf8_lossy(&bytes);
    parse_str(&text, path)
}

/// Parse `text`; `origin` names it in messages. Relative `Include`s are looked up in
/// `~/.ssh`, as OpenSSH does for user configuration files.
pub fn parse_str(text: &str, origin: &Path) -> Result<SshConfig, ConfigError> {
    let stmts = parse_text(text, origin, 0)?;
    Ok(SshConfig { stmts })
}

impl SshConfig {
    /// Resolve `alias` with no overrides and no fallbacks.
    pub fn resolve(&self, alias: &str) -> Resolved {
        self.resolve_with(alias, &Overrides::default(), &Fallbacks::default())
    }

    /// Resolve `alias`: overrides > this file > fallbacks > OpenSSH defaults.
    pub fn resolve_with(&self, alias: &str, o: &Overrides, f: &Fallbacks) -> Resolved {
        let env = Env::current();
        let mut st = State {
            user: o.user.clone(),
            port: o.port,
            ..State::default()
        };
        if let Some(id) = &o.identity {
            // Like `ssh -i`: tilde-expanded before it joins the list.
            st.identity_files.push(tilde_expand(id, &env.home));
        }
        let mut active = true;
        eval(&self.stmts, alias, &env, &mut st, &mut active, false);

        let user = st
            .user
            .clone()
            .or_else(|| f.user.clone())
            .unwrap_or_else(|| env.local_user.clone());
        let port = st.port.or(f.port).unwrap_or(22);
        let raw_host = match &st.hostname {
            Some(h) => expand_hostname(h, alias),
            None => alias.to_string(),
        };
        let hostname = if is_addr(&raw_host) {
            raw_host
        } else {
            raw_host.to_ascii_lowercase()
        };

        let ctx = ExpandCtx {
            env: &env,
            hostname: &hostname,
            port,
            ruser: &user,
            alias,
        };
        let mut raw_ids = st.identity_files.clone();
        if raw_ids.is_empty() {
            match &f.identity {
                Some(id) => raw_ids.push(id.clone()),
                None => raw_ids.extend(DEFAULT_IDENTITIES.iter().map(|s| s.to_string())),
            }
        }
        let identity_files = raw_ids
            .iter()
            .filter(|p| !p.eq_ignore_ascii_case("none"))
            .map(|p| ctx.expand_path(p))
            .collect();
        let user_known_hosts_files = match &st.known_hosts {
            Some(v) => v.iter().map(|p| ctx.expand_path(p)).collect(),
            None => DEFAULT_KNOWN_HOSTS
                .iter()
                .map(|p| ctx.expand_path(p))
                .collect(),
        };
        Resolved {
            hostname,
            user,
            port,
            identity_files,
            identities_only: st.identities_only.unwrap_or(false),
            strict_host_key_checking: st.strict_host_key_checking.unwrap_or("ask").to_string(),
            user_known_hosts_files,
            connect_timeout: st.connect_timeout,
            server_alive_interval: st.server_alive_interval.unwrap_or(0),
            proxy_jump: st.jump.flatten(),
            kex_algorithms: st.kex_algorithms.clone(),
            host_key_algorithms: st.host_key_algorithms.clone(),
        }
    }
}

impl Resolved {
    /// `keyword value` lines as `ssh -G` prints them, for the settings nexus uses.
    pub fn ssh_g_lines(&self) -> Vec<String> {
        let mut v = vec![
            format!("hostname {}", self.hostname),
            format!("user {}", self.user),
            format!("port {}", self.port),
        ];
        if self.identity_files.is_empty() {
            v.push("identityfile none".to_string());
        }
        for id in &self.identity_files {
            v.push(format!("identityfile {id}"));
        }
        v.push(format!(
            "identitiesonly {}",
            if self.identities_only { "yes" } else { "no" }
        ));
        if let Some(j) = &self.proxy_jump {
            v.push(format!("proxyjump {j}"));
        }
        v.push(format!(
            "stricthostkeychecking {}",
            self.strict_host_key_checking
        ));
        if !self.user_known_hosts_files.is_empty() {
            v.push(format!(
                "userknownhostsfile {}",
                self.user_known_hosts_files.join(" ")
            ));
        }
        v.push(match self.connect_timeout {
            Some(t) => format!("connecttimeout {t}"),
            None => "connecttimeout none".to_string(),
        });
        v.push(format!(
            "serveraliveinterval {}",
            self.server_alive_interval
        ));
        v
    }
}

// ---------------------------------------------------------------------------
// Parsing

fn err(file: &Path, line: usize, message: impl Into<String>) -> ConfigError {
    ConfigError {
        file: file.to_path_buf(),
        line,
        message: message.into(),
    }
}

fn parse_text(text: &str, file: &Path, depth: usize) -> Result<Vec<Stmt>, ConfigError> {
    let mut out = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let n = i + 1;
        let line = raw.trim_end_matches([' ', '\t', '\r', '\n', '\x0c']);
        let Some((keyword, rest)) = split_keyword(line) else {
            continue;
        };
        let args = argv_split(rest).ok_or_else(|| err(file, n, "invalid quotes"))?;
        if args.is_empty() {
            return Err(err(
                file,
                n,
                format!("no argument after keyword \"{keyword}\""),
            ));
        }
        if let Some(stmt) = parse_directive(&keyword, args, rest, file, n, depth)? {
            out.push(stmt);
        }
    }
    Ok(out)
}

/// OpenSSH's `strdelim` with `=` splitting: returns (token, rest). `rest` is None when
/// the string held no delimiter. Returns None for an unterminated quote.
fn strdelim(s: &str) -> Option<(String, Option<&str>)> {
    let is_ws = |c: char| matches!(c, ' ' | '\t' | '\r' | '\n');
    let Some(pos) = s.find(|c: char| is_ws(c) || c == '"' || c == '=') else {
        return Some((s.to_string(), None));
    };
    let skip_ws = |t: &str| -> usize { t.len() - t.trim_start_matches(is_ws).len() };
    let bytes = s.as_bytes();
    if bytes[pos] == b'"' {
        // The quote is removed and the token runs to the next quote.
        let after = &s[pos + 1..];
        let close = after.find('"')?;
        let token = format!("{}{}", &s[..pos], &after[..close]);
        let rest = &after[close + 1..];
        let rest = &rest[skip_ws(rest)..];
        return Some((token, Some(rest)));
    }
    let token = s[..pos].to_string();
    let was_equals = bytes[pos] == b'=';
    let mut rest = &s[pos + 1..];
    rest = &rest[skip_ws(rest)..];
    if !was_equals {
        if let Some(r) = rest.strip_prefix('=') {
            rest = &r[skip_ws(r)..];
        }
    }
    Some((token, Some(rest)))
}

/// The keyword (lowercased) and the rest of the line, or None for blank/comment lines.
fn split_keyword(line: &str) -> Option<(String, &str)> {
    let (mut kw, mut rest) = strdelim(line)?;
    if kw.is_empty() {
        let r = rest?;
        (kw, rest) = strdelim(r)?;
    }
    if kw.is_empty() || kw.starts_with('#') {
        return None;
    }
    Some((kw.to_ascii_lowercase(), rest.unwrap_or("")))
}

/// OpenSSH's `argv_split` (quotes, backslash escapes, `#` at a token start ends the
/// line). None for an unterminated quote.
fn argv_split(s: &str) -> Option<Vec<String>> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == ' ' || c == '\t' {
            i += 1;
            continue;
        }
        if c == '#' {
            break;
        }
        let mut quote: Option<char> = None;
        let mut arg = String::new();
        while i < chars.len() {
            let c = chars[i];
            if c == '\\' {
                match chars.get(i + 1) {
                    Some(&n)
                        if n == '\'' || n == '"' || n == '\\' || (quote.is_none() && n == ' ') =>
                    {
                        arg.push(n);
                        i += 1;
                    }
                    _ => arg.push(c),
                }
            } else if quote.is_none() && (c == ' ' || c == '\t') {
                break;
            } else if quote.is_none() && (c == '"' || c == '\'') {
                quote = Some(c);
            } else if quote == Some(c) {
                quote = None;
            } else {
                arg.push(c);
            }
            i += 1;
        }
        if quote.is_some() {
            return None;
        }
        out.push(arg);
    }
    Some(out)
}

/// Take exactly one argument; complain about a missing one or extra ones.
fn one_arg(
    args: &[String],
    kw: &str,
    file: &Path,
    n: usize,
    missing: &str,
) -> Result<String, ConfigError> {
    let Some(a) = args.first().filter(|a| !a.is_empty()) else {
        return Err(err(file, n, missing.to_string()));
    };
    if args.len() > 1 {
        return Err(err(
            file,
            n,
            format!("keyword {kw} extra arguments at end of line"),
        ));
    }
    Ok(a.clone())
}

fn parse_directive(
    kw: &str,
    args: Vec<String>,
    rest: &str,
    file: &Path,
    n: usize,
    depth: usize,
) -> Result<Option<Stmt>, ConfigError> {
    let missing = "missing argument.";
    let stmt = match kw {
        "host" => {
            if args.iter().any(|a| a.is_empty()) {
                return Err(err(file, n, format!("keyword {kw} empty argument")));
            }
            Stmt::Host(args)
        }
        "match" => Stmt::Match(parse_match(&args, file, n)?),
        "hostname" => Stmt::Set(Setting::HostName(one_arg(&args, kw, file, n, missing)?)),
        "kexalgorithms" => Stmt::Set(Setting::KexAlgorithms(one_arg(
            &args, kw, file, n, missing,
        )?)),
        "hostkeyalgorithms" => Stmt::Set(Setting::HostKeyAlgorithms(one_arg(
            &args, kw, file, n, missing,
        )?)),
        "user" => Stmt::Set(Setting::User(one_arg(&args, kw, file, n, missing)?)),
        "port" => {
            let a = one_arg(&args, kw, file, n, missing)?;
            match a2port(&a) {
                Some(p) => Stmt::Set(Setting::Port(p)),
                None => return Err(err(file, n, format!("Bad port '{a}'."))),
            }
        }
        "identityfile" => {
            let a = one_arg(&args, kw, file, n, "Missing argument.")?;
            Stmt::Set(Setting::IdentityFile(a))
        }
        "identitiesonly" => {
            let a = one_arg(&args, kw, file, n, missing)?;
            let v = match a.to_ascii_lowercase().as_str() {
                "yes" | "true" => true,
                "no" | "false" => false,
                _ => return Err(err(file, n, format!("unsupported option \"{a}\"."))),
            };
            Stmt::Set(Setting::IdentitiesOnly(v))
        }
        "stricthostkeychecking" => {
            let a = one_arg(&args, kw, file, n, missing)?;
            let v = match a.to_ascii_lowercase().as_str() {
                "yes" | "true" => "true",
                "no" | "false" | "off" => "false",
                "ask" => "ask",
                "accept-new" => "accept-new",
                _ => return Err(err(file, n, format!("unsupported option \"{a}\"."))),
            };
            Stmt::Set(Setting::StrictHostKeyChecking(v))
        }
        "userknownhostsfile" => {
            let count = args.len();
            for (i, a) in args.iter().enumerate() {
                if a.is_empty() {
                    return Err(err(file, n, format!("keyword {kw} empty argument")));
                }
                if a.eq_ignore_ascii_case("none") && (i > 0 || count > 1) {
                    return Err(err(
                        file,
                        n,
                        format!("keyword {kw} \"none\" argument must appear alone."),
                    ));
                }
            }
            if count > MAX_HOSTS_FILES {
                return Err(err(file, n, format!("too many {kw} entries.")));
            }
            if args.is_empty() {
                return Ok(None);
            }
            Stmt::Set(Setting::UserKnownHostsFile(args))
        }
        "connecttimeout" | "serveraliveinterval" => {
            let a = one_arg(&args, kw, file, n, "missing time value.")?;
            let v = if a == "none" {
                None
            } else {
                match convtime(&a) {
                    Some(t) => Some(t),
                    None => return Err(err(file, n, "invalid time value.")),
                }
            };
            if kw == "connecttimeout" {
                Stmt::Set(Setting::ConnectTimeout(v))
            } else {
                Stmt::Set(Setting::ServerAliveInterval(v))
            }
        }
        "proxyjump" => {
            // OpenSSH reads the raw rest of the line here, not the split arguments.
            let raw = rest.trim_start_matches([' ', '\t', '\r', '\n', '=']);
            match parse_jump(raw) {
                Some(v) => Stmt::Set(Setting::ProxyJump(v)),
                None => return Err(err(file, n, format!("Invalid ProxyJump \"{raw}\""))),
            }
        }
        "proxycommand" => {
            if rest.trim_start_matches([' ', '\t', '=']).is_empty() {
                return Err(err(file, n, "missing argument."));
            }
            Stmt::Set(Setting::ProxyCommand)
        }
        "include" => Stmt::Include(parse_include(&args, file, n, depth)?),
        _ => return Ok(None),
    };
    Ok(Some(stmt))
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

fn parse_include(
    args: &[String],
    file: &Path,
    n: usize,
    depth: usize,
) -> Result<Vec<Vec<Stmt>>, ConfigError> {
    let home = home_dir();
    let mut files = Vec::new();
    for a in args {
        if a.is_empty() {
            return Err(err(file, n, "keyword include empty argument"));
        }
        let pattern = if a.starts_with('/') {
            a.clone()
        } else if a.starts_with('~') {
            tilde_expand(a, &home)
        } else {
            format!("{}/.ssh/{}", home.trim_end_matches('/'), a)
        };
        for path in glob(&pattern) {
            if depth + 1 > MAX_INCLUDE_DEPTH {
                return Err(err(file, n, "Too many recursive configuration includes"));
            }
            files.push(read_included(&path, file, n, depth + 1)?);
        }
    }
    Ok(files)
}

fn read_included(
    path: &Path,
    parent: &Path,
    n: usize,
    depth: usize,
) -> Result<Vec<Stmt>, ConfigError> {
    use std::os::unix::fs::MetadataExt;
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(err(
                parent,
                n,
                format!("Can't open user config file {}: {e}", path.display()),
            ))
        }
    };
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    // OpenSSH refuses included files owned by someone else or writable by others.
    // Group-writable files are accepted, as Debian's OpenSSH does for the usual
    // one-user groups (upstream refuses them too).
    if (meta.uid() != 0 && meta.uid() != uid) || meta.mode() & 0o002 != 0 {
        return Err(err(
            parent,
            n,
            format!("Bad owner or permissions on {}", path.display()),
        ));
    }
    if meta.is_dir() {
        return Ok(Vec::new());
    }
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(err(
                parent,
                n,
                format!("Can't open user config file {}: {e}", path.display()),
            ))
        }
    };
    parse_text(&String::from_utf8_lossy(&bytes), path, depth)
}

/// OpenSSH `a2port`: 1..=65535 (decimal, as strtonum reads it) or a tcp service name.
fn a2port(s: &str) -> Option<u16> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let digits = t.strip_prefix('+').unwrap_or(t);
    let num = if let Some(d) = t.strip_prefix('-') {
        // "-0" is 0, anything else negative is out of range.
        if !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()) {
            Some(0)
        } else {
            None
        }
    } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        Some(digits.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        None
    };
    match num {
        Some(p) if (1..=65535).contains(&p) => u16::try_from(p).ok(),
        Some(_) => None,
        None => service_port(s),
    }
}

fn service_port(name: &str) -> Option<u16> {
    let name = CString::new(name).ok()?;
    let proto = CString::new("tcp").ok()?;
    // SAFETY: both strings are valid NUL-terminated C strings; the returned entry is
    // read immediately (getservbyname's static buffer) and not kept.
    unsafe {
        let se = libc::getservbyname(name.as_ptr(), proto.as_ptr());
        if se.is_null() {
            return None;
        }
        let port = u16::from_be((*se).s_port as u16);
        (port > 0).then_some(port)
    }
}

/// OpenSSH `convtime`: `90`, `1m30s`, `2h`, … (suffixes s m h d w, any case).
fn convtime(s: &str) -> Option<u64> {
    const MAX: u64 = i32::MAX as u64;
    if s.is_empty() {
        return None;
    }
    let b = s.as_bytes();
    let mut i = 0;
    let mut total: u64 = 0;
    while i < b.len() {
        // strtol: optional whitespace and sign, then digits.
        while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
            i += 1;
        }
        let mut neg = false;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            neg = b[i] == b'-';
            i += 1;
        }
        let start = i;
        let mut secs: u64 = 0;
        while i < b.len() && b[i].is_ascii_digit() {
            secs = secs
                .saturating_mul(10)
                .saturating_add(u64::from(b[i] - b'0'));
            i += 1;
        }
        if i == start {
            return None;
        }
        if neg && secs != 0 {
            return None;
        }
        let mult = match b.get(i) {
            None => 1,
            Some(c) => {
                i += 1;
                match c {
                    b's' | b'S' => 1,
                    b'm' | b'M' => 60,
                    b'h' | b'H' => 3600,
                    b'd' | b'D' => 86400,
                    b'w' | b'W' => 604800,
                    _ => return None,
                }
            }
        };
        if secs > MAX / mult {
            return None;
        }
        let secs = secs * mult;
        if total > MAX - secs {
            return None;
        }
        total += secs;
    }
    Some(total)
}

/// Validate a ProxyJump value as OpenSSH 9.2 does and return the form `ssh -G`
/// prints (None for `none`). None overall when invalid. Observed behaviour: only the
/// exact word `none` means none; otherwise the value ends at `#` and at the first
/// blank; every comma-separated hop must parse; the last hop is re-assembled.
fn parse_jump(raw: &str) -> Option<Option<String>> {
    if raw.eq_ignore_ascii_case("none") {
        return Some(None);
    }
    let mut cleaned = match raw.find('#') {
        Some(i) => &raw[..i],
        None => raw,
    };
    cleaned = cleaned.trim_end_matches([' ', '\t', '\r', '\n']);
    if let Some(i) = cleaned.find([' ', '\t']) {
        cleaned = &cleaned[..i];
    }
    let mut hops = cleaned.rsplit(',');
    let (user, host, port) = parse_hop(hops.next()?)?;
    for hop in hops {
        parse_hop(hop)?;
    }
    let mut out = String::new();
    if let Some(idx) = cleaned.rfind(',') {
        if idx > 0 {
            out.push_str(&cleaned[..idx]);
            out.push(',');
        }
    }
    if let Some(u) = user {
        out.push_str(&u);
        out.push('@');
    }
    if host.contains(':') {
        out.push_str(&format!("[{host}]"));
    } else {
        out.push_str(&host);
    }
    if let Some(p) = port {
        out.push_str(&format!(":{p}"));
    }
    Some(Some(out))
}

type Hop = (Option<String>, String, Option<u16>);

/// One hop: `ssh://[user@]host[:port]` or `[user@]host[:port]` (`[v6]` allowed).
fn parse_hop(hop: &str) -> Option<Hop> {
    if let Some(uri) = hop.strip_prefix("ssh://") {
        let uri = uri.strip_suffix('/').unwrap_or(uri);
        if uri.contains('/') {
            return None;
        }
        let (user, hp) = match uri.rfind('@') {
            Some(i) => (Some(uri[..i].to_string()), &uri[i + 1..]),
            None => (None, uri),
        };
        if user
            .as_deref()
            .is_some_and(|u| u.is_empty() || u.contains(';'))
        {
            return None;
        }
        let (host, port) = hpdelim(hp)?;
        if host.is_empty() {
            return None;
        }
        return Some((user, host, port));
    }
    let (user, hp) = match hop.rfind('@') {
        Some(i) => (Some(hop[..i].to_string()), &hop[i + 1..]),
        None => (None, hop),
    };
    if user.as_deref().is_some_and(str::is_empty) {
        return None;
    }
    let (host, port) = hpdelim(hp)?;
    if host.is_empty() {
        return None;
    }
    Some((user, host, port))
}

/// host[:port] or [host]:port; a port must be valid if present.
fn hpdelim(s: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(r) = s.strip_prefix('[') {
        let close = r.find(']')?;
        let after = &r[close + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return None,
        };
        (r[..close].to_string(), port)
    } else {
        match s.find(':') {
            Some(i) => (s[..i].to_string(), Some(&s[i + 1..])),
            None => (s.to_string(), None),
        }
    };
    let port = match port {
        Some("") | None => None,
        Some(p) => Some(a2port(p)?),
    };
    Some((host, port))
}

// ---------------------------------------------------------------------------
// Include globbing

fn has_magic(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// `glob(3)` for `*`, `?` and `[...]`: existing paths, sorted bytewise.
fn glob(pattern: &str) -> Vec<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let mut cands: Vec<PathBuf> = vec![if pattern.starts_with('/') {
        PathBuf::from("/")
    } else {
        PathBuf::from(".")
    }];
    let comps: Vec<&str> = pattern.split('/').filter(|c| !c.is_empty()).collect();
    for comp in comps {
        let mut next = Vec::new();
        for base in &cands {
            if has_magic(comp) {
                let Ok(rd) = std::fs::read_dir(base) else {
                    continue;
                };
                for ent in rd.flatten() {
                    let name = ent.file_name();
                    let Some(name) = name.to_str() else {
                        continue;
                    };
                    if name.starts_with('.') && !comp.starts_with('.') {
                        continue;
                    }
                    if fnmatch(comp.as_bytes(), name.as_bytes()) {
                        next.push(base.join(name));
                    }
                }
            } else {
                next.push(base.join(comp));
            }
        }
        cands = next;
    }
    let mut out: Vec<PathBuf> = cands
        .into_iter()
        .filter(|p| std::fs::symlink_metadata(p).is_ok())
        .collect();
    out.sort_by(|a, b| a.as_os_str().as_bytes().cmp(b.as_os_str().as_bytes()));
    out
}

/// Shell-style match of one path component: `*`, `?`, `[set]`, `[!set]`, `[a-z]`.
fn fnmatch(p: &[u8], s: &[u8]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some(b'*') => (0..=s.len()).any(|i| fnmatch(&p[1..], &s[i..])),
        Some(b'?') => !s.is_empty() && fnmatch(&p[1..], &s[1..]),
        Some(b'[') => {
            let Some(&c) = s.first() else {
                return false;
            };
            let mut i = 1;
            let neg = matches!(p.get(i), Some(b'!') | Some(b'^'));
            if neg {
                i += 1;
            }
            let mut matched = false;
            let mut first = true;
            loop {
                let Some(&pc) = p.get(i) else {
                    // No closing bracket: '[' is literal.
                    return c == b'[' && fnmatch(&p[1..], &s[1..]);
                };
                if pc == b']' && !first {
                    break;
                }
                first = false;
                if p.get(i + 1) == Some(&b'-') && p.get(i + 2).is_some_and(|&e| e != b']') {
                    let hi = p.get(i + 2).copied().unwrap_or(pc);
                    if pc <= c && c <= hi {
                        matched = true;
                    }
                    i += 3;
                } else {
                    if pc == c {
                        matched = true;
                    }
                    i += 1;
                }
            }
            matched != neg && fnmatch(&p[i + 1..], &s[1..])
        }
        Some(&pc) => s.first() == Some(&pc) && fnmatch(&p[1..], &s[1..]),
    }
}

// ---------------------------------------------------------------------------
// Matching

/// OpenSSH `match_pattern`: `*` and `?`, case-sensitive. Greedy with one backtrack
/// point, so time stays linear-ish whatever the pattern.
fn match_pattern(s: &[u8], p: &[u8]) -> bool {
    let (mut si, mut pi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, si));
                pi += 1;
            }
            Some(&c) if c == b'?' || c == s[si] => {
                si += 1;
                pi += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    p[pi.min(p.len())..].iter().all(|&c| c == b'*')
}

/// OpenSSH `match_pattern_list`: 1 positive match, 0 none, -1 a negated match.
fn match_pattern_list(s: &str, list: &str, dolower: bool) -> i32 {
    let mut got_positive = 0;
    for sub in list.split(',') {
        let (neg, sub) = match sub.strip_prefix('!') {
            Some(r) => (true, r),
            None => (false, sub),
        };
        let sub = if dolower {
            sub.to_ascii_lowercase()
        } else {
            sub.to_string()
        };
        if match_pattern(s.as_bytes(), sub.as_bytes()) {
            if neg {
                return -1;
            }
            got_positive = 1;
        }
    }
    got_positive
}

fn match_hostname(host: &str, list: &str) -> bool {
    match_pattern_list(&host.to_ascii_lowercase(), list, true) == 1
}

// ---------------------------------------------------------------------------
// Evaluation

#[derive(Debug, Default)]
struct State {
    hostname: Option<String>,
    user: Option<String>,
    port: Option<u16>,
    identity_files: Vec<String>,
    identities_only: Option<bool>,
    strict_host_key_checking: Option<&'static str>,
    known_hosts: Option<Vec<String>>,
    connect_timeout: Option<u64>,
    server_alive_interval: Option<u64>,
    /// Some(None) = `ProxyJump none`.
    jump: Option<Option<String>>,
    proxy_command: bool,
    kex_algorithms: Option<String>,
    host_key_algorithms: Option<String>,
}

fn eval(stmts: &[Stmt], alias: &str, env: &Env, st: &mut State, active: &mut bool, never: bool) {
    for s in stmts {
        match s {
            Stmt::Host(pats) => {
                *active = false;
                if never {
                    continue;
                }
                for p in pats {
                    let (neg, p) = match p.strip_prefix('!') {
                        Some(r) => (true, r),
                        None => (false, p.as_str()),
                    };
                    if match_pattern(alias.as_bytes(), p.as_bytes()) {
                        if neg {
                            *active = false;
                            break;
                        }
                        *active = true;
                    }
                }
            }
            Stmt::Match(crits) => {
                let v = eval_match(crits, alias, env, st);
                *active = !never && v;
            }
            Stmt::Set(setting) => {
                if *active {
                    apply(setting, st);
                }
            }
            Stmt::Include(files) => {
                let outer = *active;
                for f in files {
                    eval(f, alias, env, st, active, never || !outer);
                    *active = outer;
                }
            }
        }
    }
}

fn eval_match(crits: &[Crit], alias: &str, env: &Env, st: &State) -> bool {
    let host = match &st.hostname {
        Some(h) => expand_hostname(h, alias),
        None => alias.to_string(),
    };
    let ruser = st.user.as_deref().unwrap_or(&env.local_user);
    let mut result = true;
    for c in crits {
        let r = match &c.kind {
            CritKind::All => {
                return result && !c.negate;
            }
            CritKind::Host(l) => match_hostname(&host, l),
            CritKind::OriginalHost(l) => match_hostname(alias, l),
            CritKind::User(l) => match_pattern_list(ruser, l, false) == 1,
            CritKind::LocalUser(l) => match_pattern_list(&env.local_user, l, false) == 1,
            CritKind::PostCanon => false,
            CritKind::Unsupported => return false,
        };
        if r == c.negate {
            result = false;
        }
    }
    result
}

fn apply(s: &Setting, st: &mut State) {
    match s {
        Setting::HostName(h) => {
            st.hostname.get_or_insert_with(|| h.clone());
        }
        Setting::User(u) => {
            st.user.get_or_insert_with(|| u.clone());
        }
        Setting::Port(p) => {
            st.port.get_or_insert(*p);
        }
        Setting::IdentityFile(f) => {
            if !st.identity_files.iter().any(|x| x == f)
                && st.identity_files.len() < MAX_IDENTITY_FILES
            {
                st.identity_files.push(f.clone());
            }
        }
        Setting::IdentitiesOnly(b) => {
            st.identities_only.get_or_insert(*b);
        }
        Setting::StrictHostKeyChecking(w) => {
            st.strict_host_key_checking.get_or_insert(w);
        }
        Setting::UserKnownHostsFile(v) => {
            st.known_hosts.get_or_insert_with(|| v.clone());
        }
        Setting::ConnectTimeout(t) => {
            if st.connect_timeout.is_none() {
                st.connect_timeout = *t;
            }
        }
        Setting::ServerAliveInterval(t) => {
            if st.server_alive_interval.is_none() {
                st.server_alive_interval = *t;
            }
        }
        Setting::ProxyJump(j) => {
            if st.jump.is_none() && !st.proxy_command {
                st.jump = Some(j.clone());
            }
        }
        Setting::ProxyCommand => {
            if st.jump.is_none() {
                st.proxy_command = true;
            }
        }
        Setting::KexAlgorithms(v) => {
            st.kex_algorithms.get_or_insert_with(|| v.clone());
        }
        Setting::HostKeyAlgorithms(v) => {
            st.host_key_algorithms.get_or_insert_with(|| v.clone());
        }
    }
}

// ---------------------------------------------------------------------------
// Expansion and the local environment

struct Env {
    home: String,
    local_user: String,
}

impl Env {
    fn current() -> Env {
        Env {
            home: home_dir(),
            local_user: local_user(),
        }
    }
}

/// `$HOME`, else the passwd entry's directory, else `/`.
fn home_dir() -> String {
    match std::env::var("HOME") {
        Ok(h) if !h.is_empty() => h,
        _ => passwd_self()
            .map(|(_, dir)| dir)
            .unwrap_or_else(|| "/".to_string()),
    }
}

/// `$USER`, else the passwd entry's name, else the numeric uid.
fn local_user() -> String {
    match std::env::var("USER") {
        Ok(u) if !u.is_empty() => u,
        _ => passwd_self().map(|(name, _)| name).unwrap_or_else(|| {
            // SAFETY: getuid has no preconditions.
            unsafe { libc::getuid() }.to_string()
        }),
    }
}

/// (name, home directory) of the current uid from the passwd database.
fn passwd_self() -> Option<(String, String)> {
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: a zeroed passwd is a valid out-parameter; buf outlives the call and
        // the strings read from pwd point into buf.
        unsafe {
            let mut pwd: libc::passwd = std::mem::zeroed();
            let mut result: *mut libc::passwd = std::ptr::null_mut();
            let rc = libc::getpwuid_r(
                uid,
                &mut pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            );
            if rc == libc::ERANGE && buf.len() < 1 << 20 {
                buf.resize(buf.len() * 2, 0);
                continue;
            }
            if rc != 0 || result.is_null() || pwd.pw_name.is_null() || pwd.pw_dir.is_null() {
                return None;
            }
            let name = CStr::from_ptr(pwd.pw_name).to_string_lossy().into_owned();
            let dir = CStr::from_ptr(pwd.pw_dir).to_string_lossy().into_owned();
            return Some((name, dir));
        }
    }
}

fn local_hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: buf is writable for its whole length.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// `~` → `home/`, `~/x` → `home/x`, as OpenSSH's `tilde_expand_filename`.
/// (`~user` is left as written.)
fn tilde_expand(p: &str, home: &str) -> String {
    let rest = match p.strip_prefix("~/") {
        Some(rest) => rest,
        None if p == "~" => "",
        None => return p.to_string(),
    };
    format!("{}/{}", home.trim_end_matches('/'), rest)
}

/// `%h` (= alias) and `%%` in HostName.
fn expand_hostname(h: &str, alias: &str) -> String {
    percent_expand(h, |c| (c == 'h').then(|| alias.to_string()))
}

/// `%X` → `lookup(X)`, `%%` → `%`; unknown tokens are left as written.
fn percent_expand(s: &str, lookup: impl Fn(char) -> Option<String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match it.peek().copied() {
            Some('%') => {
                it.next();
                out.push('%');
            }
            Some(t) => match lookup(t) {
                Some(v) => {
                    it.next();
                    out.push_str(&v);
                }
                None => out.push('%'),
            },
            None => out.push('%'),
        }
    }
    out
}

/// `${VAR}` → its value when set; otherwise left as written.
fn dollar_expand(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match after.find('}') {
            Some(j) => match std::env::var(&after[..j]) {
                Ok(v) if !after[..j].is_empty() => {
                    out.push_str(&v);
                    rest = &after[j + 1..];
                }
                _ => {
                    out.push_str("${");
                    rest = after;
                }
            },
            None => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The values the `%` tokens of IdentityFile / UserKnownHostsFile stand for.
struct ExpandCtx<'a> {
    env: &'a Env,
    hostname: &'a str,
    port: u16,
    ruser: &'a str,
    alias: &'a str,
}

impl ExpandCtx<'_> {
    fn expand_path(&self, p: &str) -> String {
        let t = tilde_expand(p, &self.env.home);
        let t = percent_expand(&t, |c| match c {
            'h' => Some(self.hostname.to_string()),
            'p' => Some(self.port.to_string()),
            'r' => Some(self.ruser.to_string()),
            'u' => Some(self.env.local_user.clone()),
            'n' => Some(self.alias.to_string()),
            'd' => Some(self.env.home.clone()),
            // SAFETY: getuid has no preconditions.
            'i' => Some(unsafe { libc::getuid() }.to_string()),
            'l' => Some(local_hostname()),
            'L' => {
                let h = local_hostname();
                Some(h.split('.').next().unwrap_or_default().to_string())
            }
            _ => None,
        });
        dollar_expand(&t)
    }
}

/// OpenSSH `is_addr`: addresses are not lowercased.
fn is_addr(name: &str) -> bool {
    if name.contains(['%', ':']) || name.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return true;
    }
    let Ok(c) = CString::new(name) else {
        return false;
    };
    let Ok(port) = CString::new("22") else {
        return false;
    };
    // SAFETY: hints is a valid zeroed addrinfo; res is freed when set.
    unsafe {
        let mut hints: libc::addrinfo = std::mem::zeroed();
        hints.ai_family = libc::AF_UNSPEC;
        hints.ai_socktype = libc::SOCK_STREAM;
        hints.ai_flags = libc::AI_NUMERICHOST | libc::AI_NUMERICSERV;
        let mut res: *mut libc::addrinfo = std::ptr::null_mut();
        if libc::getaddrinfo(c.as_ptr(), port.as_ptr(), &hints, &mut res) != 0 {
            return false;
        }
        if res.is_null() {
            return false;
        }
        let single = (*res).ai_next.is_null();
        libc::freeaddrinfo(res);
        single
    }
}

// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> SshConfig {
        match parse_str(text, Path::new("/test/config")) {
            Ok(c) => c,
            Err(e) => panic!("parse failed: {e}"),
        }
    }

    fn perr(text: &str) -> String {
        match parse_str(text, Path::new("/test/config")) {
            Ok(_) => panic!("expected an error for {text:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn empty_config_gives_defaults() {
        let r = SshConfig::default().resolve("Web");
        assert_eq!(r.hostname, "web");
        assert_eq!(r.port, 22);
        assert_eq!(r.user, local_user());
        assert_eq!(r.identity_files.len(), 7);
        assert!(r.identity_files[0].ends_with("/.ssh/id_rsa"));
        assert_eq!(r.strict_host_key_checking, "ask");
        assert_eq!(r.connect_timeout, None);
        assert_eq!(r.server_alive_interval, 0);
        assert_eq!(r.proxy_jump, None);
        assert!(!r.identities_only);
        assert_eq!(r.user_known_hosts_files.len(), 2);
    }

    #[test]
    fn first_value_wins_and_identities_accumulate() {
        let c = cfg("Host web\n  User a\n  IdentityFile /k1\nHost *\n  User b\n  Port 2200\n  IdentityFile /k2\n  IdentityFile /k1\n");
        let r = c.resolve("web");
        assert_eq!(r.user, "a");
        assert_eq!(r.port, 2200);
        assert_eq!(r.identity_files, vec!["/k1", "/k2"]);
        assert_eq!(c.resolve("db").user, "b");
    }

    #[test]
    fn keyword_forms_and_quotes() {
        let c = cfg("HOST=web\n\tuser = \"bob smith\"\n  Port=2222 # comment\n# whole line\n\n  HostName \"h.example\"\n");
        let r = c.resolve("web");
        assert_eq!(r.user, "bob smith");
        assert_eq!(r.port, 2222);
        assert_eq!(r.hostname, "h.example");
    }

    #[test]
    fn host_patterns_and_negation() {
        let c = cfg("Host *.prod !db?.prod\n  User p\nHost w?b\n  User q\n");
        assert_eq!(c.resolve("web.prod").user, "p");
        assert_ne!(c.resolve("db1.prod").user, "p");
        assert_eq!(c.resolve("db10.prod").user, "p");
        assert_eq!(c.resolve("wxb").user, "q");
        // Host is case-sensitive against the alias as typed.
        assert_ne!(c.resolve("WXB").user, "q");
    }

    #[test]
    fn match_host_uses_hostname_so_far() {
        let c = cfg("Host web\n  HostName %h.example.com\nMatch host *.example.com\n  User ex\nMatch host web\n  Port 99\nMatch all\n  Port 100\n");
        let r = c.resolve("web");
        assert_eq!(r.hostname, "web.example.com");
        assert_eq!(r.user, "ex");
        assert_eq!(r.port, 100);
        let r = c.resolve("db");
        assert_eq!(r.port, 100);
        assert_ne!(r.user, "ex");
    }

    #[test]
    fn match_negation_and_unsupported() {
        let c = cfg("Match !host web\n  User notweb\nMatch exec true\n  Port 5\nMatch originalhost WEB\n  Port 6\n");
        assert_eq!(c.resolve("db").user, "notweb");
        assert_ne!(c.resolve("web").user, "notweb");
        assert_eq!(c.resolve("web").port, 6);
        assert_eq!(c.resolve("db").port, 22);
    }

    #[test]
    fn overrides_and_fallbacks() {
        let c = cfg("Host web\n  User fileuser\n  IdentityFile /f\n");
        let o = Overrides {
            user: Some("o".into()),
            port: Some(7),
            identity: Some("/o".into()),
        };
        let f = Fallbacks {
            user: Some("fb".into()),
            port: Some(8),
            identity: Some("/fb".into()),
        };
        let r = c.resolve_with("web", &o, &f);
        assert_eq!((r.user.as_str(), r.port), ("o", 7));
        assert_eq!(r.identity_files, vec!["/o", "/f"]);
        let r = c.resolve_with("web", &Overrides::default(), &f);
        assert_eq!((r.user.as_str(), r.port), ("fileuser", 8));
        assert_eq!(r.identity_files, vec!["/f"]);
        let r = c.resolve_with("db", &Overrides::default(), &f);
        assert_eq!(r.user, "fb");
        assert_eq!(r.identity_files, vec!["/fb"]);
    }

    #[test]
    fn tokens_expand() {
        let c = cfg("Host web\n  HostName real.%h\n  User u1\n  Port 2022\n  IdentityFile /k/%h-%p-%r-%n-%%-%Z\n  UserKnownHostsFile /kh/%h /kh2\n");
        let r = c.resolve("web");
        assert_eq!(r.identity_files, vec!["/k/real.web-2022-u1-web-%-%Z"]);
        assert_eq!(r.user_known_hosts_files, vec!["/kh/real.web", "/kh2"]);
        assert!(r
            .ssh_g_lines()
            .contains(&"userknownhostsfile /kh/real.web /kh2".to_string()));
    }

    #[test]
    fn values_in_ssh_g_words() {
        let c = cfg("Host a\n StrictHostKeyChecking no\n ConnectTimeout 1m\n ServerAliveInterval 1h1s\n IdentitiesOnly yes\n ProxyJump u@j1:2200,ssh://v@j2:23\n IdentityFile none\nHost b\n StrictHostKeyChecking YES\n ProxyJump none\n ConnectTimeout none\nHost b\n ConnectTimeout 3\n");
        let g = c.resolve("a").ssh_g_lines();
        for want in [
            "stricthostkeychecking false",
            "connecttimeout 60",
            "serveraliveinterval 3601",
            "identitiesonly yes",
            "proxyjump u@j1:2200,v@j2:23",
            "identityfile none",
        ] {
            assert!(g.contains(&want.to_string()), "{want} not in {g:?}");
        }
        let r = c.resolve("b");
        assert_eq!(r.strict_host_key_checking, "true");
        assert_eq!(r.proxy_jump, None);
        assert_eq!(r.connect_timeout, Some(3));
    }

    #[test]
    fn errors_name_file_and_line() {
        assert_eq!(
            perr("Host x\n  Port abc\n"),
            "/test/config:2: Bad port 'abc'."
        );
        assert!(perr("User\n").starts_with("/test/config:1:"));
        assert!(perr("User a b\n").contains("extra arguments"));
        assert!(perr("StrictHostKeyChecking maybe\n").contains("unsupported option"));
        assert!(perr("ConnectTimeout 5x\n").contains("invalid time value"));
        assert!(perr("Match\n").contains("no argument after keyword"));
        assert!(perr("Match all host x\n").contains("cannot be combined"));
        assert!(perr("Match host\n").contains("Missing Match criteria"));
        assert!(perr("Match foo bar\n").contains("Unsupported Match attribute"));
        assert!(perr("ProxyJump a:b\n").contains("Invalid ProxyJump"));
        assert!(perr("Port\n").contains("no argument after keyword \"port\""));
        assert!(perr("UserKnownHostsFile none /x\n").contains("must appear alone"));
        assert!(perr("User \"abc\n").contains("quotes"));
    }

    #[test]
    fn unknown_keywords_are_ignored() {
        let c = cfg("Host x\n  FrobnicateLevel 11\n  ForwardAgent yes\n  User u\n");
        assert_eq!(c.resolve("x").user, "u");
    }

    #[test]
    fn include_relative_glob_conditional_and_depth() {
        let dir = std::env::temp_dir().join(format!("nexus-sshcfg-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("d")).expect("mkdir");
        let w = |name: &str, text: &str| std::fs::write(dir.join(name), text).expect("write");
        w("d/b.conf", "Host *\n  Port 2002\n");
        w("d/a.conf", "User from-a\nHost other\n  User nope\n");
        w(
            "loop.conf",
            &format!("Include {}/loop.conf\n", dir.display()),
        );
        let text = format!(
            "Host web\n  Include {d}/d/*.conf\nHost *\n  User outer\n",
            d = dir.display()
        );
        let c = cfg(&text);
        let r = c.resolve("web");
        assert_eq!((r.user.as_str(), r.port), ("from-a", 2002));
        let r = c.resolve("db");
        assert_eq!((r.user.as_str(), r.port), ("outer", 22));
        let e = perr(&format!("Include {}/loop.conf\n", dir.display()));
        assert!(e.contains("Too many recursive"), "{e}");
        {
            use std::os::unix::fs::PermissionsExt;
            w("open.conf", "User x\n");
            let perm = std::fs::Permissions::from_mode(0o666);
            std::fs::set_permissions(dir.join("open.conf"), perm).expect("chmod");
            let e = perr(&format!("\nInclude {}/open.conf\n", dir.display()));
            assert!(e.contains(":2: Bad owner or permissions"), "{e}");
        }
        // An include that matches nothing is not an error.
        let c = cfg(&format!("Include {}/nothing-*.conf\n", dir.display()));
        assert_eq!(c.resolve("x").port, 22);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn helpers() {
        assert_eq!(convtime("1w1d1h1m1s"), Some(694861));
        assert_eq!(convtime("-1"), None);
        assert_eq!(convtime(""), None);
        assert_eq!(a2port("65535"), Some(65535));
        assert_eq!(a2port("65536"), None);
        assert_eq!(a2port("0"), None);
        assert!(fnmatch(b"*.conf", b"a.conf"));
        assert!(fnmatch(b"[a-c]?", b"bx"));
        assert!(!fnmatch(b"[!a-c]?", b"bx"));
        assert!(is_addr("10.0.0.1") && is_addr("fe80::1") && !is_addr("Web"));
        assert!(match_pattern(b"web01.prod", b"web*.p?od"));
        assert!(match_pattern(b"abc", b"*") && match_pattern(b"", b"*"));
        assert!(!match_pattern(b"abc", b"ab") && !match_pattern(b"ab", b"abc"));
        assert!(match_pattern(b"aXbXc", b"*b*c") && !match_pattern(b"aXbXd", b"*b*c"));
        let long = vec![b'a'; 5000];
        assert!(!match_pattern(&long, b"*a*a*a*a*a*a*a*a*a*a*a*a*b"));
        assert_eq!(
            argv_split("a \"b c\" 'd' e\\ f #x"),
            Some(vec!["a".into(), "b c".into(), "d".into(), "e f".into()])
        );
    }
}
