"""The baseline presets on the image competition `shapes` at its default size (10,000
images): strong must train in under 2 minutes on 2 cores. Writes
benchmarks/results/baselines-shapes.json.

    python -m benchmarks.bench_baselines_shapes [--seeds 0,1,2]
"""

from __future__ import annotations

import sys

from . import bench_baselines


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    bench_baselines.main(["--slug", "shapes", *argv])


if __name__ == "__main__":
    main()
