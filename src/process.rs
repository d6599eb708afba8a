//! The standard `process_*` figures, read from `/proc/self` on Linux, and
//! the open-files limit raised at start.
//!
//! Read at scrape time; on systems without `/proc` the family is omitted.

/// Raise the soft limit on open files to the hard one, as Go programs
/// (node_exporter, blackbox_exporter, Prometheus) do at start: systemd's
/// soft limit of 1,024 otherwise lets a burst of connections to the
/// exporter take every descriptor, and every probe then fails as
/// `connect` ("Too many open files"), blaming the upstreams. Returns the
/// soft limit before and after, or None if it was already the hard one
/// or could not be changed.
pub fn raise_open_files_limit() -> Option<(u64, u64)> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let before = limit.current?;
    let target = limit.maximum.unwrap_or(u64::MAX);
    if before >= target {
        return None;
    }
    let raised = rustix::process::Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    if let Err(e) = setrlimit(Resource::Nofile, raised) {
        tracing::warn!(soft = before, error = %e, "cannot raise the soft limit on open files");
        return None;
    }
    Some((before, target))
}

/// Linux reports CPU times in clock ticks; USER_HZ is 100 on every Linux ABI.
const TICKS_PER_SECOND: f64 = 100.0;

#[derive(Debug, Clone, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_bytes: f64,
    pub virtual_bytes: f64,
    pub start_time_seconds: f64,
    pub threads: f64,
    pub open_fds: Option<f64>,
    pub max_fds: Option<f64>,
}

/// Current figures of this process, or None where `/proc` is unavailable.
pub fn read() -> Option<ProcessStats> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start at field 3.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |n: usize| -> Option<f64> { fields.get(n - 3)?.parse().ok() };
    let utime = field(14)?;
    let stime = field(15)?;
    let threads = field(20)?;
    let start_ticks = field(22)?;
    let vsize = field(23)?;
    let rss_kib = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .unwrap_or(0.0);
    let boot_time = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<f64>().ok())
    })?;
    let open_fds = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|d| d.count() as f64);
    let max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse::<f64>().ok())
        });
    Some(ProcessStats {
        cpu_seconds: (utime + stime) / TICKS_PER_SECOND,
        resident_bytes: rss_kib * 1024.0,
        virtual_bytes: vsize,
        start_time_seconds: boot_time + start_ticks / TICKS_PER_SECOND,
        threads,
        open_fds,
        max_fds,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_own_process() {
        let p = super::read().expect("/proc is available on Linux");
        assert!(p.resident_bytes > 0.0);
        assert!(p.start_time_seconds > 1.0e9);
        assert!(p.open_fds.unwrap_or(0.0) >= 3.0);
    }
}
