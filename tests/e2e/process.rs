//! Child processes of the end-to-end suite (the exporter and Prometheus),
//! each behind a guard that kills and reaps it when dropped, so a failing
//! assertion, a panic or the suite's timeout never leaves one running. On
//! failure the guard prints the tail of the process's log.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub struct Daemon {
    pub name: &'static str,
    pub base: String,
    pub log: PathBuf,
    child: Option<Child>,
}

impl Daemon {
    /// Start `program` with `args`, stdout and stderr going to `log`.
    pub fn spawn(
        name: &'static str,
        program: &str,
        args: &[String],
        log: &Path,
        base: String,
    ) -> Daemon {
        let out = File::create(log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name} ({program}): {e}"));
        Daemon {
            name,
            base,
            log: log.to_path_buf(),
            child: Some(child),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Panics if the process has already exited (it should be serving).
    pub fn assert_running(&mut self) {
        if let Some(status) = self
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
        {
            panic!(
                "{} exited early with {status}; log:\n{}",
                self.name,
                self.log_tail(60)
            );
        }
    }

    /// Send SIGTERM and wait (bounded) for the exit status.
    pub async fn terminate(&mut self, within: Duration) -> ExitStatus {
        let pid = self.pid().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(sent.success(), "kill -TERM {pid} failed");
        let deadline = Instant::now() + within;
        loop {
            let child = self.child.as_mut().expect("running");
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {within:?} of SIGTERM",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- {} log (last 40 lines) ----\n{}\n----",
                self.name,
                self.log_tail(40)
            );
        }
    }
}
