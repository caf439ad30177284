"""One PNG per figure of bench/results.json, drawn with matplotlib's Agg backend (no display).

python -m bench.plots [bench/results.json] [docs/bench]
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

PRODUCT = "#3465a4"
FLOOR = "#8ae234"
OTHER = "#f57900"

Figure = Callable[[dict[str, Any], Axes], str | None]


def _bars(ax: Axes, labels: list[str], values: list[float], colors: list[str], unit: str) -> None:
    bars = ax.bar(labels, values, color=colors)
    for bar, value in zip(bars, values, strict=True):
        ax.annotate(
            f"{value:,.0f}" if value >= 100 else f"{value:,.2f}",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set_ylabel(unit)


def ingest(results: dict[str, Any], ax: Axes) -> str | None:
    data = results.get("ingest")
    if not data or "floor" not in data:
        return None
    labels = ["identify\n(HTTP)", "track/page\n(HTTP)", "all\n(HTTP)", "floor\n(UNWIND MERGE)"]
    values = [
        data["identify"]["events_per_s"],
        data["track"]["events_per_s"],
        data["events_per_s"],
        data["floor"]["events_per_s"],
    ]
    _bars(ax, labels, values, [PRODUCT, PRODUCT, PRODUCT, FLOOR], "events/s")
    ax.axhline(10_000, color="red", linestyle="--", linewidth=1, label="target 10,000/s")
    ax.legend(fontsize=8)
    ax.set_title(f"Ingestion over HTTP, resolution on (ratio to floor {data['ratio_to_floor']})")
    return "ingest"


def import_rows(results: dict[str, Any], ax: Axes) -> str | None:
    data = results.get("import")
    if not data:
        return None
    kinds = list(data["kinds"])
    values = [data["kinds"][k]["rows_per_s"] for k in kinds]
    _bars(
        ax, [*kinds, "all"], [*values, data["rows_per_s"]], [PRODUCT] * (len(kinds) + 1), "rows/s"
    )
    ax.set_title("CRM import (Salesforce exports) through customer-graph import")
    return "import"


def profile_page(results: dict[str, Any], ax: Axes) -> str | None:
    data = results.get("profile_page")
    if not data:
        return None
    clients = sorted(data["by_clients"], key=int)
    x = [int(c) for c in clients]
    for key, style in (("p50_ms", "-o"), ("p95_ms", "-s"), ("p99_ms", "-^")):
        ax.plot(x, [data["by_clients"][c][key] for c in clients], style, color=PRODUCT, label=key)
    for key, style in (("floor_p50_ms", "--o"), ("floor_p95_ms", "--s")):
        ax.plot(x, [data["by_clients"][c][key] for c in clients], style, color=FLOOR, label=key)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(x, [str(c) for c in x])
    ax.set_xlabel("concurrent clients")
    ax.set_ylabel("ms")
    ax.axhline(20, color="red", linestyle="--", linewidth=1, label="p95 target 20 ms")
    twin = ax.twinx()
    twin.bar(x, [data["by_clients"][c]["requests_per_s"] for c in clients], alpha=0.15,
             color=OTHER, width=[0.3 * v for v in x], label="requests/s")  # fmt: skip
    twin.set_ylabel("requests/s (bars)")
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(f"Profile page over HTTP at {data['records']:,} records vs Cypher floor")
    return "profile_page"


def long_list(results: dict[str, Any], ax: Axes) -> str | None:
    data = results.get("long_list")
    if not data:
        return None
    _bars(
        ax,
        ["GraphQL over HTTP", "Cypher floor"],
        [data["per_item_us"], data["floor_per_item_us"]],
        [PRODUCT, FLOOR],
        "µs per item (p50)",
    )
    ax.set_title(f"{data['items']} timeline items in one query: {data['p50_ms']} ms p50")
    return "long_list"


def scale(results: dict[str, Any], ax: Axes) -> str | None:
    points = [p for p in results.get("scale", {}).get("points", []) if "profile_page" in p]
    if not points:
        return None
    x = [p["records"] for p in points]
    ax.plot(x, [p["profile_page"]["p50_ms"] for p in points], "-o", color=PRODUCT,
            label="profile page p50")  # fmt: skip
    ax.plot(x, [p["profile_page"]["p95_ms"] for p in points], "-s", color=PRODUCT, alpha=0.6,
            label="profile page p95")  # fmt: skip
    ax.plot(x, [p["profile_page"]["floor_p50_ms"] for p in points], "--o", color=FLOOR,
            label="profile page floor p50")  # fmt: skip
    lookups = [p for p in points if "profile_by_identifier" in p]
    if lookups:
        ax.plot([p["records"] for p in lookups],
                [p["profile_by_identifier"]["p50_ms"] for p in lookups], "-D", color=OTHER,
                label="profileByIdentifier p50")  # fmt: skip
        ax.plot([p["records"] for p in lookups],
                [p["profile_by_identifier"]["floor_p50_ms"] for p in lookups], "--D",
                color=OTHER, alpha=0.5, label="profileByIdentifier floor p50")  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("customer records")
    ax.set_ylabel("ms (one client)")
    ax.legend(fontsize=7)
    ax.set_title("Scale: latency against graph size")
    return "scale"


def write_path(results: dict[str, Any], ax: Axes) -> str | None:
    steps = results.get("write_path", {}).get("steps", [])
    if not steps:
        return None
    labels = [f"to {s['total_records']:,}" for s in steps]
    _bars(ax, labels, [s["records_per_s"] or 0 for s in steps], [PRODUCT] * len(steps),
          "customer records/s")  # fmt: skip
    ax.set_title("Write path (write_batch, resolution on) while loading")
    return "write_path"


def re_resolution(results: dict[str, Any], ax: Axes) -> str | None:
    data = results.get("re_resolution")
    if not data:
        return None
    points = data.get("points", [data])
    labels = [f"{p['records']:,} records" for p in points]
    _bars(ax, labels, [p["seconds"] for p in points], [PRODUCT] * len(points), "seconds")
    rates = ", ".join(f"{p['records_per_s']:,.0f}" for p in points)
    ax.set_title(f"Full re-resolution: {rates} records/s")
    return "re_resolution"


def quality(results: dict[str, Any], ax: Axes) -> str | None:
    data = results.get("quality")
    if not data:
        return None
    names = ["resolver_vs_truth", "oracle_vs_truth", "resolver_vs_oracle"]
    width = 0.35
    xs = range(len(names))
    ax.bar([x - width / 2 for x in xs], [data[n]["precision"] for n in names], width,
           color=PRODUCT, label="precision")  # fmt: skip
    ax.bar([x + width / 2 for x in xs], [data[n]["recall"] for n in names], width,
           color=OTHER, label="recall")  # fmt: skip
    ax.set_xticks(list(xs), [n.replace("_", " ") for n in names])
    ax.set_ylim(0, 1.2)
    for container in ax.containers:
        ax.bar_label(container, fmt="%.3f", fontsize=7)  # type: ignore[arg-type]
    ax.legend(fontsize=8, loc="upper center", ncol=2)
    ax.set_title("Resolution quality: same-person pairs")
    return "quality"


def memory(results: dict[str, Any], ax: Axes) -> str | None:
    data = results.get("memory")
    if not data or data.get("api_peak_rss_mb") is None:
        return None
    _bars(ax, ["peak (VmHWM)", "at end (VmRSS)"],
          [data["api_peak_rss_mb"], data["api_rss_at_end_mb"] or 0], [PRODUCT, OTHER],
          "MiB")  # fmt: skip
    ax.set_title("Memory of the API process (uvicorn)")
    return "memory"


FIGURES: tuple[Figure, ...] = (
    ingest,
    import_rows,
    profile_page,
    long_list,
    scale,
    write_path,
    re_resolution,
    quality,
    memory,
)


def plot_all(results: dict[str, Any], out_dir: Path) -> list[Path]:
    """Draw every figure the results hold; return the PNG paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for draw in FIGURES:
        fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
        try:
            name = draw(results, ax)
            if name is None:
                continue
            ax.text(0.99, 0.01, f"size={results.get('size')}", transform=ax.transAxes,
                    ha="right", va="bottom", fontsize=7, color="grey")  # fmt: skip
            fig.tight_layout()
            path = out_dir / f"{name}.png"
            fig.savefig(path)
            paths.append(path)
        finally:
            plt.close(fig)
    return paths


def main(argv: list[str]) -> int:
    results_path = Path(argv[0]) if argv else Path("bench/results.json")
    out_dir = Path(argv[1]) if len(argv) > 1 else Path("docs/bench")
    for path in plot_all(json.loads(results_path.read_text()), out_dir):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
