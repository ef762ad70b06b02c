"""`make bench`: run every benchmarks/bench_*.py in turn; each writes benchmarks/results/*.json.

    python -m benchmarks.run [NAME ...] [OPTION ...]
                    (e.g. `python -m benchmarks.run scoring`, `... soak --minutes 10`)

Options after the names go to each named benchmark.
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path


def main(argv=None):
    argv = list(argv if argv is not None else sys.argv[1:])
    first_option = next((i for i, a in enumerate(argv) if a.startswith("-")), len(argv))
    names, options = argv[:first_option], argv[first_option:]
    names = names or sorted(
        p.stem.removeprefix("bench_") for p in Path(__file__).parent.glob("bench_*.py"))
    failed = []
    for name in names:
        print(f"== {name}", flush=True)
        t = time.perf_counter()
        try:
            importlib.import_module(f"benchmarks.bench_{name}").main(list(options))
        except Exception as exc:  # noqa: BLE001 - report every benchmark, then fail at the end
            print(f"!! {name} failed: {exc!r}", flush=True)
            failed.append(name)
        print(f"== {name} took {time.perf_counter() - t:.1f}s", flush=True)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
