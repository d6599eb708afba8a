#![no_main]
//! `upstream_exporter::fuzzing::json`; see `fuzz/RESULTS.md`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = upstream_exporter::fuzzing::json(data);
});
