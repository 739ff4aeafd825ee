//! The one place events go: the recorder writes an event's journal record first, then
//! renders the event (text or JSON), under one lock, in the thread that produced it. So
//! the journal holds a step before anything is shown of it and before the run goes on,
//! lines never interleave, and a slow terminal slows the commands down instead of
//! queueing their output in memory. A journal write that fails (a full disk) is kept,
//! and the scheduler stops starting work. Must not: decide what runs, or format text.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::event::{Event, Failure, Name, Stamped};
use crate::exec::Stream;
use crate::secrets::{OutputFilter, Redactor};
use crate::state::journal::Journal;
use crate::state::record::Record;

/// Something that shows events to the user (the text or JSON renderer).
pub trait Render: Send {
    fn event(&mut self, ev: &Stamped);

    /// A chunk of a command's output, as it was read (lines may span chunks). Output is
    /// not journaled (each command's head and tail are, in its `command_finish`).
    fn output(
        &mut self,
        _at: SystemTime,
        _task: &Name,
        _host: &Name,
        _stream: Stream,
        _data: &[u8],
    ) {
    }

    /// Time passes (called every few seconds during a run, for "still running" notices).
    fn tick(&mut self, _now: std::time::Instant) {}
}

pub struct Recorder {
    inner: Mutex<Inner>,
    /// Set when a journal write failed: nothing new may start.
    broken: AtomicBool,
    /// The secret values of the run, masked in every event and every output chunk.
    redactor: Arc<Redactor>,
    /// An interactive command has the terminal: time passing is not shown.
    attached: AtomicBool,
}

struct Inner {
    journal: Option<Journal>,
    render: Box<dyn Render>,
    /// The first journal write that failed: (path, reason).
    state_error: Option<(String, String)>,
}

impl Recorder {
    pub fn new(journal: Option<Journal>, render: Box<dyn Render>) -> Recorder {
        Recorder {
            inner: Mutex::new(Inner {
                journal,
                render,
                state_error: None,
            }),
            broken: AtomicBool::new(false),
            redactor: Arc::default(),
            attached: AtomicBool::new(false),
        }
    }

    /// Mask these secret values (`[secret NAME]`) in everything recorded: the journal,
    /// rendered events, command output (through `output_filter`). Set before the run.
    pub fn with_redactor(mut self, redactor: Arc<Redactor>) -> Recorder {
        self.redactor = redactor;
        self
    }

    /// A filter for one command attempt's output: what passes through it is masked.
    /// Output goes through it before `output` and before the capture.
    pub fn output_filter(&self) -> OutputFilter {
        OutputFilter::new(Arc::clone(&self.redactor))
    }

    /// Journal `event` (if it is journaled), then render it.
    pub fn emit(&self, event: Event) {
        let ev = Stamped {
            ts: SystemTime::now(),
            event: redact(&self.redactor, event),
        };
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(record) = Record::from_event(&ev.event) {
            inner.journal_write(&record, &self.broken);
        }
        inner.render.event(&ev);
    }

    /// Write the journal records that wait for company: before a worker waits, sleeps,
    /// or ends.
    pub fn flush(&self) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(j) = inner.journal.as_mut() {
            if let Err(e) = j.flush() {
                inner.failed(&e, &self.broken);
            }
        }
    }

    /// Show a chunk of a command's output.
    pub fn output(&self, task: &Name, host: &Name, stream: Stream, data: &[u8]) {
        let now = SystemTime::now();
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.render.output(now, task, host, stream, data);
    }

    /// An interactive command has the terminal (true) or gave it back (false).
    pub fn attached(&self, on: bool) {
        self.attached.store(on, Ordering::SeqCst);
    }

    /// Let the renderer show what time tells (silent commands), unless an interactive
    /// command has the terminal.
    pub fn tick(&self) {
        if self.attached.load(Ordering::SeqCst) {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.render.tick(std::time::Instant::now());
    }

    /// True once a journal write failed (the run must stop starting work).
    pub fn broken(&self) -> bool {
        self.broken.load(Ordering::SeqCst)
    }

    /// The journal write that failed: (journal path, reason).
    pub fn state_error(&self) -> Option<(String, String)> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.state_error.clone()
    }
}

impl Inner {
    fn journal_write(&mut self, record: &Record, broken: &AtomicBool) {
        let Some(journal) = self.journal.as_mut() else {
            return;
        };
        if self.state_error.is_some() {
            return;
        }
        let mut result = journal.write(record);
        if result.is_ok() && record.is_checkpoint() {
            result = journal.checkpoint();
        }
        if result.is_ok() && matches!(record, Record::RunFinish { .. }) {
            // Written, not synced: a power loss right after the run can only make it look
            // interrupted (a resume then repeats work, it never skips any), and an
            // fdatasync here cost a short run more than everything else it did.
            result = journal.flush();
        }
        if let Err(e) = result {
            self.failed(&e, broken);
        }
    }

    fn failed(&mut self, e: &std::io::Error, broken: &AtomicBool) {
        log::debug!("journal: write failed: {e}");
        if self.state_error.is_none() {
            let path = self.journal.as_ref().map(|j| j.path.display().to_string());
            self.state_error = Some((path.unwrap_or_default(), crate::error::io_reason(e)));
        }
        broken.store(true, Ordering::SeqCst);
    }
}

/// `event` with every secret value in its text masked.
fn redact(r: &Redactor, mut event: Event) -> Event {
    if r.is_empty() {
        return event;
    }
    match &mut event {
        Event::CommandStart(cmd) | Event::CommandSpawned { cmd, .. } => r.redact_arc(&mut cmd.line),
        Event::CommandFinish {
            cmd,
            failure,
            output,
            ..
        } => {
            r.redact_arc(&mut cmd.line);
            if let Some(Failure::Spawn(c) | Failure::Connect(c) | Failure::Unhealthy(c)) = failure {
                r.redact_string(&mut c.what);
                c.help.iter_mut().for_each(|h| r.redact_string(h));
            }
            for line in output.head.iter_mut().chain(output.tail.iter_mut()) {
                r.redact_string(&mut line.1);
            }
        }
        Event::RunStart { targets, .. } => targets.iter_mut().for_each(|t| r.redact_string(t)),
        Event::Checked { reasons, .. } => reasons.iter_mut().for_each(|t| r.redact_string(t)),
        Event::CommandSkipped { cmd, reason } => {
            r.redact_arc(&mut cmd.line);
            r.redact_string(reason);
        }
        Event::FileProgress { cmd, .. } => r.redact_arc(&mut cmd.line),
        Event::FileStep { cmd, report } => {
            r.redact_arc(&mut cmd.line);
            report.diffs.iter_mut().for_each(|d| r.redact_string(d));
        }
        Event::TaskStart { .. }
        | Event::ArtifactsCollected { .. }
        | Event::ArtifactsPlaced { .. }
        | Event::UnitFinish { .. }
        | Event::TaskFinish { .. }
        | Event::Batch { .. }
        | Event::BatchWait { .. }
        | Event::RolloutStopped { .. }
        | Event::Handler { .. }
        | Event::RunFinish { .. } => {}
    }
    event
}
