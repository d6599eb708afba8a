//! The fuzz corpus on stable: every file of `fuzz/corpus/<target>/` (the
//! minimised corpus cargo-fuzz built) and of `fuzz/regressions/<target>/`
//! (inputs that once crashed) goes through the same function the fuzz target
//! calls (`upstream_exporter::fuzzing`), which must return normally. Plus
//! proptests feeding arbitrary bytes to the targets no other test covers.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use upstream_exporter::fuzzing::{self, TARGETS};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// Files of `dir` (none if it does not exist), sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Run each file through `run`; returns (files, how many parsed).
fn replay(name: &str, run: fuzzing::Target, files: &[PathBuf]) -> (usize, usize) {
    let mut parsed = 0;
    for file in files {
        let data = std::fs::read(file).expect("readable corpus file");
        let outcome = std::panic::catch_unwind(|| run(&data));
        match outcome {
            Ok(true) => parsed += 1,
            Ok(false) => {}
            Err(_) => panic!("fuzz target `{name}` panicked on {}", file.display()),
        }
    }
    (files.len(), parsed)
}

#[test]
fn every_target_has_a_corpus_and_replays_it_without_panicking() {
    let mut summary = Vec::new();
    for (name, run) in TARGETS {
        let corpus = files(&fuzz_dir().join("corpus").join(name));
        assert!(
            !corpus.is_empty(),
            "fuzz/corpus/{name}/ is empty or missing: the replay would pass vacuously"
        );
        let (ran, parsed) = replay(name, run, &corpus);
        // A corpus seeded from real bodies keeps inputs that parse: all
        // failing would mean the target no longer reaches the parser.
        assert!(
            parsed > 0,
            "no corpus input of `{name}` parsed successfully ({ran} tried)"
        );
        let regressions = files(&fuzz_dir().join("regressions").join(name));
        let (reg, _) = replay(name, run, &regressions);
        summary.push(format!(
            "{name}: {ran} corpus files ({parsed} parsed), {reg} regressions"
        ));
    }
    eprintln!("{}", summary.join("\n"));
}

#[test]
fn no_stray_corpus_folders() {
    for dir in ["corpus", "regressions"] {
        for entry in std::fs::read_dir(fuzz_dir().join(dir))
            .into_iter()
            .flatten()
        {
            let name = entry.expect("entry").file_name();
            let name = name.to_string_lossy();
            assert!(
                TARGETS.iter().any(|(t, _)| *t == name),
                "fuzz/{dir}/{name} belongs to no target of upstream_exporter::fuzzing::TARGETS"
            );
        }
    }
}

/// Text made of the words and punctuation of config files, so generated
/// inputs get past the YAML parser into validation.
fn config_ish() -> impl Strategy<Value = String> {
    "(targets|defaults|name|url|interval|timeout|statuspage|json|http|metrics|path|labels|\
      value_map|components|include|exclude|bearer_token_file|headers|retries|\\$\\{[A-Z]*\\}|\
      https://a/|1s|10m|[ :\n\\-\\[\\]{}\"'a-z0-9$.*?@]){0,64}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn config_arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = fuzzing::config(&bytes);
    }

    #[test]
    fn config_shaped_text_never_panics(text in config_ish()) {
        let _ = fuzzing::config(text.as_bytes());
    }

    #[test]
    fn json_rule_paths_never_panic(
        paths in prop::collection::vec("[$@.*?()\\[\\]:,0-9a-z'\"=<>!&| -]{0,24}", 1..4),
        body in "[\\[\\]{}\":,0-9a-z. ]{0,64}",
    ) {
        let mut input = paths.join("\n").into_bytes();
        input.push(0);
        input.extend_from_slice(body.as_bytes());
        let _ = fuzzing::json(&input);
    }

    #[test]
    fn every_target_survives_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..128)) {
        for (_, run) in TARGETS {
            let _ = run(&bytes);
        }
    }
}
