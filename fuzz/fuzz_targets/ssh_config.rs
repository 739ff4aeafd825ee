//! ssh_config parser and resolver: any text parses or is refused, never a panic.
//! Inputs naming `Include` are skipped: they would read the fuzzing machine's files
//! (Include is tested with fixed files in tests/suite/ssh_config_corpus.rs).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if text.to_ascii_lowercase().contains("include") {
        return;
    }
    let origin = Path::new("/nonexistent/fuzz/ssh_config");
    if let Ok(config) = nexus::exec::ssh::config::parse_str(&text, origin) {
        for alias in ["web", "db.example.com", "10.0.0.1", "[::1]"] {
            let _ = config.resolve(alias);
        }
    }
});
