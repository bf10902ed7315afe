"""The two small grids behind the study's settings (docs/study.md "The working plan"), rerunnable:

- ``mlp``: the MLP GAN on MNIST over the catalog's options (optimizer, learning rate, batch size),
  seed 0, PyTorch, 3000 steps; it chose MLP_RECIPE (bench/runs/study_plan.py);
- ``gp``: the BCE GAN with the gradient penalty on ring8 and grid25 over its weight (0.1, 1, 10)
  and the learning rate (1e-3, 2e-4), seeds 0-1, PyTorch, 3000 steps; it chose
  MIXTURE_GP_LAMBDA.

Each setting trains into a folder of its own under OUT (the experiments share a name, and one
run folder keeps one configuration of an experiment); a setting already there is reused. The
table is printed as markdown at the end.

    python tools/study_grids.py mlp --out results/runs/grid-mlp
    python tools/study_grids.py gp --out results/runs/grid-gp
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.core import registry  # noqa: E402
from bench.core.specs import OptimizerSpec  # noqa: E402
from bench.runs import records, trained  # noqa: E402
from bench.runs.matrix import MatrixConfig, run_matrix  # noqa: E402
from bench.runs.pools import ProcessPool  # noqa: E402


def _opt(kind: str, lr: float) -> OptimizerSpec:
    if kind == "adam":
        return OptimizerSpec(kind="adam", lr=lr, beta1=0.5, beta2=0.999, eps=1e-8)
    return OptimizerSpec(kind="rmsprop", lr=lr, rho=0.99, eps=1e-8)


def mlp_grid() -> list[tuple[str, object]]:
    out = []
    for kind, lr, batch in (
        ("rmsprop", 2e-4, 64),
        ("adam", 2e-4, 64),
        ("adam", 2e-4, 128),
        ("adam", 5e-4, 64),
        ("adam", 1e-3, 128),
        ("rmsprop", 1e-3, 128),
    ):
        spec = registry.experiment("gan", (), dataset="mnist", profile="study", seed=0, steps=3000)
        spec = spec.with_(g_optimizer=_opt(kind, lr), d_optimizer=_opt(kind, lr), batch_size=batch)
        out.append((f"{kind} lr {lr:g} batch {batch}", spec))
    return out


def gp_grid() -> list[tuple[str, object]]:
    out = []
    for ds in ("ring8", "grid25"):
        for lam in (0.1, 1.0, 10.0):
            for lr in (1e-3, 2e-4):
                for seed in (0, 1):
                    s = registry.experiment(
                        "gan", ("gradient-penalty",), dataset=ds, profile="study", seed=seed, steps=3000
                    )
                    s = s.with_(
                        gp_lambda=lam,
                        g_optimizer=dataclasses.replace(s.g_optimizer, lr=lr),
                        d_optimizer=dataclasses.replace(s.d_optimizer, lr=lr),
                    )
                    out.append((f"{ds} weight {lam:g} lr {lr:g} seed {seed}", s))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("grid", choices=("mlp", "gp"))
    ap.add_argument("--out", type=Path, required=True, help="a folder; each setting trains into a subfolder")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    a = ap.parse_args(argv)
    settings = mlp_grid() if a.grid == "mlp" else gp_grid()
    table = ["| setting | FID | classes | modes | final D loss | trained |", "|---|---|---|---|---|---|"]
    for i, (label, spec) in enumerate(settings):
        folder = a.out / f"{i:02d}"
        cfg = MatrixConfig(profile="study", progress=False, name=f"grid-{a.grid}")
        run_matrix([spec], ["torch"], folder, cfg, ProcessPool(a.jobs, threads=1))
        recs = records.read_records(folder)
        rec = recs[0] if recs else {}
        m, f = rec.get("metrics") or {}, rec.get("final_losses") or {}
        ok = trained.trained(rec) if rec else None
        cells = [m.get("fid"), m.get("classes_covered"), m.get("modes_covered"), f.get("d_loss")]
        text = ["" if v is None else f"{v:.4g}" for v in cells]
        table.append(f"| {label} | " + " | ".join(text) + f" | {'' if ok is None else 'yes' if ok else 'no'} |")
    print("\n".join(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
