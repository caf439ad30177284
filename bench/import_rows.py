"""Import throughput and memory: `customer-graph import` of a generated Salesforce Contact export.

    python -m bench.import_rows [--rows 200000] [--small 20000] [--batch-size 500]
                                [--concurrency 1] [--keep]

Starts a private Neo4j under `.local/bench-import-neo4j/<port>` on a free port (never the shared
one), writes a Salesforce Contact CSV of `--rows` rows (and one of `--small` rows), imports each
through the real CLI in its own process, and prints rows/s and the importer's peak RSS for both:
a streaming importer's peak does not grow with the file. One contact in ten shares its email with
an earlier contact (a duplicate across the CRM), so resolution merges as it would on real data.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from customer_graph.graph.local import LocalNeo4j
from customer_graph.settings import PROJECT_ROOT, Settings

HOME = PROJECT_ROOT / ".local" / "bench-import-neo4j"
WORK = PROJECT_ROOT / ".local" / "bench-import"
HEADER = (
    "Id,FirstName,LastName,Email,Phone,MobilePhone,Title,AccountId,OwnerId,LeadSource,"
    "MailingCity,MailingCountry,CreatedDate,LastModifiedDate\n"
)
FIRST = ("Ana", "Ben", "Chen", "Diego", "Elif", "Farid", "Grace", "Hana", "Ivan", "Jana")
LAST = ("Lima", "Okafor", "Wei", "Costa", "Yilmaz", "Haddad", "Mensah", "Ito", "Petrov", "Weber")
TITLES = ("VP Operations", "Buyer", "Engineer", "Director of IT", "Analyst", "CFO")
AREA = {"s": 628, "l": 415}  # the small and the large file never share a phone
CITIES = (("San Francisco", "United States"), ("Berlin", "Germany"), ("Lyon", "France"))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_contacts(path: Path, rows: int, prefix: str, seed: int = 7) -> None:
    """A Salesforce Contact export: unique ids, 10% of people repeated from earlier rows.

    `prefix` ("s" or "l") keeps the files' ids, emails and phones apart.
    """
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write(HEADER)
        for n in range(rows):
            person = n if n < 10 or rng.random() >= 0.1 else rng.randrange(n)
            first, last = FIRST[person % 10], LAST[(person // 10) % 10]
            email = f"{first}.{last}.{prefix}{person}@bench.example".lower()
            number = 2_000_000 + person  # one phone per person, as unique as the email
            phone = f"+1 {AREA[prefix]} {number // 10_000:03d} {number % 10_000:04d}"
            city, country = CITIES[n % 3]
            f.write(
                f"003{prefix}{n:012d},{first},{last},{email},{phone},,{TITLES[n % 6]},"
                f"001{prefix}{n // 20:012d},005{prefix}{n % 50:012d},Web,{city},{country},"
                f"2023-0{1 + n % 9}-1{n % 10}T09:00:00.000+0000,2024-02-0{1 + n % 9}T10:00:00Z\n"
            )


@dataclass
class Measured:
    rows: int
    seconds: float
    peak_rss_mb: float
    summary: dict[str, object]

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds


def run_import(path: Path, source: str, uri: str, batch_size: int, concurrency: int) -> Measured:
    """Import in a child process; its own peak RSS comes from wait4's rusage."""
    env = {**os.environ, "NEO4J_URI": uri}
    argv = [sys.executable, "-m", "customer_graph.cli", "import", str(path)]
    argv += ["--kind", "contacts", "--preset", "salesforce", "--source", source]
    argv += ["--batch-size", str(batch_size), "--concurrency", str(concurrency)]
    argv += ["--no-progress", "--json"]
    out_path, err_path = path.with_suffix(".out"), path.with_suffix(".err")
    started = time.perf_counter()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        child = subprocess.Popen(argv, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"import exited {child.returncode}: {err_path.read_text()[-2000:]}")
    summary = json.loads(out_path.read_text().strip().splitlines()[-1])
    return Measured(int(summary["read"]), seconds, usage.ru_maxrss / 1024, summary)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--small", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=1, help="chunks written at once")
    parser.add_argument("--keep", action="store_true", help="keep the Neo4j folder afterwards")
    args = parser.parse_args()

    settings = Settings()
    port = free_port()
    local = LocalNeo4j(
        home=HOME / str(port),
        port=port,
        user=settings.neo4j_user,
        password=settings.neo4j_password,
        heap="2g",
        pagecache_mb=1024,
    )
    WORK.mkdir(parents=True, exist_ok=True)
    small, large = WORK / f"contacts-{args.small}.csv", WORK / f"contacts-{args.rows}.csv"
    write_contacts(small, args.small, "s")
    write_contacts(large, args.rows, "l")
    print(f"starting a private Neo4j on port {port} ({local.home})", flush=True)
    local.start(timeout=300)
    try:
        results = {}
        for name, path in (("small", small), ("large", large)):
            measured = run_import(
                path, f"bench-{name}", local.uri, args.batch_size, args.concurrency
            )
            results[name] = measured
            s = measured.summary
            print(
                f"{name}: {measured.rows:,} rows in {measured.seconds:.1f} s = "
                f"{measured.rows_per_s:,.0f} rows/s end to end "
                f"({s['rowsPerSecond']:,.0f} rows/s in the import loop); "
                f"written {s['written']:,}, merged {s['merged']:,}, "
                f"new profiles {s['profilesCreated']:,}, rejected {s['rejected']:,}; "
                f"importer peak RSS {measured.peak_rss_mb:.0f} MB",
                flush=True,
            )
        growth = results["large"].peak_rss_mb / results["small"].peak_rss_mb
        print(
            f"peak RSS {results['small'].peak_rss_mb:.0f} MB for {args.small:,} rows, "
            f"{results['large'].peak_rss_mb:.0f} MB for {args.rows:,} rows "
            f"(x{growth:.2f} for x{args.rows / args.small:.0f} the rows)"
        )
    finally:
        local.stop()
        if not args.keep:
            shutil.rmtree(local.home, ignore_errors=True)


if __name__ == "__main__":
    main()
