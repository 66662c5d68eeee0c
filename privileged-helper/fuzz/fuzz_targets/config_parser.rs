//! Any config text: parse must return Ok or an error that names a line inside the text.
#![no_main]

use std::path::Path;

use dockroute_helper::config::{diff, Config};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Config::parse(text, Path::new("/etc/dockroute")) {
        Ok(cfg) => {
            let _ = diff(&Config::default_with_base(Path::new("/etc/dockroute")), &cfg);
            assert!(cfg.mtu >= 1280);
        }
        Err(e) => assert!(e.line >= 1 && e.line <= text.lines().count().max(1), "line {} of {}", e.line, text.lines().count()),
    }
});
