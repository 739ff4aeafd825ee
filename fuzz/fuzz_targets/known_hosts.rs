//! known_hosts parser: any text parses (bad lines are skipped), and lookups in it never
//! panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nexus::exec::ssh::known_hosts::KnownHosts;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let kh = KnownHosts::parse(&text);
    for (host, port) in [("web", 22), ("10.0.0.1", 2222), ("::1", 22)] {
        let _ = kh.key_types(host, port);
        let _ = kh.check(host, port, data);
    }
});
