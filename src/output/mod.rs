//! Output: the renderers that show a run's events as text (normal, verbose, quiet) or
//! JSON Lines, called by the recorder under its lock; and the decision about color and
//! Unicode (terminal, NO_COLOR, TERM=dumb, CI, --plain, FORCE_COLOR).
//! Must not: decide anything about the run, or be written to by anyone but the recorder
//! while a run is going.

pub mod describe;
mod json;
pub mod report;
mod text;

use std::io::IsTerminal;

use crate::run::recorder::Render;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

/// How text looks: colors and Unicode symbols, each on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    pub color: bool,
    pub unicode: bool,
}

impl Style {
    /// Decide from the environment and `--plain`, for output going to stdout.
    pub fn detect(plain: bool) -> Style {
        let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        let tty = std::io::stdout().is_terminal();
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

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub format: Format,
    pub verbosity: Verbosity,
    pub style: Style,
}

/// The renderer for these options. Output is buffered and flushed after each event.
pub fn renderer(opts: Options, run_id: String) -> Box<dyn Render> {
    let out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout());
    match opts.format {
        Format::Json => Box::new(json::Renderer::new(out, run_id)),
        Format::Text => Box::new(text::Renderer::new(out, std::io::stderr(), opts, run_id)),
    }
}
