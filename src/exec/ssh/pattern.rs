//! Wildcard patterns, one matcher for all of nexus's SSH code: OpenSSH's `*` (any run)
//! and `?` (one byte) for Host and Match lists, known_hosts names and algorithm lists,
//! and glob(3)'s `[...]` classes on top for the file names of `Include`.
//! Must not: recurse or allocate: time stays linear-ish whatever the pattern.

/// OpenSSH `match_pattern`: `*` and `?`, case-sensitive, the whole `text`.
pub fn matches(pattern: &[u8], text: &[u8]) -> bool {
    wildcard(pattern, text, false)
}

/// glob(3) for one path component: `*`, `?`, `[set]`, `[!set]`, `[^set]`, `[a-z]`; a
/// `[` without its `]` is literal.
pub fn glob_component(pattern: &[u8], text: &[u8]) -> bool {
    wildcard(pattern, text, true)
}

/// What a comma-separated pattern list says about a text (OpenSSH `match_pattern_list`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListMatch {
    /// No pattern matched.
    None,
    /// A pattern matched and no negated one did.
    Positive,
    /// A `!`-negated pattern matched: that rules the text out.
    Negated,
}

/// OpenSSH `match_pattern_list`: `list` is `a,!b,c*`; `lower` lowercases the patterns
/// (the caller lowercases `text` when it wants a case-blind match).
pub fn match_list(text: &str, list: &str, lower: bool) -> ListMatch {
    let mut got = ListMatch::None;
    for sub in list.split(',') {
        let (neg, sub) = match sub.strip_prefix('!') {
            Some(r) => (true, r),
            None => (false, sub),
        };
        let hit = if lower {
            matches(sub.to_ascii_lowercase().as_bytes(), text.as_bytes())
        } else {
            matches(sub.as_bytes(), text.as_bytes())
        };
        if hit {
            if neg {
                return ListMatch::Negated;
            }
            got = ListMatch::Positive;
        }
    }
    got
}

/// Greedy match with one backtrack point (the last `*`): each other token matches
/// exactly one byte, so a later `*` supersedes an earlier one.
fn wildcard(p: &[u8], s: &[u8], classes: bool) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if p.get(pi) == Some(&b'*') {
            star = Some((pi + 1, si));
            pi += 1;
            continue;
        }
        if let Some(len) = one(p, pi, s[si], classes) {
            pi += len;
            si += 1;
            continue;
        }
        match star {
            Some((after, from)) => {
                pi = after;
                si = from + 1;
                star = Some((after, from + 1));
            }
            None => return false,
        }
    }
    p[pi.min(p.len())..].iter().all(|&c| c == b'*')
}

/// Does the token at `p[pi..]` (not a `*`) match `c`? Some(token length) if it does.
fn one(p: &[u8], pi: usize, c: u8, classes: bool) -> Option<usize> {
    match p.get(pi)? {
        b'?' => Some(1),
        b'[' if classes => match class(&p[pi..], c) {
            Some((true, len)) => Some(len),
            Some((false, _)) => None,
            None => (c == b'[').then_some(1),
        },
        &pc => (pc == c).then_some(1),
    }
}

/// A `[...]` class at the start of `p`: (does `c` match, class length), or None when
/// the class has no closing `]`.
fn class(p: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let neg = matches!(p.get(i), Some(b'!') | Some(b'^'));
    if neg {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let &pc = p.get(i)?;
        if pc == b']' && !first {
            return Some((matched != neg, i + 1));
        }
        first = false;
        match (p.get(i + 1), p.get(i + 2)) {
            (Some(b'-'), Some(&hi)) if hi != b']' => {
                matched |= pc <= c && c <= hi;
                i += 3;
            }
            _ => {
                matched |= pc == c;
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_and_question_marks() {
        assert!(matches(b"*", b"anything") && matches(b"*", b""));
        assert!(matches(b"web-?", b"web-1") && !matches(b"web-?", b"web-12"));
        assert!(matches(b"*.example.*", b"a.example.com"));
        assert!(matches(b"[10.0.0.*]:22?2", b"[10.0.0.5]:2202"));
        assert!(!matches(b"a*b", b"acd"));
        assert!(matches(b"web*.p?od", b"web01.prod"));
        assert!(!matches(b"ab", b"abc") && !matches(b"abc", b"ab"));
        assert!(matches(b"*b*c", b"aXbXc") && !matches(b"*b*c", b"aXbXd"));
        // Brackets are literal in OpenSSH patterns.
        assert!(matches(b"[ab]", b"[ab]") && !matches(b"[ab]", b"a"));
        let long = vec![b'a'; 5000];
        assert!(!matches(b"*a*a*a*a*a*a*a*a*a*a*a*a*b", &long));
    }

    #[test]
    fn glob_classes() {
        assert!(glob_component(b"*.conf", b"a.conf"));
        assert!(glob_component(b"[a-c]?", b"bx") && !glob_component(b"[!a-c]?", b"bx"));
        assert!(glob_component(b"[^a-c]?", b"dx"));
        assert!(glob_component(b"[]x]", b"]") && glob_component(b"[a-]", b"-"));
        assert!(glob_component(b"x[", b"x[") && !glob_component(b"x[", b"xa"));
        assert!(glob_component(b"*[0-9].conf", b"host10.conf"));
    }

    #[test]
    fn lists() {
        assert_eq!(match_list("web1", "db*,web?", false), ListMatch::Positive);
        assert_eq!(match_list("web1", "web*,!web1", false), ListMatch::Negated);
        assert_eq!(match_list("web1", "db*", false), ListMatch::None);
        assert_eq!(match_list("web", "WEB", true), ListMatch::Positive);
        assert_eq!(match_list("web", "WEB", false), ListMatch::None);
    }
}
