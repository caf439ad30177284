"""The harness's CPU accounting: it reads what /proc says a process used, and divides it right."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from bench.cpu import CpuMeter, ProcessCpu, cpu_summary, process_cpu


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
