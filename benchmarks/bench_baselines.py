"""Wall and CPU time of each baseline preset of a competition (the issue's budgets on 2
cores: `digits` strong under 60 s, the image competition `shapes` strong under 120 s), with
the validation score each reached. Training runs in this process after a
warm-up import of torch (a one-time ~2-4 s per process, reported separately), in a prepared
temporary home. Writes benchmarks/results/baselines.json (baselines-SLUG.json for another
competition; `bench_baselines_shapes` runs shapes).

    python -m benchmarks.bench_baselines [--slug digits] [--seeds 0,1,2]

With several ``--seeds`` each preset trains once per seed (the first seed's run gives the
times): one seed's ordering of the presets could be luck, so the JSON records every
seed's score and whether the presets were ordered in each.
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
    parser.add_argument("--seeds", default="0", help="comma-separated training seeds")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]

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
        metric = prepared.spec.metric
        for name, cfg in presets_for(args.slug, prepared.is_image).items():
            for seed in seeds:
                load = os.getloadavg()[0]
                cpu = time.process_time()
                result = train_baseline(prepared, cfg.replace(seed=seed), progress=False)
                score, cpu = round(result.validation_score, 5), time.process_time() - cpu
                print(f"{args.slug} {name:7s} seed {seed} {metric.name} {score:.5f}  "
                      f"{result.seconds:6.2f} s wall  {cpu:6.2f} s cpu",
                      flush=True)
                if name in presets:
                    presets[name]["validation_by_seed"][str(seed)] = score
                    continue
                presets[name] = {
                    "config": cfg.describe(),
                    "validation_score": score,
                    "wall_seconds": round(result.seconds, 2),
                    "cpu_seconds": round(cpu, 2),
                    "load_average_before": round(load, 2),
                    "epochs_run": len(result.history),
                    "diagnosis": result.diagnosis.split(" (")[0],
                    "validation_by_seed": {str(seed): score},
                }
        by_seed = [p["validation_by_seed"] for p in presets.values()]   # simple to boss
        ordered = {str(seed): all(metric.better(b[str(seed)], a[str(seed)])
                                  for a, b in zip(by_seed, by_seed[1:]))
                   for seed in seeds}
    print("presets ordered simple < medium < strong < boss on validation, by seed: "
          + ", ".join(f"{s} {'yes' if ok else 'NO'}" for s, ok in ordered.items()))
    import torch as _t

    path = write_result("baselines" if args.slug == "digits" else f"baselines-{args.slug}", {
        "competition": args.slug, "torch": _t.__version__, "train_threads": TRAIN_THREADS,
        "torch_import_seconds": round(import_seconds, 2), "seeds": seeds, "presets": presets,
        "ordered_by_seed": ordered,
        "note": "wall time depends on other load on the machine (load_average_before); "
                "cpu_seconds is this process's CPU time"})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
