#!/usr/bin/env python3
"""Load figure for the core exporter: N statuspage targets on a local upstream.

Serves the ~5.7 KB GitHub summary.json fixture from a local keep-alive HTTP/1.1
server on 127.0.0.1 (one distinct URL per target), runs the release binary with
N targets at the given interval, and after a warm-up measures over a fixed
window: the exporter's CPU time (utime+stime from /proc/<pid>/stat), the
probes it ran (sum of upstream_probes_total), CPU per 1,000 probes, failures,
and resident memory at the end. Loopback only; stops everything it started.

  cargo build --release && python3 bench/core_load.py --targets 1000 --interval 10 --window 120
"""
import argparse
import http.server
import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import Children, cpu_seconds, default_binary, fixture_bytes, free_port, rss_mib, scrape, total  # noqa: E402

BODY = fixture_bytes("statuspage/github-summary-all-operational-2026.json")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real status pages serve

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args):
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", type=int, default=1000)
    ap.add_argument("--interval", type=float, default=10)
    ap.add_argument("--warmup", type=float, default=None, help="seconds before measuring (default: one interval)")
    ap.add_argument("--window", type=float, default=120)
    ap.add_argument("--binary", default=default_binary())
    args = ap.parse_args()
    warmup = args.interval if args.warmup is None else args.warmup

    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    upstream.daemon_threads = True
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    up = upstream.server_address[1]

    tmp = tempfile.mkdtemp()
    cfg = os.path.join(tmp, "exporter.yaml")
    with open(cfg, "w") as f:
        interval_ms = int(args.interval * 1000)
        f.write(f"defaults:\n  interval: {interval_ms}ms\n  timeout: {min(5000, interval_ms // 2)}ms\n")
        f.write("per_host_concurrency: 16\ntargets:\n")
        for i in range(args.targets):
            f.write(f"  - name: t{i}\n    statuspage: {{ url: \"http://127.0.0.1:{up}/p{i}\" }}\n")
    port = free_port()
    children = Children()
    proc = children.spawn([args.binary, f"--config.file={cfg}", f"--web.listen-address=127.0.0.1:{port}",
                           "--log.level=warn"])
    try:
        time.sleep(warmup)
        m0 = scrape(port)
        c0, p0 = cpu_seconds(proc.pid), total(m0, "upstream_probes_total")
        time.sleep(args.window)
        m1 = scrape(port)
        c1, p1 = cpu_seconds(proc.pid), total(m1, "upstream_probes_total")
        fails = total(m1, "upstream_probe_failures_total")
        probes = p1 - p0
        cpu = c1 - c0
        print(f"targets={args.targets} interval={args.interval}s window={args.window:.0f}s")
        print(f"probes in window: {probes:.0f} (expected ~{args.targets * args.window / args.interval:.0f}), failures total: {fails:.0f}")
        print(f"exporter CPU in window: {cpu:.2f}s  => {1000 * cpu / max(probes, 1):.3f} s CPU per 1,000 probes "
              f"({1e6 * cpu / max(probes, 1):.0f} us per probe)")
        print(f"resident memory after {warmup + args.window:.0f}s: {rss_mib(proc.pid):.1f} MiB")
        if fails > 0 or probes == 0:
            sys.exit(1)
    finally:
        children.stop(proc, grace=15)
        upstream.shutdown()


if __name__ == "__main__":
    main()
