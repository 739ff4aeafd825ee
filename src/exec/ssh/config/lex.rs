//! Splitting one ssh_config line as OpenSSH does: the keyword (`strdelim`, with `=`
//! forms) and its arguments (`argv_split`: quotes, backslash escapes, `#` comments).
//! Must not: know any keyword's meaning.

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
pub(super) fn split_keyword(line: &str) -> Option<(String, &str)> {
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
pub(super) fn argv_split(s: &str) -> Option<Vec<String>> {
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
