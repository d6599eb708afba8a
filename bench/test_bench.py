"""Unit tests of the benchmark's own arithmetic and process handling.

python3 -m unittest discover -s bench -p 'test_*.py'
"""
import importlib.machinery
import importlib.util
import json
import os
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import benchlib as bl  # noqa: E402


def load_compare():
    loader = importlib.machinery.SourceFileLoader("compare", os.path.join(HERE, "compare"))
    spec = importlib.util.spec_from_loader("compare", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


compare = load_compare()


class OnTime(unittest.TestCase):
    def test_regular_requests_are_on_time(self):
        requests = [(100.0 + 5 * k + i * 0.01, i, 200) for k in range(7) for i in range(3)]
        self.assertEqual(compare.on_time(requests, range(3), 100.0, 131.0, 5), (18, 18))

    def test_a_gap_over_one_and_a_half_intervals_is_late(self):
        times = [100, 105, 113, 118]  # 8 s > 7.5 s
        requests = [(t, 0, 200) for t in times]
        self.assertEqual(compare.on_time(requests, [0], 100, 120, 5), (2, 3))

    def test_a_url_never_requested_counts_every_missed_slot(self):
        requests = [(t, 0, 200) for t in (100, 105, 110)]
        self.assertEqual(compare.on_time(requests, [0, 1], 100, 110, 5), (2, 4))

    def test_silence_at_the_edges_of_the_window_is_late(self):
        requests = [(t, 0, 200) for t in (110, 115)]  # nothing in the first 10 s, nor the last 15 s
        self.assertEqual(compare.on_time(requests, [0], 100, 130, 5), (1, 3))

    def test_requests_outside_the_window_are_ignored(self):
        requests = [(t, 0, 200) for t in (90, 100, 105, 110, 140)]
        self.assertEqual(compare.on_time(requests, [0], 100, 110, 5), (2, 2))


class Bodies(unittest.TestCase):
    def test_bodies_are_deterministic_statuspage_summaries(self):
        self.assertEqual(compare.statuspage_body(7, "s"), compare.statuspage_body(7, "s"))
        self.assertNotEqual(compare.statuspage_body(7, "s"), compare.statuspage_body(8, "s"))
        indicators = set()
        for i in range(300):
            body = compare.statuspage_body(i, "seed")
            self.assertTrue(5_500 <= len(body) <= 9_000, len(body))
            page = json.loads(body)
            self.assertIn("id", page["page"])
            leaves = [c for c in page["components"] if not c["group"]]
            self.assertEqual(len(leaves), compare.COMPONENTS_PER_PAGE)
            self.assertEqual(len({c["id"] for c in page["components"]}), len(page["components"]))
            indicators.add(page["status"]["indicator"])
        self.assertIn("none", indicators)
        self.assertGreater(len(indicators), 1, "some pages are not all operational")


class SmokeVerdict(unittest.TestCase):
    ROW = {"n": 50, "probes": 400, "expected_probes": 400.0, "failures_total": 0.0, "non_200": 0,
           "targets_succeeding": 50, "targets_reported": 50, "window_s": 8.0}

    def test_passes_when_every_probe_happened_and_none_failed(self):
        compare.smoke_verdict(dict(self.ROW))

    def test_fails_on_missing_probes_failures_or_unhealthy_targets(self):
        for change in ({"probes": 359}, {"failures_total": 1.0}, {"non_200": 2}, {"targets_succeeding": 49},
                       {"targets_reported": 0, "targets_succeeding": 0}):
            with self.subTest(change=change), self.assertRaises(SystemExit) as raised:
                compare.smoke_verdict({**self.ROW, **change})
            self.assertIn("smoke FAILED", str(raised.exception.code))


class Goals(unittest.TestCase):
    @staticmethod
    def row(system, n, us, saturated=False):
        return {"system": system, "n": n, "exporter_us_per_probe": us, "total_us_per_probe": us * 1.5,
                "probes_per_s": n / 5, "on_time_pct": 100.0, "saturated": saturated, "failures": 0}

    def cpu_goal(self, rows):
        return compare.goals({"rows": rows})[0]

    def test_cpu_goal_compares_with_blackbox_at_5000(self):
        rows = [self.row("ours", 5000, 90), self.row("blackbox", 5000, 1000)]
        self.assertEqual(self.cpu_goal(rows)[2], "PASS")
        rows[0]["exporter_us_per_probe"] = 110
        self.assertEqual(self.cpu_goal(rows)[2], "FAIL")

    def test_a_saturated_blackbox_is_replaced_by_its_largest_steady_figure(self):
        rows = [self.row("ours", 5000, 150), self.row("blackbox", 1000, 1400),
                self.row("blackbox", 100, 2000), self.row("blackbox", 5000, 3500, saturated=True)]
        goal, figure, verdict = self.cpu_goal(rows)
        self.assertEqual(verdict, "FAIL", figure)  # 150 / 1400 > 0.1, though 150 / 3500 < 0.1
        self.assertIn("its figure at 1,000", figure)

    def render_goal(self, render):
        return [g for g in compare.goals({"rows": [], "render": render}) if "render p99" in g[0]][0]

    def test_render_goal_is_judged_on_plain_and_reports_spaced_gzip_scrapes(self):
        kind = lambda p99: {"p50_ms": p99 / 2, "p99_ms": p99, "max_ms": p99, "bytes": 41 << 20, "first_ms": None}
        render = {"n": 10000, "plain": kind(49.0), "gzip": kind(20.0), "client_floor_p99_ms": 30.0,
                  "gzip_spaced": {"scrapes": 5, "apart_s": 5.0, "p50_ms": 47.25, "max_ms": 61.5}}
        goal, figure, verdict = self.render_goal(render)
        self.assertEqual(verdict, "PASS", figure)
        self.assertIn("gzip 5 scrapes 5 s apart (every target probed in between): p50 47.2 / max 61.5 ms", figure)
        render["plain"] = kind(51.0)
        self.assertEqual(self.render_goal(render)[2], "FAIL")
        del render["gzip_spaced"]  # a JSON of an older run has no spaced scrapes
        self.assertNotIn("apart", self.render_goal(render)[1])

    def test_saturated_means_too_few_probes_or_too_many_failures(self):
        self.assertFalse(compare.saturated(1000, 1000, 0))
        self.assertFalse(compare.saturated(950, 1000, 9))
        self.assertTrue(compare.saturated(899, 1000, 0))
        self.assertTrue(compare.saturated(970, 1000, 14_536))
        self.assertTrue(compare.saturated(0, 1000, 0))


class Helpers(unittest.TestCase):
    def test_percentile(self):
        values = sorted(float(v) for v in range(1, 101))
        self.assertEqual(bl.percentile(values, 50), 51.0)
        self.assertEqual(bl.percentile(values, 99), 99.0)
        self.assertEqual(bl.percentile([3.0], 99), 3.0)
        self.assertNotEqual(bl.percentile([], 50), bl.percentile([], 50))  # NaN

    def test_metric_sums(self):
        text = ('# TYPE upstream_probe_failures_total counter\n'
                'upstream_probe_failures_total{target="a",reason="dns"} 2\n'
                'upstream_probe_failures_total{target="b",reason="tls"} 3\n'
                'upstream_probe_success{target="a"} 1\nupstream_probe_success{target="b"} 0\n')
        self.assertEqual(bl.total(text, "upstream_probe_failures_total"), 5)
        self.assertEqual(bl.samples(text, "upstream_probe_success"), [1.0, 0.0])

    def test_own_cpu_and_memory_are_readable(self):
        self.assertGreater(bl.cpu_seconds(os.getpid()), 0)
        self.assertGreater(bl.peak_rss_mib(os.getpid()), 1)


def process_state(pid):
    """The state letter of /proc/<pid>/stat, None once the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None


class ChildProcesses(unittest.TestCase):
    def test_stop_all_ends_children_and_their_process_groups(self):
        children = bl.Children()
        # A shell with a grandchild in the same process group, as nginx's workers are.
        proc = children.spawn(["sh", "-c", "sleep 60 & echo $!; wait"], stdout=subprocess.PIPE, text=True)
        grandchild = int(proc.stdout.readline())
        started = time.monotonic()
        children.stop_all()
        self.assertLess(time.monotonic() - started, 6)
        self.assertIsNotNone(proc.poll())
        time.sleep(0.1)
        self.assertIn(process_state(grandchild), (None, "Z"), "the grandchild is gone (or a zombie for init)")
        proc.stdout.close()


if __name__ == "__main__":
    unittest.main()
