"""The harness's CPU accounting: it reads what /proc says a process used, and divides it right."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from bench.cpu import CpuMeter, ProcessCpu, cpu_ceiling, cpu_summary, process_cpu


def _spin(seconds: float) -> None:
    deadline = time.process_time() + seconds
    while time.process_time() < deadline:
        pass


def test_a_busy_loop_shows_in_the_meter_of_its_own_process() -> None:
    meter = CpuMeter({"self": os.getpid(), "absent": None})
    started = time.perf_counter()
    meter.start()
    _spin(0.3)
    used = meter.stop()
    wall = time.perf_counter() - started
    assert set(used) == {"self"}
    # Other threads of this process may run meanwhile, but no process can use more CPU than
    # its wall time on every core.
    assert 0.25 <= used["self"].total_s <= wall * (os.cpu_count() or 1) + 0.05
    assert used["self"].jit_s == 0.0


def test_another_process_is_measured_with_all_its_threads() -> None:
    code = (
        "import threading, time\n"
        "def spin():\n"
        "    end = time.process_time() + 0.4\n"
        "    while time.process_time() < end: pass\n"
        "t = threading.Thread(target=spin); t.start(); t.join()\n"
        "time.sleep(5)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 10
        while process_cpu(child.pid).total_s < 0.35 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process_cpu(child.pid).total_s >= 0.35
    finally:
        child.kill()
        child.wait()
    assert process_cpu(child.pid) == ProcessCpu()  # gone: nothing to read


def test_the_summary_divides_by_units_and_wall_time() -> None:
    used = {
        "api": ProcessCpu(total_s=2.0),
        "neo4j": ProcessCpu(total_s=4.0, jit_s=1.0, gc_s=0.2),
    }
    summary = cpu_summary(used, units=1_000, seconds=2.0)
    assert summary["api"] == {"cpu_us_per_unit": 2000.0, "cores_busy": 1.0}
    assert summary["neo4j"] == {
        "cpu_us_per_unit": 4000.0,
        "cores_busy": 2.0,
        "jit_share": 0.25,
        "gc_share": 0.05,
        "cpu_us_per_unit_without_jit": 3000.0,
    }


def test_the_ceiling_is_the_rate_at_every_core_busy() -> None:
    # 1,000 events in 2 s at 500 µs of the API's CPU and 500 of Neo4j's per event (1 s in all);
    # 3,000 more in 3 s at 200 µs per event.
    slow = cpu_summary(
        {"api": ProcessCpu(total_s=0.5), "neo4j": ProcessCpu(total_s=0.5, jit_s=0.1)},
        units=1_000,
        seconds=2.0,
    )
    fast = cpu_summary({"api": ProcessCpu(total_s=0.6)}, units=3_000, seconds=3.0)
    ceiling = cpu_ceiling({"slow": (1_000, 2.0, slow), "fast": (3_000, 3.0, fast)}, cores=2)
    assert ceiling["slow"] == {
        "cpu_us_per_unit": 1000.0,
        "cores_busy": 0.5,
        "units_per_s_at_full_cpu": 2000.0,
    }
    assert ceiling["fast"] == {
        "cpu_us_per_unit": 200.0,
        "cores_busy": 0.2,
        "units_per_s_at_full_cpu": 10000.0,
    }
    # All: 1.6 s of CPU for 4,000 events in 5 s.
    assert ceiling["all"] == {
        "cpu_us_per_unit": 400.0,
        "cores_busy": 0.32,
        "units_per_s_at_full_cpu": 5000.0,
    }
