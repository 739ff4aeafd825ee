//! Pre-flight reports as text (grouped checks, or failures only) and as one JSON
//! document. Must not: run checks.

use serde_json::json;

use super::{Check, Mark, Report, GROUPS};
use crate::output::Style;

fn mark_text(style: Style, m: Mark) -> String {
    use nu_ansi_term::Color;
    let (sym, word, color) = match m {
        Mark::Pass => ("✓", "ok  ", Color::Green),
        Mark::Fail => ("✗", "FAIL", Color::Red),
        Mark::Skip => ("⊘", "skip", Color::Yellow),
    };
    let text = if style.unicode { sym } else { word };
    if style.color {
        color.bold().paint(text).to_string()
    } else {
        text.to_string()
    }
}

/// The report as text. `quiet` prints only the failures.
pub fn render_text(r: &Report, style: Style, quiet: bool) -> String {
    let mut s = String::new();
    let failures = r.failures();
    if !quiet {
        s += &format!("Pre-flight checks for: {}\n", r.targets.join(", "));
        for group in GROUPS {
            let items: Vec<&Check> = r.checks.iter().filter(|c| c.group == *group).collect();
            if items.is_empty() {
                continue;
            }
            let counted = items.iter().filter(|c| c.mark != Mark::Skip).count();
            let passed = items.iter().filter(|c| c.mark == Mark::Pass).count();
            if *group == "Configuration" {
                s += &format!("\n{group}\n");
            } else {
                s += &format!("\n{group} [{passed}/{counted}]\n");
            }
            for c in items {
                let detail = if c.detail.is_empty() {
                    String::new()
                } else if c.mark == Mark::Fail {
                    format!("  {}", c.detail)
                } else {
                    format!("  ({})", c.detail)
                };
                s += &format!("  {} {}{detail}\n", mark_text(style, c.mark), c.subject);
            }
        }
        s.push('\n');
        if failures.is_empty() {
            s += &format!(
                "{} All pre-flight checks passed ({} checks in {})\n",
                mark_text(style, Mark::Pass).trim_end(),
                r.checks.iter().filter(|c| c.mark == Mark::Pass).count(),
                crate::timefmt::secs(r.elapsed)
            );
            return s;
        }
        s += &format!(
            "{} Pre-flight checks failed ({} error{})\n",
            mark_text(style, Mark::Fail),
            failures.len(),
            if failures.len() == 1 { "" } else { "s" }
        );
    }
    if failures.is_empty() {
        return s;
    }
    s += "\nErrors:\n";
    for (i, c) in failures.iter().enumerate() {
        let what = match c.group {
            "Sudo Access" => format!("sudo not available: {}", c.detail),
            _ => c.detail.clone(),
        };
        s += &format!("  {}. {}: {what}\n", i + 1, c.subject);
        for sug in &c.suggestions {
            s += &format!("     {} {sug}\n", help_word(style));
        }
        s.push('\n');
    }
    if !quiet && !r.unavailable().is_empty() {
        s += "Run with --force to skip failed hosts and continue with available hosts.\n";
    }
    s
}

pub fn to_json(r: &Report) -> serde_json::Value {
    json!({
        "targets": r.targets,
        "passed": r.failures().is_empty(),
        "exit_code": r.exit_code(),
        "duration_ms": r.elapsed.as_millis() as u64,
        "checks": r.checks.iter().map(|c| json!({
            "group": c.group, "subject": c.subject, "status": c.mark.name(),
            "detail": c.detail, "duration_ms": c.duration.as_millis() as u64,
        })).collect::<Vec<_>>(),
        "errors": r.failures().iter().map(|c| json!({
            "group": c.group, "subject": c.subject, "reason": c.detail, "suggestions": c.suggestions,
        })).collect::<Vec<_>>(),
    })
}

/// The word before what to try, as every diagnostic writes it.
fn help_word(style: Style) -> String {
    if style.color {
        nu_ansi_term::Color::Cyan.bold().paint("help:").to_string()
    } else {
        "help:".to_string()
    }
}
