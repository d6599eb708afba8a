"""Helpers shared by the benchmark scripts in bench/ (Python 3 stdlib only).

Reading a process's CPU and memory from /proc, free loopback ports, waiting
for an HTTP endpoint, summing a metric over a /metrics body, percentiles,
and `Children`: the one place that starts child processes, each in its own
process group and tied to this process's life, and stops them all on exit,
on Ctrl-C, on SIGTERM and on exceptions.
"""
import atexit
import ctypes
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICKS = os.sysconf("SC_CLK_TCK")
PR_SET_PDEATHSIG = 1
try:
    # Looked up once here: the child calls it between fork and exec.
    _PRCTL = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):
    _PRCTL = None


def default_binary(profile="release"):
    """The exporter binary cargo builds for `profile`, honouring CARGO_TARGET_DIR."""
    target_dir = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return os.path.join(target_dir, profile, "upstream-exporter")


def fixture_bytes(relative):
    """A test fixture of tests/fixtures/ (copies of real recorded bodies)."""
    with open(os.path.join(ROOT, "tests/fixtures", relative), "rb") as f:
        return f.read()


def free_port():
    """A free TCP port on 127.0.0.1 (bound then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    """utime + stime of the whole process (all threads, live and exited), in seconds.

    Resolution is one clock tick (1/SC_CLK_TCK, usually 10 ms).
    """
    with open(f"/proc/{pid}/stat") as f:
        # The command name may contain spaces and parentheses: split after the last ')'.
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def status_kib(pid, key):
    """A `kB` field of /proc/<pid>/status (VmRSS, VmHWM, ...), 0 if absent."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def rss_mib(pid):
    """Resident memory now."""
    return status_kib(pid, "VmRSS") / 1024


def peak_rss_mib(pid):
    """Peak resident memory since the process started (VmHWM)."""
    return status_kib(pid, "VmHWM") / 1024


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def child_pids(pid):
    """Direct children of a process (e.g. nginx's workers)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def percentile(sorted_values, p):
    """Nearest-rank percentile of an already sorted list; NaN when empty."""
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, int(round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


def scrape(port, path="/metrics", timeout=10):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
        return r.read().decode()


def total(metrics, name):
    """Sum of every sample of `name` (with labels) in a text exposition."""
    return sum(float(m) for m in re.findall(rf"^{name}{{[^}}]*}} (\S+)$", metrics, re.M))


def samples(metrics, name):
    """Values of every sample of `name` (with labels) in a text exposition."""
    return [float(m) for m in re.findall(rf"^{name}{{[^}}]*}} (\S+)$", metrics, re.M)]


def wait_http(url, timeout, proc=None, interval=0.05):
    """Poll `url` until it answers 200; raise if `timeout` passes or `proc` exits."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                r.read()
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode} before {url} answered")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")
        time.sleep(interval)


def _die_with_parent():
    """Runs in the child before exec: SIGKILL it if this (parent) process dies,
    so even a SIGKILLed benchmark leaves nothing behind."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, int(signal.SIGKILL))


class Children:
    """Every process the benchmark started; `stop_all` runs at exit whatever happens.

    Each child gets its own process group (so nginx's workers go with their
    master), dies with this process (PR_SET_PDEATHSIG), and is stopped with
    SIGTERM, then SIGKILL after a grace period. SIGINT, SIGTERM and SIGHUP
    become SystemExit so `finally` blocks run.
    """

    def __init__(self):
        self.procs = []
        atexit.register(self.stop_all)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

    @staticmethod
    def _on_signal(signum, _frame):
        raise SystemExit(f"stopped by signal {signal.Signals(signum).name}")

    def spawn(self, args, **kwargs):
        proc = subprocess.Popen(args, start_new_session=True, preexec_fn=_die_with_parent, **kwargs)
        self.procs.append(proc)
        return proc

    def stop(self, proc, grace=10.0):
        """SIGTERM the child's process group, SIGKILL it after `grace` seconds; its exit code.

        The child is reaped only after its group has been signalled for the
        last time: until then it is a zombie, so its pid, which is the group
        id, cannot have been reused by an unrelated process.
        """
        if proc.returncode is None:
            self._signal_group(proc, signal.SIGTERM)
            if not self._exited(proc, grace):
                self._signal_group(proc, signal.SIGKILL)
                self._exited(proc, None)
            # Workers of a stopped master (same group) must not outlive it.
            self._signal_group(proc, signal.SIGKILL)
            proc.wait()
        if proc in self.procs:
            self.procs.remove(proc)
        return proc.returncode

    @staticmethod
    def _exited(proc, timeout):
        """Wait up to `timeout` seconds (None: for ever) for the child to exit, without reaping it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                if os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is not None:
                    return True
            except ChildProcessError:
                return True  # reaped already
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.02)

    @staticmethod
    def _signal_group(proc, sig):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def stop_all(self):
        for proc in list(reversed(self.procs)):
            self.stop(proc, grace=5.0)
