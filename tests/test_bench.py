"""The watch-mode benchmark runs end to end (`--quick`). Its timing targets are the
benchmark's business, not the tests': only completion and the report's shape are checked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench" / "watch_latency.py"


def test_quick_benchmark_runs_and_reports(tmp_path: Path) -> None:
    out_json = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--json", str(out_json)],
        capture_output=True, text=True, timeout=90, cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    for label in (
        "machine:",
        "manifest save -> applied",
        "out-of-band change -> healed",
        "first reconcile (creates)",
        "no-op pass",
        "idle CPU over",
        "RSS idle",
        "save -> applied p99",
        "out-of-band -> healed p99",
        "idle CPU, % of one core",
        "idle CPU + resync every 60 s",
        "idle RSS (VmRSS)",
        "peak RSS (VmHWM, after a resync)",
        "RSS after 5 saves",
    ):
        assert any(line.lstrip().startswith(label) for line in lines), (label, done.stdout)
    targets = [line for line in lines if line.rstrip().endswith(("PASS", "FAIL"))]
    assert len(targets) == 7, done.stdout

    results = json.loads(out_json.read_text())
    latency = results["latency"]
    assert latency["save_to_applied_ms"]["n"] == 10
    assert latency["save_to_applied_ms"]["wrong_value_after"] == 0
    assert latency["out_of_band_to_healed_ms"]["n"] == 10
    assert latency["out_of_band_to_healed_ms"]["not_healed_after"] == 0
    assert latency["out_of_band_to_healed_ms"]["actors_logged"] == ["intruder"]
    idle = results["idle"]
    assert idle["streams"] == 50
    assert idle["first_reconcile"]["counts"] == {"created": 50}
    assert idle["noop_pass"]["counts"] == {"unchanged": 50}
    assert idle["edits"]["saves"] == 5
    assert idle["edits"]["save_to_finished_ms"]["n"] == 5
    assert idle["daemon_exit_code"] == 0
    assert {t["name"] for t in results["targets"]} >= {"save -> applied p99"}


SCALE = ROOT / "bench" / "scale.py"


def test_quick_scale_benchmark_runs_and_reports(tmp_path: Path) -> None:
    out_json = tmp_path / "scale.json"
    done = subprocess.run(
        [sys.executable, str(SCALE), "--quick", "--json", str(out_json)],
        capture_output=True, text=True, timeout=180, cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    for label in ("machine:", "load average:", "| streams | plan s | floor s |", "| 200 |",
                  "validate at 200:", "manifest save -> applied", "out-of-band change -> healed"):
        assert any(line.startswith(label) for line in lines), (label, done.stdout)
    targets = [line for line in lines if line.rstrip().endswith(("PASS", "FAIL"))]
    assert len(targets) == 5, done.stdout

    results = json.loads(out_json.read_text())
    (size,) = results["sizes"]
    assert size["streams"] == 200 and size["reps"] == 1
    for key in ("plan_s", "plan_floor_s", "plan_bound_s", "apply_s", "apply_floor_s",
                "apply_floor_read_again_s", "daemon_cold_start_s", "validate_cpu_s",
                "plan_rss_mb", "daemon_idle_rss_mb"):
        assert size[key] > 0, key
    assert size["daemon_exit_codes"] == [0]
    assert size["validate_output"].startswith("100 manifest files valid: 200 streams")
    assert results["latency"]["save_to_applied_ms"]["n"] == 10
    assert results["latency"]["out_of_band_to_healed_ms"]["not_healed_after"] == 0


def test_quick_failover_benchmark_runs_and_reports(tmp_path: Path) -> None:
    out_json = tmp_path / "failover.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "failover.py"), "--quick", "--json", str(out_json)],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert any(line.startswith("kill -9 leader -> standby writes") for line in
               done.stdout.splitlines()), done.stdout
    failover = json.loads(out_json.read_text())["failover"]
    assert failover["failover_s"]["n"] == 2
    assert failover["writes_after_kill"] == 0
    assert failover["interleaved"] is False
    assert failover["writers"] == 3
