"""Markdown tables of bench/results.json, one per figure, for docs/benchmarks.md.

    python -m bench.report [bench/results.json] [docs/benchmarks.md]

The tables replace what stands between the `<!-- results:SIZE:start -->` and
`<!-- results:SIZE:end -->` markers of the document; the prose around them is left alone.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def markers(size: str) -> tuple[str, str]:
    return f"<!-- results:{size}:start -->", f"<!-- results:{size}:end -->"


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if abs(value) < 1:
            return f"{value:.4f}"
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value).replace("<", "&lt;").replace(">", "&gt;")


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def render(results: dict[str, Any], plots: str | None = None) -> str:
    """Markdown for one run; `plots` is the PNG folder relative to docs/."""
    if plots is None:
        size = results.get("size", "default")
        plots = "bench" if size == "default" else f"bench/{size}"
    out: list[str] = []
    m = results.get("machine", {})
    out.append(
        f"Run: size `{results.get('size')}`, started {results.get('started_at')}, "
        f"{_fmt(results.get('seconds'))} s in all. Machine: {m.get('nproc')} cores "
        f"({m.get('cpu')}), {m.get('memory_gib')} GiB, Python {m.get('python')}; load average "
        f"at start {m.get('load_average_at_start')}. Bench Neo4j: heap "
        f"{results.get('neo4j', {}).get('heap')}, page cache "
        f"{results.get('neo4j', {}).get('pagecache_mb')} MB. Code: "
        f"{m.get('git_commit', 'commit not recorded')}."
    )
    targets = results.get("targets", {})
    if targets:
        out.append("### Targets\n")
        out.append(
            _table(
                ["target", "measured", "result"],
                [
                    [name, t.get("value"), "pass" if t.get("pass") else "**miss**"]
                    for name, t in targets.items()
                ],
            )
        )
    ingest = results.get("ingest")
    if ingest and "floor" in ingest:
        out.append("### Ingestion over HTTP (resolution on) vs raw UNWIND MERGE\n")
        floor = ingest["floor"]
        # Runs before 2026-12-06's morning timed the floor per row (customers, interactions).
        per_message = "identify_per_s" in floor
        identify_floor = floor["identify_per_s"] if per_message else floor["customers_per_s"]
        track_floor = floor["track_per_s"] if per_message else floor["interactions_per_s"]
        if per_message:
            out.append(
                "The floor writes what the same kind of messages write, timed per message: the "
                "identify messages' records, then the anonymous visitors' records with their "
                f"track and page events ({_fmt(floor.get('rows_per_s'))} rows/s, a visitor's "
                f"record counted apart: ratio {_fmt(ingest.get('ratio_to_floor_rows'))}).\n"
            )
        out.append(
            _table(
                ["what", "events", "events/s", "floor/s", "ratio"],
                [
                    [
                        "identify",
                        ingest["identify"]["events"],
                        ingest["identify"]["events_per_s"],
                        identify_floor,
                        ingest.get("identify_ratio_to_floor"),
                    ],
                    [
                        "track + page",
                        ingest["track"]["events"],
                        ingest["track"]["events_per_s"],
                        track_floor,
                        _ratio(ingest["track"]["events_per_s"], track_floor),
                    ],
                    [
                        "all",
                        ingest["identify"]["events"] + ingest["track"]["events"],
                        ingest["events_per_s"],
                        floor["events_per_s"],
                        ingest.get("ratio_to_floor"),
                    ],
                ],
            )
        )
        cpu_rows = [
            _cpu_row(label, part.get("cpu"))
            for label, part in (
                ("identify", ingest["identify"]),
                ("track + page", ingest["track"]),
                ("floor (all)", floor),
            )
            if part.get("cpu")
        ]
        if cpu_rows:
            warm = ingest.get("warmup") or {}
            shares = ", ".join(f"{x:.0%}" for x in warm.get("jit_share_by_round", ()))
            rounds = (
                f"; JIT share of Neo4j's CPU by round, the larger of identify's and track's: "
                f"{shares}"
                if shares
                else ""
            )
            # Runs from 2026-12-06's mid-morning measure in turns (`pairs`); earlier ones
            # measured again while the JIT was busy (`attempts`).
            attempts = ingest.get("attempts") or []
            pairs = ingest.get("pairs") or []
            again = ""
            if pairs:
                again = (
                    f"; ingestion and its floor measured in turns, {len(pairs)} times, this "
                    f"table from the turn with the median ratio (turn {ingest.get('median_pair')}"
                    "); the ratios of the turns in order: "
                    + ", ".join(_fmt(pair["ratio_to_floor"]) for pair in pairs)
                    + ", the JIT's share in each (identify/track): "
                    + ", ".join(
                        "/".join(f"{v or 0:.0%}" for v in pair["jit_share"].values())
                        for pair in pairs
                    )
                )
            elif len(attempts) > 1:
                again = (
                    "; measured "
                    + str(len(attempts))
                    + " times, the JIT's share in the attempts before the last: "
                    + ", ".join(
                        "/".join(f"{v:.0%}" for v in a["jit_share"].values()) for a in attempts[:-1]
                    )
                    + " (identify/track)"
                )
            out.append(
                "\nCPU per event (µs) and cores kept busy, per process; Neo4j's JIT compiler "
                f"apart (after a {_fmt(ingest.get('warmup_seconds'))} s warm-up{rounds}{again}):\n"
            )
            out.append(_table(CPU_HEADER, cpu_rows))
        ceiling = ingest.get("ceiling")
        if ceiling:
            cores = ceiling["cores"]
            out.append(
                f"\nWhat that CPU allows: the rate at {cores} cores kept busy all the time, at the "
                "CPU per event of all three processes together (the measured rate is this one "
                "times the share of the cores the processes kept busy):\n"
            )
            out.append(
                _table(
                    [
                        "what",
                        "CPU µs per event",
                        "cores kept busy",
                        f"events/s at {cores} cores",
                        "against the floor",
                    ],
                    [
                        [
                            label,
                            ceiling[name]["cpu_us_per_unit"],
                            ceiling[name]["cores_busy"],
                            ceiling[name]["units_per_s_at_full_cpu"],
                            ceiling[name].get("ratio_to_floor"),
                        ]
                        for name, label in (
                            ("identify", "identify"),
                            ("track", "track + page"),
                            ("all", "all"),
                        )
                    ],
                )
            )
        out.append(f"\n![ingest]({plots}/ingest.png)")
    imp = results.get("import")
    if imp:
        out.append("### CRM import (`customer-graph import`, Salesforce exports)\n")
        rows = [
            [k, v["rows"], v["seconds"], v["rows_per_s"], v.get("importer_peak_rss_mb")]
            for k, v in imp["kinds"].items()
        ]
        rows.append(["all", imp["rows"], imp["seconds"], imp["rows_per_s"], None])
        out.append(_table(["kind", "rows", "seconds", "rows/s", "importer peak RSS MiB"], rows))
        out.append(f"\n![import]({plots}/import.png)")
    page = results.get("profile_page")
    if page:
        out.append(
            f"### Profile page over HTTP at {_fmt(page['records'])} records vs Cypher floor\n"
        )
        rows = [
            [
                c,
                v["p50_ms"],
                v["p95_ms"],
                v["p99_ms"],
                v["requests_per_s"],
                v["floor_p50_ms"],
                v["floor_p95_ms"],
                v["floor_requests_per_s"],
                v["p50_ratio_to_floor"],
            ]
            for c, v in page["by_clients"].items()
        ]
        header = ["clients", "p50 ms", "p95 ms", "p99 ms", "req/s", "floor p50", "floor p95"]
        out.append(_table([*header, "floor req/s", "p50 ratio"], rows))
        cpu = page.get("cpu")
        if cpu:
            out.append("\nCPU per page (µs) and cores kept busy, one client, per process:\n")
            out.append(
                _table(
                    CPU_HEADER,
                    [_cpu_row(label, cpu.get(name)) for name, label in CPU_PAGE_ROWS],
                )
            )
        out.append(f"\n![profile page]({plots}/profile_page.png)")
    long_list = results.get("long_list")
    if long_list:
        out.append("### Long list: 1,000 timeline items in one query\n")
        out.append(
            _table(
                ["query", "items", "p50 ms", "µs/item", "floor p50 ms", "floor µs/item", "ratio"],
                [
                    [
                        long_list["mode"],
                        long_list["items"],
                        long_list["p50_ms"],
                        long_list["per_item_us"],
                        long_list["floor_p50_ms"],
                        long_list["floor_per_item_us"],
                        long_list["ratio_to_floor"],
                    ]
                ],
            )
        )
        out.append(f"\n![long list]({plots}/long_list.png)")
    points = results.get("scale", {}).get("points", [])
    if points:
        out.append("### Scale (one client)\n")
        rows = []
        for p in points:
            pp, pi = p.get("profile_page", {}), p.get("profile_by_identifier", {})
            rows.append(
                [
                    p["records"],
                    pp.get("p50_ms"),
                    pp.get("p95_ms"),
                    pp.get("floor_p50_ms"),
                    pi.get("p50_ms"),
                    pi.get("p95_ms"),
                    pi.get("floor_p50_ms"),
                ]
            )
        header = ["records", "page p50", "page p95", "page floor p50", "byIdentifier p50"]
        out.append(_table([*header, "byIdentifier p95", "byIdentifier floor p50"], rows))
        out.append(f"\n![scale]({plots}/scale.png)")
    steps = results.get("write_path", {}).get("steps", [])
    if steps:
        out.append("### Write path while loading (`write_batch`, resolution on)\n")
        rows = [
            [
                s["total_records"],
                s["customer_records"],
                s["records_per_s"],
                s["other_items"],
                s["other_items_per_s"],
                s.get("driver_retries_so_far"),
            ]
            for s in steps
        ]
        header = ["graph size after", "records", "records/s", "other items", "items/s"]
        out.append(_table([*header, "driver retries (cumulative)"], rows))
        out.append(f"\n![write path]({plots}/write_path.png)")
    rr = results.get("re_resolution")
    if rr:
        out.append("### Full re-resolution (`customer-graph resolve`)\n")
        out.append(
            _table(
                ["records", "seconds", "records/s", "profiles before", "after", "differences"],
                [
                    [
                        p["records"],
                        p["seconds"],
                        p["records_per_s"],
                        p.get("report", {}).get("profilesBefore"),
                        p.get("report", {}).get("profilesAfter"),
                        p.get("differences_found"),
                    ]
                    for p in rr.get("points", [rr])
                ],
            )
        )
        out.append(f"\n![re-resolution]({plots}/re_resolution.png)")
    q = results.get("quality")
    if q:
        out.append("### Resolution quality (same-person pairs)\n")
        rows = [
            [
                name.replace("_", " "),
                q[name]["precision"],
                q[name]["recall"],
                q[name]["f1"],
                q[name]["records"],
                q[name]["persons"],
                q[name]["profiles"],
            ]
            for name in ("resolver_vs_truth", "oracle_vs_truth", "resolver_vs_oracle")
        ]
        header = ["comparison", "precision", "recall", "F1", "records", "true groups"]
        out.append(_table([*header, "resolved groups"], rows))
        out.append(f"\n![quality]({plots}/quality.png)")
    mem = results.get("memory")
    if mem and mem.get("api_peak_rss_mb") is not None:
        out.append("### Memory of the API process\n")
        out.append(
            _table(
                ["peak RSS (VmHWM) MiB", "RSS at end MiB"],
                [[mem["api_peak_rss_mb"], mem["api_rss_at_end_mb"]]],
            )
        )
        out.append(f"\n![memory]({plots}/memory.png)")
    profiles = results.get("profiles")
    if profiles:
        out.append("### Where the time goes (pyinstrument, in-process replay)\n")
        for name, prof in profiles.items():
            out.append(
                f"`{name}`: {_fmt(prof.get('wall_s'))} s wall, {_fmt(prof.get('cpu_s'))} s CPU "
                f"(full report: `{prof['report']}`)\n"
            )
            packages = prof.get("by_package", {})
            if packages:
                rows = [[k, f"{v * 100:.1f}%"] for k, v in packages.items()]
                out.append(_table(["package (own time)", "share of samples"], rows))
            rows = [[f["frame"], f"{f['share'] * 100:.1f}%"] for f in prof["top_own_time"]]
            out.append(_table(["frame (own time)", "share of samples"], rows))
    errors = results.get("errors")
    if errors:
        out.append("### Not measured in this run\n")
        rows = [[k, " ".join(v.split())[:300].replace("|", "/")] for k, v in errors.items()]
        out.append(_table(["figure", "why"], rows))
    return "\n\n".join(out) + "\n"


CPU_HEADER = [
    "what",
    "API µs",
    "API cores",
    "Neo4j µs",
    "Neo4j cores",
    "Neo4j JIT share",
    "Neo4j µs without JIT",
    "bench process µs",
]
CPU_PAGE_ROWS = (("http", "over HTTP"), ("floor", "floor (driver in the bench process)"))


def _cpu_row(label: str, cpu: dict[str, Any] | None) -> list[Any]:
    cpu = cpu or {}
    api, neo4j, bench = cpu.get("api", {}), cpu.get("neo4j", {}), cpu.get("bench", {})
    return [
        label,
        api.get("cpu_us_per_unit"),
        api.get("cores_busy"),
        neo4j.get("cpu_us_per_unit"),
        neo4j.get("cores_busy"),
        neo4j.get("jit_share"),
        neo4j.get("cpu_us_per_unit_without_jit"),
        bench.get("cpu_us_per_unit"),
    ]


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def update(doc: Path, results: dict[str, Any]) -> None:
    """Replace the tables between the markers of the run's size in `doc` (append them if
    missing): each size (small, default, 1m) keeps its own block."""
    start, end = markers(str(results.get("size", "default")))
    text = doc.read_text() if doc.exists() else ""
    block = f"{start}\n\n{render(results)}\n{end}"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = head + block + tail
    else:
        text = text + ("\n" if text else "") + block + "\n"
    doc.write_text(text)


def main(argv: list[str]) -> int:
    results = json.loads(Path(argv[0] if argv else "bench/results.json").read_text())
    update(Path(argv[1] if len(argv) > 1 else "docs/benchmarks.md"), results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
