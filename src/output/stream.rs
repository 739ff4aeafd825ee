//! Where command output goes in text mode: stdout to stdout and stderr to stderr, as
//! make and just show it. While one local unit runs alone its bytes pass through
//! untouched; once units overlap, and always for remote hosts, each line gets a
//! `task | ` or `task@host | ` prefix. `--output grouped` shows one unit at a time (the
//! others are held, see `held`) so each unit's output is one block; `--output quiet`
//! shows none (failure reports show the end of it). Memory stays bounded in every mode.
//! Must not: write nexus's own lines (text.rs does, on stderr).

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use nu_ansi_term::Color;

use super::held::Held;
use super::{Mode, Options};
use crate::exec::Stream;
use crate::run::event::Name;
use crate::run::lines::LineBuf;

/// A unit: (task, host).
pub type Key = (Name, Name);

/// Colors given to task prefixes on a terminal, in turn.
const PALETTE: [Color; 6] = [
    Color::Cyan,
    Color::Magenta,
    Color::Blue,
    Color::Yellow,
    Color::Green,
    Color::Purple,
];

/// A command silent this long on a terminal gets a "still running" line.
pub const SILENCE: Duration = Duration::from_secs(30);

struct Unit {
    /// Lines get a prefix (false: bytes pass through as they come).
    prefixed: bool,
    lines: [LineBuf; 2],
    /// The last raw byte written for this stream ended a line.
    at_line_start: [bool; 2],
    held: Held,
    running: bool,
    started: Instant,
    last_output: Instant,
    last_notice: Instant,
    color: Color,
}

pub struct Streams {
    opts: Options,
    /// Tasks started and not finished (a task's units may not all have started yet).
    tasks: HashMap<Name, usize>,
    units: HashMap<Key, Unit>,
    /// Units in the order they started (grouped: the order blocks are shown in).
    order: Vec<Key>,
    /// Grouped: the unit whose block is being shown.
    front: Option<Key>,
    colors: HashMap<Name, Color>,
}

impl Streams {
    pub fn new(opts: Options) -> Streams {
        Streams {
            opts,
            tasks: HashMap::new(),
            units: HashMap::new(),
            order: Vec::new(),
            front: None,
            colors: HashMap::new(),
        }
    }

    /// Units of other tasks, or other hosts of this one, may print now.
    fn company(&self, key: &Key) -> bool {
        self.tasks.len() > 1 || self.tasks.get(&key.0).is_some_and(|&n| n > 1)
    }

    /// A task starts on `hosts`: from now on its output and that of the tasks already
    /// running are told apart when they overlap.
    pub fn task_start(&mut self, task: &Name, hosts: usize, out: &mut dyn Write) {
        self.tasks.insert(task.clone(), hosts);
        if self.tasks.len() > 1 || hosts > 1 {
            let keys: Vec<Key> = self.units.keys().cloned().collect();
            for k in keys {
                self.start_prefixing(&k, out);
            }
        }
    }

    /// A task ended (on all its hosts).
    pub fn task_finish(&mut self, task: &Name) {
        self.tasks.remove(task);
    }

    /// A unit starts its first command.
    pub fn start(&mut self, key: &Key) {
        if self.units.get(&key.clone()).is_some_and(|u| u.running) {
            return;
        }
        let n = self.colors.len();
        let color = *self
            .colors
            .entry(key.0.clone())
            .or_insert(PALETTE[n % PALETTE.len()]);
        let now = Instant::now();
        let remote = &*key.1 != "local";
        let others = self.company(key);
        let unit = Unit {
            prefixed: remote || others,
            lines: Default::default(),
            at_line_start: [true, true],
            held: Held::default(),
            running: true,
            started: now,
            last_output: now,
            last_notice: now,
            color,
        };
        self.units.insert(key.clone(), unit);
        self.order.push(key.clone());
    }

    /// A unit that passed bytes through now prefixes its lines (ending a line it left
    /// open).
    fn start_prefixing(&mut self, key: &Key, out: &mut dyn Write) {
        if let Some(u) = self.units.get_mut(key) {
            if !u.prefixed && u.running {
                if !u.at_line_start[0] {
                    let _ = out.write_all(b"\n");
                }
                u.prefixed = true;
            }
        }
    }

    /// A chunk of a unit's output.
    pub fn output(&mut self, key: &Key, stream: Stream, data: &[u8], w: &mut Writers<'_>) {
        if !self.units.contains_key(key) {
            self.start(key);
        }
        let Some(u) = self.units.get_mut(key) else {
            return;
        };
        u.last_output = Instant::now();
        match self.opts.mode {
            Mode::Quiet => {}
            Mode::Stream => self.show(key, stream, data, w),
            Mode::Grouped => {
                if self.front.is_none() {
                    self.front = Some(key.clone());
                }
                if self.front.as_ref() == Some(key) {
                    self.show(key, stream, data, w);
                } else if let Some(u) = self.units.get_mut(key) {
                    u.held.push(stream, data);
                }
            }
        }
    }

    /// Write a chunk now, raw or as prefixed lines.
    fn show(&mut self, key: &Key, stream: Stream, data: &[u8], w: &mut Writers<'_>) {
        let prefix = self.prefix(key);
        let Some(u) = self.units.get_mut(key) else {
            return;
        };
        let i = stream as usize;
        let target = w.pick(stream);
        if !u.prefixed {
            let _ = target.write_all(data);
            if let Some(&last) = data.last() {
                u.at_line_start[i] = last == b'\n';
            }
            return;
        }
        u.lines[i].push(data, &mut |line| {
            let _ = target.write_all(prefix.as_bytes());
            let _ = target.write_all(line);
            if !line.ends_with(b"\n") {
                let _ = target.write_all(b"\n");
            }
        });
    }

    /// `task | ` or `task@host | `, colored per task on a terminal.
    pub fn prefix(&self, key: &Key) -> String {
        let name = if &*key.1 == "local" {
            key.0.to_string()
        } else {
            format!("{}@{}", key.0, key.1)
        };
        let bar = if self.opts.style.unicode { "│" } else { "|" };
        match self.units.get(key) {
            Some(u) if self.opts.style.color => {
                format!("{} ", u.color.paint(format!("{name} {bar}")))
            }
            _ => format!("{name} {bar} "),
        }
    }

    /// A unit ended: its unfinished lines go out; grouped, the next block is shown.
    pub fn finish(&mut self, key: &Key, w: &mut Writers<'_>) {
        let prefix = self.prefix(key);
        if let Some(u) = self.units.get_mut(key) {
            u.running = false;
            for stream in [Stream::Stdout, Stream::Stderr] {
                let target = w.pick(stream);
                u.lines[stream as usize].finish(&mut |line| {
                    let _ = target.write_all(prefix.as_bytes());
                    let _ = target.write_all(line);
                    let _ = target.write_all(b"\n");
                });
            }
        }
        if self.opts.mode == Mode::Grouped && self.front.as_ref() == Some(key) {
            self.front = None;
            self.next_block(w);
        }
        if self.opts.mode != Mode::Grouped || self.front.is_none() {
            self.forget_done();
        }
    }

    /// Grouped: show the held output of units that ended, in order, then make the
    /// earliest running unit with output the front.
    fn next_block(&mut self, w: &mut Writers<'_>) {
        let order = self.order.clone();
        for key in order {
            let Some(u) = self.units.get_mut(&key) else {
                continue;
            };
            if u.held.is_empty() && u.running {
                continue;
            }
            let mut held = std::mem::take(&mut u.held);
            let running = u.running;
            if running {
                self.front = Some(key.clone());
            }
            let lost = held.replay(&mut |stream, data| self.show(&key, stream, data, w));
            if lost > 0 {
                let _ = writeln!(
                    w.err,
                    "warning: {lost} bytes of output of {} could not be kept (temporary file)",
                    key.0
                );
            }
            if !running {
                let prefix = self.prefix(&key);
                if let Some(u) = self.units.get_mut(&key) {
                    for stream in [Stream::Stdout, Stream::Stderr] {
                        let target = w.pick(stream);
                        u.lines[stream as usize].finish(&mut |line| {
                            let _ = target.write_all(prefix.as_bytes());
                            let _ = target.write_all(line);
                            let _ = target.write_all(b"\n");
                        });
                    }
                }
            }
            if running {
                return;
            }
        }
    }

    /// Units that ended and have nothing held are no longer needed.
    fn forget_done(&mut self) {
        self.units.retain(|_, u| u.running || !u.held.is_empty());
        let units = &self.units;
        self.order.retain(|k| units.contains_key(k));
    }

    /// Units silent for `SILENCE` since their last output or notice: (prefix, running
    /// for, silent for). Their notice clock restarts.
    pub fn silent(&mut self, now: Instant) -> Vec<(Key, Duration, Duration)> {
        let mut out = Vec::new();
        for (k, u) in self.units.iter_mut() {
            let quiet_since = u.last_output.max(u.last_notice);
            if u.running && now.duration_since(quiet_since) >= SILENCE {
                u.last_notice = now;
                out.push((
                    k.clone(),
                    now.duration_since(u.started),
                    now.duration_since(u.last_output),
                ));
            }
        }
        out.sort();
        out
    }
}

/// The two streams command output is written to.
pub struct Writers<'a> {
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
}

impl Writers<'_> {
    fn pick(&mut self, stream: Stream) -> &mut dyn Write {
        match stream {
            Stream::Stdout => &mut *self.out,
            Stream::Stderr => &mut *self.err,
        }
    }
}
