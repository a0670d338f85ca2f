"""Streaming benchmark of the connector SDK with the demo connector.

Streams 100k, 300k and 1M demo accounts through ``Connector.execute`` with a filter set, counting emitted
messages, each size in a fresh subprocess so its peak RSS (``ru_maxrss``) is its own.

    python bench/stream_bench.py            # all sizes
    python bench/stream_bench.py 50000      # chosen sizes

Targets: at least 150,000 objects/s; peak RSS under 100 MiB and flat from 100k to 1M objects.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SIZES = (100_000, 300_000, 1_000_000)
TARGET_RATE = 150_000
TARGET_RSS_MIB = 100
FLAT_TOLERANCE_MIB = 5
FILTER = 'department == "Legal" || employeeType == "contractor"'


def measure(size: int) -> dict:
    sys.path.insert(0, str(REPO))
    from connectors.demo.connector import connector

    config = {
        "url": "https://demo.example.com",
        "apiToken": "demo",
        "users": size,
        "groups": 1000,
        "memberships": 3,
        "seed": 1,
        "filterString": FILTER,
    }
    counts = {"output": 0, "keepAlive": 0}

    def emit(kind, data):
        counts[kind] += 1

    started = time.perf_counter()
    result = connector.execute("std:account:list", config, emit=emit)
    elapsed = time.perf_counter() - started
    assert counts["output"] == result.sent and result.sent + result.filtered == size
    return {
        "size": size,
        "seconds": elapsed,
        "rate": size / elapsed,
        "sent": result.sent,
        "filtered": result.filtered,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # Linux: KiB
    }


def main(argv: list[str]) -> int:
    if argv[:1] == ["--one"]:
        print(json.dumps(measure(int(argv[1]))))
        return 0
    sizes = [int(a) for a in argv] or list(SIZES)
    print(f"filter: {FILTER}")
    print(f"{'objects':>10} {'seconds':>8} {'objects/s':>10} {'emitted':>9} {'filtered':>9} {'peak RSS':>10}")
    rows = []
    for size in sizes:
        proc = subprocess.run(
            [sys.executable, __file__, "--one", str(size)], capture_output=True, text=True, check=True
        )
        row = json.loads(proc.stdout)
        rows.append(row)
        print(
            f"{row['size']:>10,} {row['seconds']:>8.2f} {row['rate']:>10,.0f} {row['sent']:>9,} "
            f"{row['filtered']:>9,} {row['peak_rss_mib']:>6.1f} MiB"
        )
    rate_ok = all(r["rate"] >= TARGET_RATE for r in rows)
    rss = [r["peak_rss_mib"] for r in rows]
    rss_ok = max(rss) < TARGET_RSS_MIB
    flat_ok = max(rss) - min(rss) <= FLAT_TOLERANCE_MIB
    print(f"target: >= {TARGET_RATE:,} objects/s: {'met' if rate_ok else 'MISSED'}")
    print(
        f"target: peak RSS < {TARGET_RSS_MIB} MiB: {'met' if rss_ok else 'MISSED'} (max {max(rss):.1f} MiB)"
    )
    print(
        f"target: peak RSS flat (within {FLAT_TOLERANCE_MIB} MiB) from smallest to largest: "
        f"{'met' if flat_ok else 'MISSED'} ({min(rss):.1f} to {max(rss):.1f} MiB)"
    )
    return 0 if rate_ok and rss_ok and flat_ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
