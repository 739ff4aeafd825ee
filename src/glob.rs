//! Path globs: `*`, `?`, `[...]`, `{a,b}`, `**` and `\` escapes, matched by a small
//! backtracking matcher with a memo (time proportional to pattern length times path
//! length, whatever the pattern), not by regular expressions.
//!
//! The syntax and meaning are those of globset (ripgrep's glob crate, which nexus used
//! before, and which brought a regex engine of about 0.6 MiB into the binary for this):
//!
//! - `?` is one character, `*` any run of characters; with `literal_separator` neither
//!   matches `/`, nor does a `[...]` class.
//! - `[ab]`, `[a-z]`, `[!a]` / `[^a]`, POSIX classes such as `[[:digit:]]`; `]` first in
//!   a class and `-` first or last are literal.
//! - `{a,b}` is `a` or `b`, each a glob; groups nest.
//! - `**` as a whole path component: `**/x` matches `x` at any depth, `x/**` everything
//!   below `x` (not `x` itself), `a/**/b` zero or more directories between; `**` alone
//!   matches everything. Anywhere else `**` is `*`.
//! - `\` makes the next character literal.

use std::fmt;

/// Alternatives a pattern may expand to (`{a,b}{c,d}` is 4).
const MAX_ALTERNATIVES: usize = 1024;
/// How deeply `{` may nest.
const MAX_NESTING: usize = 32;
/// The longest pattern (a path is at most 4096 bytes): a match remembers one bit per
/// (token, path byte), so this bounds its memory as well as its time.
const MAX_LEN: usize = 4096;
/// Tokens of all alternatives together, once `{...}` groups are expanded.
const MAX_TOKENS: usize = 64 * 1024;

/// Why a pattern is not a glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GlobError {
    UnclosedClass,
    InvalidRange(char, char),
    UnopenedAlternates,
    UnclosedAlternates,
    DanglingEscape,
    TooManyAlternatives,
    TooDeep,
    TooLong,
    TooBig,
}

impl fmt::Display for GlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GlobError::UnclosedClass => write!(f, "unclosed character class; missing ']'"),
            GlobError::InvalidRange(a, b) => write!(f, "invalid range; '{a}' > '{b}'"),
            GlobError::UnopenedAlternates => write!(
                f,
                "unopened alternate group; missing '{{' (maybe escape '}}' with '[}}]'?)"
            ),
            GlobError::UnclosedAlternates => write!(
                f,
                "unclosed alternate group; missing '}}' (maybe escape '{{' with '[{{]'?)"
            ),
            GlobError::DanglingEscape => write!(f, "dangling '\\'"),
            GlobError::TooManyAlternatives => write!(
                f,
                "more than {MAX_ALTERNATIVES} alternatives once its `{{...}}` groups are expanded"
            ),
            GlobError::TooDeep => write!(f, "`{{` nested more than {MAX_NESTING} deep"),
            GlobError::TooLong => write!(f, "longer than {MAX_LEN} bytes"),
            GlobError::TooBig => write!(
                f,
                "more than {MAX_TOKENS} pieces once its `{{...}}` groups are expanded"
            ),
        }
    }
}

/// One step of a pattern, once its `{...}` groups are expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// These bytes.
    Lit(Vec<u8>),
    /// `?`: one character.
    Any,
    /// `*`: any run of characters.
    Star,
    /// `[...]`.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// `**/` at the start: nothing, `/`, or anything ending in `/`.
    RecPrefix,
    /// `/**` at the end: `/` and anything after it.
    RecSuffix,
    /// `/**/`: `/`, or `/` anything `/`.
    RecZero,
}

/// What the parser builds: tokens and groups of alternatives.
#[derive(Debug, Clone)]
enum Node {
    Byte(u8),
    Tok(Tok),
    Alt(Vec<Vec<Node>>),
}

/// A compiled glob.
#[derive(Debug, Clone)]
pub struct Glob {
    /// Each alternative a sequence of tokens; the glob matches if one does.
    alts: Vec<Vec<Tok>>,
    literal_separator: bool,
    /// The pattern is `**` (or `**/`): every path.
    everything: bool,
}

impl Glob {
    /// `pattern` as a glob; with `literal_separator`, `*`, `?` and `[...]` never match `/`.
    pub fn new(pattern: &str, literal_separator: bool) -> Result<Glob, GlobError> {
        if pattern.len() > MAX_LEN {
            return Err(GlobError::TooLong);
        }
        let tree = Parser::new(pattern).parse()?;
        let everything = matches!(tree.as_slice(), [Node::Tok(Tok::RecPrefix)]);
        let mut alts = Vec::new();
        for seq in expand(&tree)? {
            alts.push(coalesce(seq));
        }
        Ok(Glob {
            alts,
            literal_separator,
            everything,
        })
    }

    /// Whether `path` (with `/` between components) matches.
    pub fn is_match(&self, path: impl AsRef<std::path::Path>) -> bool {
        use std::os::unix::ffi::OsStrExt;
        let s = path.as_ref().as_os_str().as_bytes();
        self.everything
            || self
                .alts
                .iter()
                .any(|toks| Matcher::new(toks, s, self.literal_separator).run())
    }
}

/// Several globs; a path matches if any does.
#[derive(Debug, Clone, Default)]
pub struct GlobSet(Vec<Glob>);

impl GlobSet {
    pub fn add(&mut self, g: Glob) {
        self.0.push(g);
    }

    pub fn is_match(&self, path: impl AsRef<std::path::Path>) -> bool {
        let path = path.as_ref();
        self.0.iter().any(|g| g.is_match(path))
    }
}

struct Parser<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    prev: Option<char>,
    /// Open groups, each a list of branches; the bottom one is the whole pattern.
    groups: Vec<Vec<Vec<Node>>>,
}

impl<'a> Parser<'a> {
    fn new(pattern: &'a str) -> Parser<'a> {
        Parser {
            chars: pattern.chars().peekable(),
            prev: None,
            groups: vec![vec![Vec::new()]],
        }
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next();
        if c.is_some() {
            self.prev = c;
        }
        c
    }

    fn branch(&mut self) -> &mut Vec<Node> {
        // The bottom group always exists and every group has a branch.
        self.groups
            .last_mut()
            .and_then(|g| g.last_mut())
            .expect("an open branch")
    }

    fn push(&mut self, n: Node) {
        self.branch().push(n);
    }

    fn literal(&mut self, c: char) {
        let mut buf = [0u8; 4];
        for b in c.encode_utf8(&mut buf).bytes() {
            self.push(Node::Byte(b));
        }
    }

    fn parse(mut self) -> Result<Vec<Node>, GlobError> {
        loop {
            let prev = self.prev;
            let Some(c) = self.bump() else { break };
            match c {
                '?' => self.push(Node::Tok(Tok::Any)),
                '*' => self.star(prev),
                '[' => self.class()?,
                '{' => {
                    if self.groups.len() > MAX_NESTING {
                        return Err(GlobError::TooDeep);
                    }
                    self.groups.push(vec![Vec::new()]);
                }
                '}' => {
                    if self.groups.len() < 2 {
                        return Err(GlobError::UnopenedAlternates);
                    }
                    let branches = self.groups.pop().unwrap_or_default();
                    self.push(Node::Alt(branches));
                }
                ',' if self.groups.len() > 1 => {
                    if let Some(g) = self.groups.last_mut() {
                        g.push(Vec::new());
                    }
                }
                '\\' => match self.bump() {
                    Some(c) => self.literal(c),
                    None => return Err(GlobError::DanglingEscape),
                },
                c => self.literal(c),
            }
        }
        if self.groups.len() > 1 {
            return Err(GlobError::UnclosedAlternates);
        }
        Ok(self
            .groups
            .pop()
            .and_then(|mut g| g.pop())
            .unwrap_or_default())
    }

    /// After a `*`: one star, or `**` in one of its three recursive places (as globset).
    fn star(&mut self, prev: Option<char>) {
        if self.chars.peek() != Some(&'*') {
            self.push(Node::Tok(Tok::Star));
            return;
        }
        self.bump();
        let in_group = self.groups.len() > 1;
        if self.branch().is_empty() {
            match self.chars.peek() {
                None | Some('/') => {
                    self.chars.next();
                    self.prev = Some('/');
                    self.push(Node::Tok(Tok::RecPrefix));
                }
                Some(_) => self.push(Node::Tok(Tok::Star)),
            }
            return;
        }
        if prev != Some('/') && !(in_group && matches!(prev, Some(',' | '{'))) {
            self.push(Node::Tok(Tok::Star));
            return;
        }
        let suffix = match self.chars.peek() {
            None => true,
            Some(',' | '}') if in_group => true,
            Some('/') => {
                self.bump();
                false
            }
            Some(_) => {
                self.push(Node::Tok(Tok::Star));
                return;
            }
        };
        let rec = match self.branch().pop() {
            Some(Node::Tok(Tok::RecPrefix)) => Tok::RecPrefix,
            Some(Node::Tok(Tok::RecSuffix)) => Tok::RecSuffix,
            _ if suffix => Tok::RecSuffix,
            _ => Tok::RecZero,
        };
        self.push(Node::Tok(rec));
    }

    fn class(&mut self) -> Result<(), GlobError> {
        let negated = matches!(self.chars.peek(), Some('!' | '^'));
        if negated {
            self.bump();
        }
        let mut ranges: Vec<(char, char)> = Vec::new();
        let mut first = true;
        let mut in_range = false;
        loop {
            let c = self.bump().ok_or(GlobError::UnclosedClass)?;
            match c {
                ']' if !first => break,
                '-' if !first && !in_range => in_range = true,
                '[' if !in_range && self.chars.peek() == Some(&':') => match self.posix_class() {
                    Some(r) => ranges.extend_from_slice(r),
                    None => ranges.push(('[', '[')),
                },
                c => {
                    if in_range {
                        let last = ranges.last_mut().ok_or(GlobError::UnclosedClass)?;
                        if c < last.0 {
                            return Err(GlobError::InvalidRange(last.0, c));
                        }
                        last.1 = c;
                        in_range = false;
                    } else {
                        ranges.push((c, c));
                    }
                }
            }
            first = false;
        }
        if in_range {
            ranges.push(('-', '-'));
        }
        self.push(Node::Tok(Tok::Class { negated, ranges }));
        Ok(())
    }

    /// `[:name:]` just after a `[` in a class; None (nothing consumed) if it is not one.
    fn posix_class(&mut self) -> Option<&'static [(char, char)]> {
        let saved = (self.chars.clone(), self.prev);
        self.bump(); // ':'
        let mut name = String::new();
        while let Some(&c) = self.chars.peek() {
            if !c.is_ascii_lowercase() || name.len() > 8 {
                break;
            }
            name.push(c);
            self.bump();
        }
        let closed = self.bump() == Some(':') && self.bump() == Some(']');
        let ranges = if closed { posix(&name) } else { None };
        if ranges.is_none() {
            (self.chars, self.prev) = saved;
        }
        ranges
    }
}

fn posix(name: &str) -> Option<&'static [(char, char)]> {
    Some(match name {
        "alnum" => &[('0', '9'), ('A', 'Z'), ('a', 'z')],
        "alpha" => &[('A', 'Z'), ('a', 'z')],
        "blank" => &[(' ', ' '), ('\t', '\t')],
        "cntrl" => &[('\0', '\x1f'), ('\x7f', '\x7f')],
        "digit" => &[('0', '9')],
        "graph" => &[('!', '~')],
        "lower" => &[('a', 'z')],
        "print" => &[(' ', '~')],
        "punct" => &[('!', '/'), (':', '@'), ('[', '`'), ('{', '~')],
        "space" => &[(' ', ' '), ('\t', '\r')],
        "upper" => &[('A', 'Z')],
        "xdigit" => &[('0', '9'), ('A', 'F'), ('a', 'f')],
        _ => return None,
    })
}

/// Every sequence the `{...}` groups of `nodes` stand for.
fn expand(nodes: &[Node]) -> Result<Vec<Vec<Node>>, GlobError> {
    let mut out: Vec<Vec<Node>> = vec![Vec::new()];
    for n in nodes {
        match n {
            Node::Alt(branches) => {
                // As globset: an empty alternative is dropped (`{a,}` is `a`), and a
                // group of nothing but empty ones matches the empty string.
                let mut tails = Vec::new();
                for b in branches.iter().filter(|b| !b.is_empty()) {
                    tails.extend(expand(b)?);
                    if tails.len() > MAX_ALTERNATIVES {
                        return Err(GlobError::TooManyAlternatives);
                    }
                }
                if tails.is_empty() {
                    continue;
                }
                if out.len() * tails.len() > MAX_ALTERNATIVES {
                    return Err(GlobError::TooManyAlternatives);
                }
                let tokens: usize = out.iter().map(Vec::len).sum::<usize>() * tails.len()
                    + tails.iter().map(Vec::len).sum::<usize>() * out.len();
                if tokens > MAX_TOKENS {
                    return Err(GlobError::TooBig);
                }
                out = out
                    .iter()
                    .flat_map(|head| {
                        tails.iter().map(move |t| {
                            let mut s = head.clone();
                            s.extend(t.iter().cloned());
                            s
                        })
                    })
                    .collect();
            }
            n => out.iter_mut().for_each(|s| s.push(n.clone())),
        }
    }
    Ok(out)
}

/// Runs of literal bytes as one token.
fn coalesce(seq: Vec<Node>) -> Vec<Tok> {
    let mut out: Vec<Tok> = Vec::new();
    for n in seq {
        match n {
            Node::Byte(b) => match out.last_mut() {
                Some(Tok::Lit(bytes)) => bytes.push(b),
                _ => out.push(Tok::Lit(vec![b])),
            },
            Node::Tok(t) => out.push(t),
            // expand() left no groups.
            Node::Alt(_) => {}
        }
    }
    out
}

/// One match of one token sequence against one path. `failed` remembers the states
/// (token, position) already known not to match, so no state is tried twice.
struct Matcher<'a> {
    toks: &'a [Tok],
    s: &'a [u8],
    sep: bool,
    failed: Vec<u64>,
}

impl<'a> Matcher<'a> {
    fn new(toks: &'a [Tok], s: &'a [u8], sep: bool) -> Matcher<'a> {
        let states = (toks.len() + 1) * (s.len() + 1);
        Matcher {
            toks,
            s,
            sep,
            failed: vec![0; states.div_ceil(64)],
        }
    }

    fn run(&mut self) -> bool {
        self.at(0, 0)
    }

    fn at(&mut self, i: usize, p: usize) -> bool {
        let Some(tok) = self.toks.get(i) else {
            return p == self.s.len();
        };
        let key = i * (self.s.len() + 1) + p;
        if self.failed[key / 64] & (1 << (key % 64)) != 0 {
            return false;
        }
        let s = self.s;
        let slash_at = |q: usize| s.get(q) == Some(&b'/');
        let ok = match tok {
            Tok::Lit(bytes) => s[p..].starts_with(bytes) && self.at(i + 1, p + bytes.len()),
            Tok::Any => match char_at(s, p) {
                Some((c, n)) if !(self.sep && c == '/') => self.at(i + 1, p + n),
                _ => false,
            },
            Tok::Class { negated, ranges } => match char_at(s, p) {
                Some((c, n)) if !(self.sep && c == '/') => {
                    let inside = ranges.iter().any(|&(a, b)| a <= c && c <= b);
                    inside != *negated && self.at(i + 1, p + n)
                }
                _ => false,
            },
            Tok::Star => {
                let mut q = p;
                loop {
                    if self.at(i + 1, q) {
                        break true;
                    }
                    if q == s.len() || (self.sep && s[q] == b'/') {
                        break false;
                    }
                    q += 1;
                }
            }
            Tok::RecPrefix => {
                self.at(i + 1, p)
                    || (slash_at(p) && self.at(i + 1, p + 1))
                    || (p..s.len()).any(|q| slash_at(q) && self.at(i + 1, q + 1))
            }
            Tok::RecSuffix => slash_at(p) && (p + 1..=s.len()).any(|q| self.at(i + 1, q)),
            Tok::RecZero => {
                slash_at(p)
                    && (self.at(i + 1, p + 1)
                        || (p + 1..s.len()).any(|q| slash_at(q) && self.at(i + 1, q + 1)))
            }
        };
        if !ok {
            self.failed[key / 64] |= 1 << (key % 64);
        }
        ok
    }
}

/// The character at `p` and its length in bytes; a byte that does not start valid
/// UTF-8 counts as one character of its own.
fn char_at(s: &[u8], p: usize) -> Option<(char, usize)> {
    let b = *s.get(p)?;
    let n = match b {
        0..=0x7f => return Some((b as char, 1)),
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => return Some((char::REPLACEMENT_CHARACTER, 1)),
    };
    match s.get(p..p + n).and_then(|c| std::str::from_utf8(c).ok()) {
        Some(c) => c.chars().next().map(|c| (c, n)),
        None => Some((char::REPLACEMENT_CHARACTER, 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, path: &str) -> bool {
        Glob::new(pattern, true).unwrap().is_match(path)
    }

    #[test]
    fn stars_and_questions_stop_at_slashes() {
        assert!(m("*.rs", "lib.rs"));
        assert!(!m("*.rs", "src/lib.rs"));
        assert!(m("src/*.rs", "src/lib.rs"));
        assert!(m("?.c", "a.c"));
        assert!(!m("?.c", "ab.c"));
        assert!(!m("a?b", "a/b"));
        assert!(m("a*b*c", "axxbyyc"));
        assert!(!m("a*b*c", "axxbyy"));
        assert!(Glob::new("*.rs", false).unwrap().is_match("src/lib.rs"));
        assert!(m("é?", "éü"), "? is a character, not a byte");
    }

    #[test]
    fn double_stars_in_their_three_places() {
        assert!(m("**", "a/b/c"));
        assert!(m("**/foo", "foo"));
        assert!(m("**/foo", "a/b/foo"));
        assert!(!m("**/foo", "foo/bar"));
        assert!(m("foo/**", "foo/a"));
        assert!(m("foo/**", "foo/a/b"));
        assert!(!m("foo/**", "foo"));
        assert!(m("a/**/b", "a/b"));
        assert!(m("a/**/b", "a/x/y/b"));
        assert!(!m("a/**/b", "ab"));
        assert!(m("src/**/*.rs", "src/lib.rs"));
        assert!(m("src/**/*.rs", "src/a/b/lib.rs"));
        assert!(!m("src/**/*.rs", "src/a/b/lib.c"));
        // Elsewhere `**` is `*`.
        assert!(m("a**", "abc"));
        assert!(!m("a**", "a/bc"));
        assert!(m("**/**", "x/y"));
        assert!(m("{**/a,b}", "x/a"));
        // As globset: only a whole pattern of `**` is every path; in a group it is the
        // recursive prefix (nothing, `/`, or a run ending in `/`).
        assert!(!m("{**/}", "x"));
        assert!(m("{**/}", "x/"));
        assert!(m("x/{a/**,b}", "x/a/q"));
    }

    #[test]
    fn classes_alternatives_and_escapes() {
        assert!(m("[ab].c", "b.c"));
        assert!(!m("[!ab].c", "b.c"));
        assert!(m("[^ab].c", "x.c"));
        assert!(m("[a-c]x", "bx"));
        assert!(m("[]]", "]"));
        assert!(m("[a-]", "-"));
        assert!(m("[[:digit:]x]", "7"));
        assert!(
            !m("a[!x]b", "a/b"),
            "a class does not match / with literal_separator"
        );
        assert!(m("*.{rs,toml}", "Cargo.toml"));
        assert!(!m("*.{rs,toml}", "Cargo.lock"));
        assert!(m("{a,b{c,d}}e", "bde"));
        assert!(m(r"\*", "*"));
        assert!(!m(r"\*", "x"));
        assert!(m("a,b", "a,b"), "a comma outside braces is literal");
        assert!(m("x{a,}", "xa"));
        assert!(
            !m("x{a,}", "x"),
            "an empty alternative is dropped, as globset does"
        );
        assert!(m("x{,}", "x"));
    }

    #[test]
    fn malformed_globs_say_why() {
        let e = |p: &str| Glob::new(p, true).unwrap_err().to_string();
        assert_eq!(e("a["), "unclosed character class; missing ']'");
        assert_eq!(e("[z-a]"), "invalid range; 'z' > 'a'");
        assert_eq!(
            e("a}"),
            "unopened alternate group; missing '{' (maybe escape '}' with '[}]'?)"
        );
        assert_eq!(
            e("{a"),
            "unclosed alternate group; missing '}' (maybe escape '{' with '[{]'?)"
        );
        assert_eq!(e("a\\"), "dangling '\\'");
        assert_eq!(
            e(&"{a,b}".repeat(11)),
            "more than 1024 alternatives once its `{...}` groups are expanded"
        );
        assert_eq!(e(&"{".repeat(40)), "`{` nested more than 32 deep");
        assert_eq!(e(&"*?".repeat(2049)), "longer than 4096 bytes");
        // 1024 alternatives of 400 tokens each: within the count, over the size.
        let wide = format!("{}{}", "?*".repeat(200), "{a,b}".repeat(10));
        assert_eq!(
            e(&wide),
            "more than 65536 pieces once its `{...}` groups are expanded"
        );
    }

    #[test]
    fn a_pathological_pattern_is_matched_in_polynomial_time() {
        let pattern = "*a".repeat(30) + "b";
        let path = "a".repeat(2000);
        let g = Glob::new(&pattern, true).unwrap();
        assert!(!g.is_match(path.as_str()));
    }

    /// Random patterns and paths over a small alphabet, where every glob feature meets
    /// every other: the same verdicts as globset (which nexus used before), the same
    /// patterns refused. ASCII only: globset's `?` is one byte, ours one character.
    #[test]
    fn agrees_with_globset_on_random_patterns() {
        use quickcheck::{Gen, QuickCheck, TestResult};
        fn word(g: &mut Gen, alphabet: &[&str], max: usize) -> String {
            let n = usize::arbitrary(g) % (max + 1);
            (0..n).map(|_| *g.choose(alphabet).unwrap()).collect()
        }
        use quickcheck::Arbitrary;
        fn prop(seed: u64, sep: bool) -> TestResult {
            let mut g = Gen::new(seed as usize % 64 + 1);
            let pattern = word(
                &mut g,
                &[
                    "a",
                    "b",
                    "/",
                    "*",
                    "**",
                    "?",
                    "[",
                    "]",
                    "!",
                    "-",
                    "{",
                    "}",
                    ",",
                    "\\",
                    "[:digit:]",
                    "1",
                ],
                10,
            );
            let ours = Glob::new(&pattern, sep);
            let theirs = globset::GlobBuilder::new(&pattern)
                .literal_separator(sep)
                .backslash_escape(true)
                .build()
                .map(|g| g.compile_matcher());
            let (ours, theirs) = match (ours, theirs) {
                (Ok(o), Ok(t)) => (o, t),
                (Err(_), Err(_)) => return TestResult::passed(),
                (o, t) => {
                    return TestResult::error(format!(
                        "`{pattern}`: ours {:?}, globset {:?}",
                        o.err(),
                        t.err()
                    ))
                }
            };
            for _ in 0..20 {
                let path = word(
                    &mut g,
                    &["a", "b", "/", "-", ",", "!", "1", "*", "[", "{"],
                    8,
                );
                if ours.is_match(path.as_str()) != theirs.is_match(path.as_str()) {
                    return TestResult::error(format!(
                        "`{pattern}` against `{path}` (literal_separator {sep}): ours {}, globset {}",
                        ours.is_match(path.as_str()),
                        theirs.is_match(path.as_str())
                    ));
                }
            }
            TestResult::passed()
        }
        QuickCheck::new()
            .tests(20_000)
            .max_tests(40_000)
            .quickcheck(prop as fn(u64, bool) -> TestResult);
    }
}
