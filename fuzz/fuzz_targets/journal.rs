//! Journal reader: any line is a record or a reason, never a panic; the same for a line
//! with a valid seal (so the record parser is reached, not only the checksum), and for
//! the whole input read back as a journal file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nexus::state::journal;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for line in text.lines() {
        let _ = journal::parse_line(line);
        // `seal` takes a record's JSON text, `{...}`.
        if line.starts_with('{') && line.ends_with('}') {
            let _ = journal::parse_line(&journal::seal(line));
        }
    }
    let path = std::env::temp_dir().join(format!("nexus-fuzz-journal-{}", std::process::id()));
    if std::fs::write(&path, data).is_ok() {
        let _ = journal::read(&path);
        let _ = std::fs::remove_file(&path);
    }
});
