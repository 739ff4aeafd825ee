//! Diagnostics for developers and curious users (`--log-level`, `NEXUS_LOG_LEVEL`,
//! `[config] log_level`), through `log` and env_logger: `nexus: debug: ...` lines on
//! stderr, or JSON lines with `--log-format json`. What users must see (warnings,
//! errors) never goes through here. Must not: decide anything.

use std::io::Write;

/// Set by `--log-level` or `NEXUS_LOG_LEVEL`, which win over `[config] log_level`.
static EXPLICIT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Start logging. The filter is wide open; the level decides (so that nexus.toml's
/// `log_level`, read later, can still raise or lower it).
pub fn init(level: Option<&str>, json: bool) {
    let from_env = std::env::var("NEXUS_LOG_LEVEL")
        .ok()
        .filter(|v| !v.is_empty());
    let spec = level.map(str::to_string).or(from_env);
    EXPLICIT.store(spec.is_some(), std::sync::atomic::Ordering::SeqCst);
    let mut b = env_logger::Builder::new();
    match &spec {
        // A module filter (`nexus::exec=debug`) is honoured as env_logger reads it.
        Some(s) if s.contains('=') => b.parse_filters(s),
        _ => b.filter_level(log::LevelFilter::Trace),
    };
    b.target(env_logger::Target::Stderr);
    if json {
        b.format(|buf, rec| {
            let line = serde_json::json!({
                "ts": crate::timefmt::rfc3339(std::time::SystemTime::now()),
                "level": rec.level().as_str().to_lowercase(),
                "target": rec.target(),
                "message": rec.args().to_string(),
            });
            writeln!(buf, "{line}")
        });
    } else {
        b.format(|buf, rec| {
            let level = rec.level().as_str().to_lowercase();
            writeln!(buf, "nexus: {level}: {}", rec.args())
        });
    }
    let _ = b.try_init();
    let level = spec.as_deref().map_or(log::LevelFilter::Warn, parse_level);
    log::set_max_level(level);
}

/// nexus.toml's `log_level`, unless the command line or environment set one.
pub fn config_level(level: Option<&str>) {
    if let Some(l) = level {
        if !EXPLICIT.load(std::sync::atomic::Ordering::SeqCst) {
            log::set_max_level(parse_level(l));
        }
    }
}

fn parse_level(s: &str) -> log::LevelFilter {
    match s.rsplit('=').next().unwrap_or(s) {
        "off" => log::LevelFilter::Off,
        "error" => log::LevelFilter::Error,
        "info" => log::LevelFilter::Info,
        "debug" => log::LevelFilter::Debug,
        "trace" => log::LevelFilter::Trace,
        _ => log::LevelFilter::Warn,
    }
}
