//! `nexus man`: the nexus(1) manual page in roff, generated from the command and flag
//! tables (as `--help` is) and from tables of the reference docs compiled in (exit codes
//! from docs/output.md, environment variables from docs/environment.md), so the page
//! says what they say. Must not: hold text of its own that the tables or the docs
//! already hold.

use super::flags::{Flag, COMMANDS, FLAGS};

const OUTPUT_MD: &str = include_str!("../../docs/output.md");
const ENVIRONMENT_MD: &str = include_str!("../../docs/environment.md");

/// The whole page.
pub fn page() -> String {
    let mut s = format!(
        ".TH NEXUS 1 \"\" \"nexus {}\" \"User Commands\"\n",
        env!("CARGO_PKG_VERSION")
    );
    s += ".SH NAME\nnexus \\- run named tasks locally and over SSH as a parallel DAG\n";
    s += ".SH SYNOPSIS\n";
    for line in [
        "[\\fIFLAGS\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]",
        "[\\fIFLAGS\\fR] \\fITASK\\fR...",
        "[\\fIFLAGS\\fR]",
    ] {
        s += &format!(".B nexus\n{line}\n.br\n");
    }
    s += DESCRIPTION;
    s += &commands();
    s += ".SH OPTIONS\n.SS Global flags\n";
    for f in FLAGS.iter().filter(|f| f.commands.is_empty()) {
        s += &flag(f);
    }
    s += ".SS Flags of commands\n";
    for f in FLAGS.iter().filter(|f| !f.commands.is_empty()) {
        s += &flag(f);
    }
    s += ".SH EXIT STATUS\n";
    s += &table(section(OUTPUT_MD, "## Exit codes"));
    s += ".SH ENVIRONMENT\n";
    s += &table(section(ENVIRONMENT_MD, "## Read by nexus"));
    s += ".PP\nSet for every command nexus runs:\n";
    s += &table(section(ENVIRONMENT_MD, "## Set for every command"));
    s += FILES;
    s
}

const DESCRIPTION: &str = ".SH DESCRIPTION
nexus reads tasks from
.I nexus.toml
(in the current directory or the nearest parent) and runs the ones named, with
everything they depend on, as a parallel DAG: on this machine, or on remote hosts over
SSH.
A bare
.B nexus
runs the file's
.B default
task, or lists the tasks;
.B nexus
.I TASK
is
.B nexus run
.IR TASK ,
when TASK is no command name.
.PP
.B nexus schema
prints a JSON Schema of nexus.toml for editors;
.B nexus validate
checks the file without running anything.
";

const FILES: &str = ".SH FILES
.TP
.I nexus.toml
The tasks, hosts and settings (docs/nexus\\-toml.md;
.B nexus init
writes a commented starter file).
.TP
.I .nexus/secrets.enc
The project's encrypted secret store (docs/secrets.md).
.TP
.I $NEXUS_HOME/runs/
Run journals, read by
.B nexus runs
and
.B nexus resume
(docs/state.md).
.SH SEE ALSO
.BR ssh (1),
.BR ssh_config (5),
.BR sshd (8),
.BR make (1).
The reference pages in the repository's docs/ directory: nexus\\-toml.md,
commands.md, output.md, ssh.md, state.md, secrets.md, environment.md, editors.md.
";

fn commands() -> String {
    let mut s = ".SH COMMANDS\n".to_string();
    for c in COMMANDS {
        s += ".TP\n";
        s += &format!(".B nexus {}", c.name);
        if !c.args.is_empty() {
            s += &format!(" \\fI{}\\fR", escape(c.args));
        }
        s += &format!("\n{}\n", inline(c.about));
    }
    s
}

fn flag(f: &Flag) -> String {
    let mut head = String::new();
    if let Some(c) = f.short {
        head += &format!("\\fB\\-{c}\\fR, ");
    }
    head += &format!("\\fB\\-\\-{}\\fR", escape(f.long));
    if let Some(v) = f.value {
        head += &format!(" \\fI{v}\\fR");
    }
    let mut body = inline(f.help);
    if !f.choices.is_empty() {
        body += &format!(" One of: {}.", f.choices.join(", "));
    }
    if !f.commands.is_empty() {
        body += &format!(" (Commands: {}.)", f.commands.join(", "));
    }
    format!(".TP\n{head}\n{body}\n")
}

/// The text of the markdown section under `heading`, up to the next heading.
fn section<'a>(md: &'a str, heading: &str) -> &'a str {
    let Some(start) = md.find(&format!("\n{heading}\n")) else {
        return "";
    };
    let body = &md[start + heading.len() + 2..];
    let end = body.find("\n#").unwrap_or(body.len());
    &body[..end]
}

/// The first markdown table of `md` as roff tagged paragraphs: the first column is the
/// tag, the others the text.
fn table(md: &str) -> String {
    let mut s = String::new();
    let rows = md
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2); // the head and the |---| line
    for row in rows {
        let cells = cells(row);
        let Some((tag, rest)) = cells.split_first() else {
            continue;
        };
        s += &format!(".TP\n{}\n{}\n", inline(tag), inline(&rest.join("; ")));
    }
    s
}

/// The cells of a table row; `\|` is a `|` inside a cell.
fn cells(row: &str) -> Vec<String> {
    let inner = row.trim().trim_start_matches('|').trim_end_matches('|');
    let mut out = vec![String::new()];
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                chars.next();
                if let Some(cell) = out.last_mut() {
                    cell.push('|');
                }
            }
            '|' => out.push(String::new()),
            _ => {
                if let Some(cell) = out.last_mut() {
                    cell.push(c);
                }
            }
        }
    }
    out.into_iter().map(|c| c.trim().to_string()).collect()
}

/// Markdown inline text as roff: `code` in bold, links as their text.
fn inline(md: &str) -> String {
    let mut s = String::new();
    let mut rest = md;
    while let Some(i) = rest.find(['`', '[']) {
        s += &escape(&rest[..i]);
        rest = &rest[i..];
        if let Some(code) = rest.strip_prefix('`') {
            let end = code.find('`').unwrap_or(code.len());
            s += &format!("\\fB{}\\fR", escape(&code[..end]));
            rest = code.get(end + 1..).unwrap_or("");
        } else {
            // [text](target): the text only.
            match (rest.find("]("), rest.find(')')) {
                (Some(close), Some(end)) if close < end => {
                    s += &inline(&rest[1..close]);
                    rest = &rest[end + 1..];
                }
                _ => {
                    s.push('[');
                    rest = &rest[1..];
                }
            }
        }
    }
    s + &escape(rest)
}

/// Text as roff: backslashes and hyphens escaped, a leading `.` or `'` made literal, and
/// the few non-ASCII characters of the docs spelled as roff knows them.
fn escape(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => s += "\\e",
            '-' => s += "\\-",
            '—' => s += "\\(em",
            '–' => s += "\\(en",
            '…' => s += "...",
            '→' => s += "\\(->",
            '’' => s += "'",
            _ => s.push(c),
        }
    }
    if s.starts_with(['.', '\'']) {
        s.insert_str(0, "\\&");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_and_flag_is_on_the_page() {
        let page = page();
        for c in COMMANDS {
            assert!(page.contains(&format!(".B nexus {}", c.name)), "{}", c.name);
        }
        for f in FLAGS {
            let long = format!("\\-\\-{}", f.long.replace('-', "\\-"));
            assert!(page.contains(&long), "--{}", f.long);
        }
    }

    #[test]
    fn doc_tables_become_tagged_paragraphs() {
        let md = "intro\n\n| code | meaning |\n|---|---|\n| 0 | success (`help`, [x](y.md)) |\n| `A\\|B` | a - b |\n\nafter\n";
        assert_eq!(
            table(md),
            ".TP\n0\nsuccess (\\fBhelp\\fR, x)\n.TP\n\\fBA|B\\fR\na \\- b\n"
        );
        assert!(table(section(OUTPUT_MD, "## Exit codes")).contains(".TP\n130\n"));
        assert!(table(section(ENVIRONMENT_MD, "## Read by nexus")).contains("NEXUS_HOME"));
        assert!(table(section(ENVIRONMENT_MD, "## Set for every command")).contains("NEXUS_RUN_ID"));
    }
}
