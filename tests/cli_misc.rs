//! The command line around the daemon, with the real binary: shell
//! completions (syntax-checked by the shells, and bash's actually
//! completing), `--help` texts with examples, clap's suggestion for a
//! mistyped flag, and config errors shown with the offending line and a
//! caret (`--config.check`, start-up, reload) without echoing secrets.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{config_file, free_port, have, require};

const BIN: &str = env!("CARGO_BIN_EXE_upstream-exporter");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("UPSTREAM_EXPORTER_CONFIG_FILE")
        .stdin(Stdio::null())
        .output()
        .expect("run binary")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The completion script for `shell`, written to a file in `dir`.
fn completion_script(shell: &str, dir: &Path) -> (String, std::path::PathBuf) {
    let out = run(&["completions", shell]);
    assert_eq!(out.status.code(), Some(0), "{shell}: {}", stderr(&out));
    let script = stdout(&out);
    let file = dir.join(format!("upstream-exporter.{shell}"));
    std::fs::write(&file, &script).expect("write script");
    (script, file)
}

/// Run a shell's syntax check on a file; any complaint fails.
fn syntax_check(program: &str, args: &[&str], file: &Path) {
    let out = Command::new(program)
        .args(args)
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{program} rejects the script: {}",
        stderr(&out)
    );
}

#[test]
fn completion_scripts_cover_probe_and_the_global_flags_and_parse() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, flag) in [
        ("bash", "--config.file"),
        ("zsh", "--config.file"),
        // fish names long flags without their dashes.
        ("fish", "-l config.file"),
    ] {
        let (script, file) = completion_script(shell, dir.path());
        assert!(script.len() > 500, "{shell}: {script}");
        assert!(script.contains("probe"), "{shell}: no probe");
        assert!(script.contains(flag), "{shell}: no {flag}");
        assert!(
            script.contains("--fail-on") || script.contains("-l fail-on"),
            "{shell}"
        );
        match shell {
            "bash" if require("bash") => syntax_check("bash", &["-n"], &file),
            "zsh" if have("zsh") => syntax_check("zsh", &["-n"], &file),
            "fish" if have("fish") => syntax_check("fish", &["--no-execute"], &file),
            _ => eprintln!("SKIPPED: no {shell} to check its script"),
        }
    }
    let out = run(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("possible values"), "{}", stderr(&out));
}

/// What bash's completion function offers for the words typed so far (the
/// last one is being completed).
fn bash_completes(script: &Path, words: &[&str]) -> Vec<String> {
    let driver = r#"
source "$1"; shift
COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
COMPREPLY=()
_upstream__exporter upstream-exporter "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
"#;
    let out = Command::new("bash")
        .arg("-c")
        .arg(driver)
        .arg("driver")
        .arg(script)
        .args(words)
        .stdin(Stdio::null())
        .output()
        .expect("run bash");
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completes_subcommands_their_flags_and_values() {
    if !require("bash") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_, file) = completion_script("bash", dir.path());
    assert_eq!(
        bash_completes(&file, &["upstream-exporter", "pro"]),
        ["probe"]
    );
    assert_eq!(
        bash_completes(&file, &["upstream-exporter", "--config.f"]),
        ["--config.file"]
    );
    // After the subcommand (broken upstream for hyphenated names: clap#6421).
    assert_eq!(
        bash_completes(&file, &["upstream-exporter", "probe", "--fail-on", ""]),
        ["failure", "degraded", "maintenance"]
    );
    let probe_flags = bash_completes(&file, &["upstream-exporter", "probe", "--"]);
    for flag in [
        "--output",
        "--fail-on",
        "--color",
        "--config.file",
        "--log.level",
    ] {
        assert!(
            probe_flags.iter().any(|f| f == flag),
            "{flag}: {probe_flags:?}"
        );
    }
    assert_eq!(
        bash_completes(&file, &["upstream-exporter", "completions", "f"]),
        ["fish"]
    );
}

#[test]
fn help_texts_carry_examples() {
    let top = stdout(&run(&["--help"]));
    assert!(top.contains("Commands:") && top.contains("probe") && top.contains("completions"));
    assert!(
        top.contains("Examples:\n  upstream-exporter --config.file=exporter.yaml"),
        "{top}"
    );
    assert!(
        top.contains("upstream-exporter probe github --output=json"),
        "{top}"
    );

    let probe = stdout(&run(&["probe", "--help"]));
    for want in [
        "Usage: upstream-exporter probe [OPTIONS] [TARGET]...",
        "--fail-on",
        "--output",
        "--config.file",
        "Exit status:",
        "Examples:\n  upstream-exporter probe\n",
    ] {
        assert!(
            probe.contains(want),
            "probe --help lacks {want:?}:\n{probe}"
        );
    }

    let completions = stdout(&run(&["completions", "--help"]));
    for shell in ["bash", "zsh", "fish"] {
        assert!(
            completions.contains(&format!("upstream-exporter completions {shell} > ")),
            "{shell}:\n{completions}"
        );
    }
}

#[test]
fn a_mistyped_flag_suggests_the_right_one() {
    for (args, tip) in [
        (
            &["--config.fil=x.yaml"][..],
            "tip: a similar argument exists: '--config.file'",
        ),
        (
            &["probe", "--outptu=json"][..],
            "tip: a similar argument exists: '--output'",
        ),
        (&["prob"][..], "tip: a similar subcommand exists: 'probe'"),
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains(tip), "{args:?}: {}", stderr(&out));
    }
}

/// A bad config holding secrets: a bad `interval` and a duplicate name
/// next to a bearer token and a credential URL.
const BAD_WITH_SECRETS: &str = "\
targets:
  - name: a
    interval: fast
    bearer_token: T0ken-S3cret
    statuspage: { url: \"https://user:Passw0rd-S3cret@status.example.com\" }
  - name: a
    headers: { Authorization: \"Basic Zm9vOmJhcg==\" }
    statuspage: { url: \"https://status.example.com\" }
";

fn assert_no_secrets(text: &str) {
    for secret in ["T0ken-S3cret", "Passw0rd-S3cret", "Zm9vOmJhcg=="] {
        assert!(!text.contains(secret), "leaks {secret}:\n{text}");
    }
}

#[test]
fn config_check_shows_the_offending_lines_with_carets() {
    let (_dir, file) = config_file(BAD_WITH_SECRETS);
    let out = run(&[
        "--config.check",
        &format!("--config.file={}", file.display()),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let path = file.display();
    let want = format!("{path}:3:15: invalid duration `fast` for `interval`");
    assert!(err.starts_with(&want), "{err}");
    assert!(
        err.contains("\n  |\n3 |     interval: fast\n  |               ^^^^\n"),
        "{err}"
    );
    assert!(
        err.contains(&format!("\n{path}:6:11: duplicate target name `a`")),
        "{err}"
    );
    assert!(
        err.contains("\n6 |   - name: a\n  |           ^\n"),
        "{err}"
    );
    assert_no_secrets(&err);
}

#[test]
fn config_check_from_its_variable_takes_the_usual_spellings() {
    let (_dir, file) =
        config_file("targets:\n  - name: a\n    statuspage: { url: \"http://127.0.0.1:9/\" }\n");
    // A listen address the daemon cannot use: were the check not on, the
    // daemon would start and fail on it instead of printing OK.
    let run_with = |value: &str| {
        Command::new(BIN)
            .arg(format!("--config.file={}", file.display()))
            .arg("--web.listen-address=256.0.0.1:1")
            .env("UPSTREAM_EXPORTER_CONFIG_CHECK", value)
            .stdin(Stdio::null())
            .output()
            .expect("run binary")
    };
    for value in ["1", "true", "yes", "on"] {
        let out = run_with(value);
        assert_eq!(out.status.code(), Some(0), "{value}: {}", stderr(&out));
        assert!(stdout(&out).starts_with("OK"), "{value}: {}", stdout(&out));
    }
    for value in ["0", "false", "no", "off"] {
        let out = run_with(value);
        assert_eq!(out.status.code(), Some(1), "{value}: {}", stderr(&out));
        assert!(!stdout(&out).starts_with("OK"), "{value}: {}", stdout(&out));
    }
}

#[test]
fn a_bad_config_at_start_shows_the_line_and_never_a_secret() {
    // The error is on the line that holds the credential URL.
    let (_dir, file) = config_file(
        "targets:\n  - name: a\n    statuspage: { url: \"https://user:Passw0rd-S3cret@status exa mple.com\" }\n",
    );
    let out = run(&[
        &format!("--config.file={}", file.display()),
        &format!("--web.listen-address=127.0.0.1:{}", free_port()),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let first = format!(
        "upstream-exporter: {}:3:24: `url` `https://***@status exa mple.com`",
        file.display()
    );
    assert!(err.contains(&first), "{err}");
    assert!(
        err.contains(
            "\n3 |     statuspage: { url: \"<secret>\" }\n  |                        ^^^^^^^^^^\n"
        ),
        "{err}"
    );
    assert_no_secrets(&err);
}

#[test]
fn a_rejected_reload_reports_the_line_and_a_caret() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        use upstream_exporter::daemon::apply_config_bytes;
        use upstream_exporter::http::HttpClients;
        use upstream_exporter::metrics::ExporterStatus;
        use upstream_exporter::runner::Runner;
        let runner = Runner::new(
            HttpClients::new(),
            tokio_util::sync::CancellationToken::new(),
        );
        let status = ExporterStatus::default();
        let err = apply_config_bytes(
            BAD_WITH_SECRETS.as_bytes(),
            Path::new("exporter.yaml"),
            upstream_exporter::shard::Shard::default(),
            &runner,
            &status,
        )
        .unwrap_err();
        assert!(
            err.starts_with("exporter.yaml:3:15: invalid duration"),
            "{err}"
        );
        assert!(
            err.contains("\n3 |     interval: fast\n  |               ^^^^"),
            "{err}"
        );
        assert_no_secrets(&err);
        assert!(!status.reload_successful());
        runner.drain(std::time::Duration::from_secs(1)).await;
    });
}

/// `MALLOC_ARENA_MAX` as the running daemon `pid` sees it.
fn arena_setting(pid: u32) -> Option<String> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("read /proc/<pid>/environ");
    environ
        .split(|&b| b == 0)
        .filter_map(|entry| std::str::from_utf8(entry).ok())
        .find_map(|entry| entry.strip_prefix("MALLOC_ARENA_MAX="))
        .map(str::to_owned)
}

/// Start the daemon with `arenas` as `MALLOC_ARENA_MAX` (None: unset),
/// wait until it listens, and return what its process ended up with.
fn daemon_arena_setting(arenas: Option<&str>) -> Option<String> {
    let (_dir, config) =
        config_file("targets:\n  - name: local\n    http: { url: \"http://127.0.0.1:9/\" }\n");
    let port = free_port();
    let mut command = Command::new(BIN);
    command
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .env_remove("MALLOC_ARENA_MAX")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(arenas) = arenas {
        command.env("MALLOC_ARENA_MAX", arenas);
    }
    let mut child = command.spawn().expect("start the daemon");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let listening = loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break true;
        }
        if std::time::Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            break false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    // Same PID after the exec: the supervisor's process is the daemon.
    let seen = listening.then(|| arena_setting(child.id()));
    // Stopped before any assertion, so a failing test leaves no daemon behind.
    let _ = child.kill();
    let _ = child.wait();
    seen.expect("the daemon exited or never listened")
}

#[test]
fn the_daemon_bounds_glibc_arenas_unless_told_otherwise() {
    if cfg!(all(target_os = "linux", target_env = "gnu")) {
        assert_eq!(daemon_arena_setting(None).as_deref(), Some("2"));
    }
    assert_eq!(daemon_arena_setting(Some("5")).as_deref(), Some("5"));
}

/// The "Max open files" soft and hard limits of a running process.
#[cfg(target_os = "linux")]
fn open_files_limits(pid: u32) -> Option<(String, String)> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut fields = line["Max open files".len()..].split_whitespace();
    Some((fields.next()?.to_owned(), fields.next()?.to_owned()))
}

/// Started with a low soft limit on open files (systemd's 1,024, here 256),
/// the daemon raises it to the hard limit, as Go exporters do, so that a
/// burst of connections cannot make every probe fail for want of one.
#[cfg(target_os = "linux")]
#[test]
fn the_daemon_raises_its_soft_open_files_limit_to_the_hard_one() {
    let (_dir, config) = config_file("targets: []\n");
    let port = free_port();
    let script = format!(
        "ulimit -Sn 256 && exec {BIN} --config.file={} --web.listen-address=127.0.0.1:{port}",
        config.display()
    );
    let mut child = Command::new("bash")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    // Listening means the daemon is past its start-up (and its one re-exec).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon never listened"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let limits = open_files_limits(pid);
    let _ = child.kill();
    let _ = child.wait();
    let (soft, hard) = limits.expect("limits read");
    assert_ne!(hard, "256", "the hard limit leaves nothing to raise");
    assert_eq!(soft, hard, "the soft limit stayed at {soft}");
}

/// A port that is taken ends the start with its cause said once.
#[test]
fn a_taken_port_is_reported_once() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = held.local_addr().unwrap().to_string();
    let (_dir, config) = config_file("targets: []\n");
    let out = run(&[
        "--config.file",
        config.to_str().unwrap(),
        "--web.listen-address",
        &address,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("cannot listen on {address}")),
        "{err}"
    );
    assert_eq!(err.matches("os error").count(), 1, "{err}");
}
