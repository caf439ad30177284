"""CPU time of the processes a figure runs on: where its time goes, per event or request.

Latency and throughput say how long users wait; CPU seconds say who kept the two cores busy
meanwhile. A `CpuMeter` reads /proc/PID/task/*/stat (user + system time of every thread) before
and after a measurement, for the API process, the Neo4j JVM and the bench process itself. In
the JVM it also tells the JIT compiler threads and the garbage collector apart from the rest:
a freshly started Neo4j compiles its hot code for minutes, and that compiling runs on the same
two cores as the queries being measured.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TICKS_PER_S = os.sysconf("SC_CLK_TCK")

# Thread names as /proc gives them (at most 15 characters).
JIT_THREAD_PREFIXES = ("C1 CompilerThre", "C2 CompilerThre")
GC_THREAD_PREFIXES = ("GC Thread", "G1 ")


@dataclass(frozen=True, slots=True)
class ProcessCpu:
    total_s: float = 0.0
    jit_s: float = 0.0
    gc_s: float = 0.0

    @property
    def jit_share(self) -> float:
        """The share of this CPU that went to compiling (0 when there was none)."""
        return self.jit_s / self.total_s if self.total_s else 0.0

    def __sub__(self, other: ProcessCpu) -> ProcessCpu:
        return ProcessCpu(
            self.total_s - other.total_s, self.jit_s - other.jit_s, self.gc_s - other.gc_s
        )


def process_cpu(pid: int) -> ProcessCpu:
    """CPU seconds used so far by every live thread of `pid` (zero if it is gone)."""
    total = jit = gc = 0.0
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return ProcessCpu()
    for task in tasks:
        try:
            raw = (task / "stat").read_text()
        except OSError:
            continue  # the thread ended meanwhile
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        seconds = (int(fields[11]) + int(fields[12])) / TICKS_PER_S  # utime, stime
        total += seconds
        if name.startswith(JIT_THREAD_PREFIXES):
            jit += seconds
        elif name.startswith(GC_THREAD_PREFIXES):
            gc += seconds
    return ProcessCpu(total, jit, gc)


class CpuMeter:
    """CPU used by named processes between `start()` and `stop()`."""

    def __init__(self, pids: Mapping[str, int | None]) -> None:
        self.pids = {name: pid for name, pid in pids.items() if pid is not None}
        self._before: dict[str, ProcessCpu] = {}

    def start(self) -> None:
        self._before = {name: process_cpu(pid) for name, pid in self.pids.items()}

    def stop(self) -> dict[str, ProcessCpu]:
        return {
            name: process_cpu(pid) - self._before.get(name, ProcessCpu())
            for name, pid in self.pids.items()
        }


def cpu_summary(used: Mapping[str, ProcessCpu], units: int, seconds: float) -> dict[str, Any]:
    """Per process: CPU µs per unit (event or request) and cores kept busy; for the JVM, the
    share of its CPU spent compiling (JIT) and collecting garbage."""
    out: dict[str, Any] = {}
    for name, cpu in used.items():
        row: dict[str, Any] = {
            "cpu_us_per_unit": round(cpu.total_s * 1e6 / units, 1) if units else None,
            "cores_busy": round(cpu.total_s / seconds, 2) if seconds else None,
        }
        if cpu.jit_s or cpu.gc_s:
            row["jit_share"] = round(cpu.jit_share, 3) if cpu.total_s else None
            row["gc_share"] = round(cpu.gc_s / cpu.total_s, 3) if cpu.total_s else None
            row["cpu_us_per_unit_without_jit"] = (
                round((cpu.total_s - cpu.jit_s) * 1e6 / units, 1) if units else None
            )
        out[name] = row
    return out


def cpu_ceiling(
    phases: Mapping[str, tuple[int, float, Mapping[str, Mapping[str, Any]]]], cores: int
) -> dict[str, dict[str, Any]]:
    """What the CPU a measurement spent per unit allows: the rate at which it would run with
    `cores` busy all the time, beside the cores it kept busy.

    `phases` maps a name to (units, seconds, `cpu_summary` of the phase); "all" adds the phases
    up. A rate is bounded by CPU alone only when the processes keep every core busy: the ratio
    of the measured rate to this one is the share of the cores they did keep busy.
    """
    out: dict[str, dict[str, Any]] = {}
    total_units = 0
    total_seconds = total_cpu_s = 0.0
    for name, (units, seconds, summary) in phases.items():
        cpu_us = sum(row.get("cpu_us_per_unit") or 0.0 for row in summary.values())
        cpu_s = cpu_us * units / 1e6
        out[name] = _ceiling_row(units, seconds, cpu_s, cores)
        total_units += units
        total_seconds += seconds
        total_cpu_s += cpu_s
    out["all"] = _ceiling_row(total_units, total_seconds, total_cpu_s, cores)
    return out


def _ceiling_row(units: int, seconds: float, cpu_s: float, cores: int) -> dict[str, Any]:
    return {
        "cpu_us_per_unit": round(cpu_s * 1e6 / units, 1) if units else None,
        "cores_busy": round(cpu_s / seconds, 2) if seconds else None,
        "units_per_s_at_full_cpu": round(units * cores / cpu_s, 1) if cpu_s else None,
    }
