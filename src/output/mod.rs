//! Output: the renderers that show a run's events as text (normal, verbose, quiet) or
//! JSON Lines, called by the recorder under its lock; and the decision about color and
//! Unicode (terminal, NO_COLOR, TERM=dumb, CI, --plain, FORCE_COLOR).
//! Must not: decide anything about the run, or be written to by anyone but the recorder
//! while a run is going.

pub mod describe;
mod held;
mod json;
pub mod report;
mod stream;
mod text;

use std::io::IsTerminal;

use crate::run::recorder::Render;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// What is shown of command output (`--output`, `[config] output`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// As it comes: raw while one local unit runs alone, prefixed lines otherwise.
    Stream,
    /// One block per unit.
    Grouped,
    /// None, except in failure reports.
    Quiet,
}

impl Mode {
    pub const NAMES: &'static [&'static str] = &["stream", "grouped", "quiet"];

    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "stream" => Some(Mode::Stream),
            "grouped" => Some(Mode::Grouped),
            "quiet" => Some(Mode::Quiet),
            _ => None,
        }
    }
}

/// How text looks: colors and Unicode symbols, each on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    pub color: bool,
    pub unicode: bool,
}

impl Style {
    /// Decide from the environment and `--plain`, for nexus's own lines on stderr.
    pub fn detect(plain: bool) -> Style {
        Style::decide(plain, std::io::stderr().is_terminal())
    }

    /// The same, for a report printed on stdout (pre-flight, dry run).
    pub fn for_stdout(plain: bool) -> Style {
        Style::decide(plain, std::io::stdout().is_terminal())
    }

    fn decide(plain: bool, tty: bool) -> Style {
        let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
        let ci = env("CI").is_some_and(|v| v != "false" && v != "0");
        let fancy = tty && !plain && !dumb && !ci;
        let force = env("FORCE_COLOR").is_some_and(|v| v != "0" && v != "false");
        Style {
            color: force || (fancy && env("NO_COLOR").is_none()),
            unicode: fancy,
        }
    }
}

/// A person watches stderr (a terminal, and not CI): worth "still running" notices.
pub fn watched() -> bool {
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0");
    std::io::stderr().is_terminal() && !ci
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub format: Format,
    pub mode: Mode,
    /// `-v`: echo each command before it runs.
    pub verbose: bool,
    pub style: Style,
    /// stderr is a terminal a person watches (not CI): "still running" notices.
    pub progress: bool,
}

/// The renderer for these options. Output is buffered and flushed after each event, so
/// each event's lines reach stdout and stderr in one write each (unbuffered stderr took a
/// write per piece of a line, and another process's output could land in between).
pub fn renderer(opts: Options, run_id: String) -> Box<dyn Render> {
    let out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout());
    match opts.format {
        Format::Json => Box::new(json::Renderer::new(out, run_id)),
        Format::Text => {
            let err = std::io::BufWriter::with_capacity(16 * 1024, std::io::stderr());
            Box::new(text::Renderer::new(out, err, opts, run_id))
        }
    }
}
