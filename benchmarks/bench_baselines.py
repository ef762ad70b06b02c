"""Wall and CPU time of each baseline preset of a competition (the issue's budgets on 2
cores: `digits` strong under 60 s, the image competition `shapes` strong under 120 s), with
the validation score each reached. Training runs in this process after a
warm-up import of torch (a one-time ~2-4 s per process, reported separately), in a prepared
temporary home. Writes benchmarks/results/baselines.json (baselines-SLUG.json for another
competition; `bench_baselines_shapes` runs shapes).

    python -m benchmarks.bench_baselines [--slug digits]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from harness.home import find_spec_path
from harness.splits import prepare

from .common import write_result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slug", default="digits")
    args = parser.parse_args(argv)

    t = time.perf_counter()
    import torch  # noqa: F401  (what the first torch baseline of a process pays once)
    import torch.optim  # noqa: F401
    from harness.baselines import train_baseline
    from harness.baselines.presets import presets_for
    from harness.baselines.torch_models import TRAIN_THREADS

    torch.optim.Adam([torch.zeros(1, requires_grad=True)])   # pulls in torch._dynamo
    import_seconds = time.perf_counter() - t

    presets = {}
    with tempfile.TemporaryDirectory() as home:
        prepared = prepare(find_spec_path(args.slug), home)
        for name, cfg in presets_for(args.slug, prepared.is_image).items():
            load = os.getloadavg()[0]
            cpu = time.process_time()
            result = train_baseline(prepared, cfg, progress=False)
            presets[name] = {
                "config": cfg.describe(),
                "validation_score": round(result.validation_score, 5),
                "wall_seconds": round(result.seconds, 2),
                "cpu_seconds": round(time.process_time() - cpu, 2),
                "load_average_before": round(load, 2),
                "epochs_run": len(result.history),
                "diagnosis": result.diagnosis.split(" (")[0],
            }
            print(f"{args.slug} {name:7s} {prepared.spec.metric.name} "
                  f"{result.validation_score:.5f}  {result.seconds:6.2f} s wall  "
                  f"{presets[name]['cpu_seconds']:6.2f} s cpu", flush=True)
    import torch as _t

    path = write_result("baselines" if args.slug == "digits" else f"baselines-{args.slug}", {
        "competition": args.slug, "torch": _t.__version__, "train_threads": TRAIN_THREADS,
        "torch_import_seconds": round(import_seconds, 2), "presets": presets,
        "note": "wall time depends on other load on the machine (load_average_before); "
                "cpu_seconds is this process's CPU time"})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
