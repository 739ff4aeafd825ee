//! nexus.toml loader: any bytes either load or give a validation error (exit 2) whose
//! rendering is bounded in size and prints no control characters. Never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

/// The largest error text any input may produce: 20 problems of a few KB and the count.
const MAX_RENDERED: usize = 100 * 1024;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let err = match nexus::config::parse(Path::new("nexus.toml"), Path::new("."), &text) {
        Ok(config) => {
            let all: Vec<usize> = (0..config.tasks.len()).collect();
            let diags = config.unset_env(&all);
            if diags.is_empty() {
                return;
            }
            nexus::error::Error::validation(diags)
        }
        Err(e) => e,
    };
    assert_eq!(err.exit_code, 2);
    let out = err.render(false);
    assert!(out.len() <= MAX_RENDERED, "{} bytes of errors", out.len());
    let bad = out
        .chars()
        .find(|&c| c.is_control() && c != '\n' && c != '\t');
    assert!(bad.is_none(), "control character {bad:?} in:\n{out}");
});
