//! Words for failures, shared by the text and JSON renderers.

use crate::config::duration;
use crate::run::event::Failure;

/// "exited with 3", "timed out after 5s", ...: the end of a sentence about a command.
pub fn failure(f: &Failure) -> String {
    match f {
        Failure::Exit(c) => format!("exited with {c}"),
        Failure::Signal(s) => format!("was killed by signal {s}"),
        Failure::Timeout {
            limit,
            task_limit,
            from,
            connecting,
        } => format!(
            "timed out after {} ({}){}",
            duration::display(*limit),
            super::report::limit_source(*task_limit, *from),
            if connecting.is_some() {
                " while connecting"
            } else {
                ""
            }
        ),
        Failure::Cancelled => "was cancelled".to_string(),
        Failure::Spawn(c) | Failure::Connect(c) | Failure::Unhealthy(c) => c.what.clone(),
    }
}
