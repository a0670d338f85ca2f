"""Filter evaluations per second: a compiled filter, and ``Filter(attrs).matcher(s)`` per object.

Run: ``.venv/bin/python bench/filter_bench.py [--objects N]``. The attribute dicts are generated before
timing; only evaluation is timed. Target: >= 1,000,000 evaluations/s for the compiled filter (SailPoint's
JavaScript ``Filter``, which parses the filter string for every object, does about 280,000/s on the same
2-core machine).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from connectors.sdk.filter import Filter  # noqa: E402

FILTER = '(department == "Engineering" && title.startsWith("Senior")) || !(location.isNull())'
TARGET = 1_000_000
SAILPOINT_JS = 280_000

DEPARTMENTS = ["Engineering", "Sales", "Finance", "Support", "Marketing", "Legal"]
TITLES = ["Senior Engineer", "Engineer", "Senior Manager", "Analyst", "Director", "Intern"]
LOCATIONS = ["Austin", "Pune", "London", "", None]


def make_objects(n: int, seed: int = 7) -> list[dict]:
    """Account-like attribute dicts; some lack ``location`` or ``title``, some have null or empty values."""
    rng = random.Random(seed)
    objects = []
    for i in range(n):
        obj = {
            "id": f"u{i:07d}",
            "displayName": f"User {i}",
            "email": f"user{i}@example.com",
            "department": rng.choice(DEPARTMENTS),
            "groups": rng.sample(["admins", "devs", "ops", "all"], rng.randint(0, 3)),
            "active": rng.random() < 0.9,
        }
        if rng.random() < 0.9:
            obj["title"] = rng.choice(TITLES)
        if rng.random() < 0.7:
            obj["location"] = rng.choice(LOCATIONS)
        objects.append(obj)
    return objects


def best_rate(run, n: int, repeats: int) -> tuple[float, int]:
    best, matched = float("inf"), 0
    for _ in range(repeats):
        start = time.perf_counter()
        matched = run()
        best = min(best, time.perf_counter() - start)
    return n / best, matched


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs; the best is reported")
    args = parser.parse_args()

    print(f"filter: {FILTER}")
    print(f"generating {args.objects:,} attribute dicts...", flush=True)
    objects = make_objects(args.objects)

    compiled = Filter.compile(FILTER)
    matches = compiled.matches

    def run_compiled() -> int:
        count = 0
        for obj in objects:
            if matches(obj):
                count += 1
        return count

    def run_matcher() -> int:
        count = 0
        for obj in objects:
            if Filter(obj).matcher(FILTER):
                count += 1
        return count

    compiled_rate, matched = best_rate(run_compiled, args.objects, args.repeats)
    matcher_rate, matched2 = best_rate(run_matcher, args.objects, args.repeats)
    assert matched == matched2, (matched, matched2)

    print(f"matched: {matched:,} of {args.objects:,}")
    print(f"compiled filter (CompiledFilter.matches):    {compiled_rate:>12,.0f} evaluations/s")
    print(f"Filter(attrs).matcher(s), cached compile:    {matcher_rate:>12,.0f} evaluations/s")
    print(f"target for the compiled filter:              {TARGET:>12,} evaluations/s")
    print(f"SailPoint's JavaScript Filter (parses each): {SAILPOINT_JS:>12,} evaluations/s")
    ok = compiled_rate >= TARGET
    print(f"compiled filter {'meets' if ok else 'MISSES'} the target ({compiled_rate / TARGET:.2f}x)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
