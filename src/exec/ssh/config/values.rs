//! Value syntax shared by several keywords, as OpenSSH reads it: ports (`a2port`, with
//! service names from the services database) and times (`convtime`).
//! Must not: know which keyword a value belongs to.

/// OpenSSH `a2port`: 1..=65535 (decimal, as strtonum reads it) or a tcp service name.
pub(super) fn a2port(s: &str) -> Option<u16> {
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
    crate::sys::service_port(name)
}

/// OpenSSH `convtime`: `90`, `1m30s`, `2h`, … (suffixes s m h d w, any case).
pub(super) fn convtime(s: &str) -> Option<u64> {
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
