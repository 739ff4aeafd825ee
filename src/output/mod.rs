//! Output: the event type, and the one consumer thread that owns stdout/stderr during a
//! run and renders events as text (normal, verbose, quiet) or JSON Lines. Also decides
//! color and Unicode (terminal, NO_COLOR, TERM=dumb, CI, --plain, FORCE_COLOR).

pub mod event;
mod json;
mod text;

use std::io::IsTerminal;
use std::thread::JoinHandle;

use crossbeam_channel::{unbounded, Sender};

use event::Event;

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

/// Start the renderer thread. Drop every sender to let it finish, then join it.
pub fn spawn(opts: Options, run_id: String) -> (Sender<Event>, JoinHandle<()>) {
    let (tx, rx) = unbounded::<Event>();
    let handle = std::thread::spawn(move || {
        // Handles, not held locks: log records from other threads must still get through.
        let stdout = std::io::stdout();
        let stderr = std::io::stderr();
        match opts.format {
            Format::Json => {
                let mut r = json::Renderer::new(std::io::LineWriter::new(stdout), run_id);
                for ev in rx {
                    r.event(&ev);
                }
            }
            Format::Text => {
                let mut r = text::Renderer::new(std::io::LineWriter::new(stdout), stderr, opts);
                for ev in rx {
                    r.event(&ev);
                }
            }
        }
    });
    (tx, handle)
}
