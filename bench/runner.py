"""Train one experiment for its budget and write what it learned: a plain loop, top to bottom.

Per experiment, under RUN_DIR/<experiment id>/: losses.csv (every loss term, every step),
samples_epoch<k>.png (a grid from a fixed noise seed at each epoch end and at the end),
loss_curves.png; and RUN_DIR/records/<experiment id>.json (spec, final losses, metrics,
timings, versions, device, git revision), written atomically. A run whose loss turns NaN or
infinite stops early and is recorded with status "diverged"; Ctrl-C records "interrupted".
"""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path

import numpy as np

from . import data, plots, records
from .randomness import real_batches_per_step, step_noise
from .registry import DEFAULT_VARIANT
from .specs import NUM_CLASSES, ExperimentSpec

FINAL_WINDOW = 50  # final losses are means over the last steps, not one noisy step
GRID_SIZE = 64
EVAL_SEED_KEY = 4  # metrics draw their samples from default_rng([seed, EVAL_SEED_KEY])


def experiment_id(spec: ExperimentSpec, framework: str) -> str:
    return f"{spec.name}__{spec.dataset}__{framework}__s{spec.seed}"


class TrainingData:
    """Real batches in the spec's range (images) or fresh draws from a 2-D mixture."""

    def __init__(self, spec: ExperimentSpec, data_dir=None):
        self.spec = spec
        if spec.is_image:
            train = data.load(spec.dataset, "train", data_dir=data_dir)
            x = data.to_model_range(train.images, spec.data_range, np.dtype(spec.dtype))
            self.batches = data.Batches(x, train.labels, spec.batch_size, seed=spec.seed)
        else:
            self.batches = None
            self._rng = np.random.default_rng([spec.seed, 3])
            self._draw = data.ring8 if spec.dataset == "ring8" else data.grid25

    @property
    def epoch(self) -> int:
        return self.batches.epoch if self.batches is not None else 0

    def next(self, n_batches: int) -> dict:
        if self.batches is not None:
            return self.batches.next(n_batches)
        points, modes = self._draw(n_batches * self.spec.batch_size, self._rng)
        return {"x": points.astype(self.spec.dtype), "y": modes}


def fixed_grid_inputs(spec: ExperimentSpec):
    """The same latent noise (and labels for a CVAE) for every grid of every run of this spec."""
    g = np.random.default_rng([spec.seed, 2])
    z = g.standard_normal((GRID_SIZE, spec.latent_dim)).astype(spec.dtype)
    y = np.arange(GRID_SIZE) % NUM_CLASSES if spec.conditional else None
    return z, y


def save_samples(trainer, spec, path):
    z, y = fixed_grid_inputs(spec)
    out = trainer.sample(z, y)
    if spec.is_image:
        plots.save_grid(data.from_model_range(out, spec.data_range), path)
    else:
        plots.save_points(out, data.mixture_centers(spec.dataset)[0], path, spec.name)


def save_latent_figures(trainer, spec, exp_dir, data_dir=None, n=2000):
    """Latent structure of test images: PCA of the encoder means coloured by class, and a
    decoded linear interpolation between the means of ten pairs of test images."""
    test = data.load(spec.dataset, "test", data_dir=data_dir)
    x = data.to_model_range(test.images[:n], spec.data_range, np.dtype(spec.dtype))
    y = test.labels[:n]
    means, _ = trainer.encode(x, y)
    plots.save_latent_pca(means, y, exp_dir / "latent_pca.png", f"{spec.name}: latent means (PCA)")
    rows = [plots.interpolation_latents(means[2 * i], means[2 * i + 1], 8) for i in range(8)]
    z = np.concatenate(rows).astype(spec.dtype)
    labels = np.repeat(y[0:16:2], 8) if spec.conditional else None
    images = trainer.decode(z, labels)
    plots.save_grid(data.from_model_range(images, spec.data_range), exp_dir / "interpolation.png")


def _finite(losses: dict) -> bool:
    return all(math.isfinite(v) for v in losses.values())


def run_experiment(spec: ExperimentSpec, framework: str, run_dir, *, device="cpu", variant=None,
                   data_dir=None, progress=True, metrics=True, n_eval=2000, profile=None) -> dict:
    """Train `spec` in `framework`, write its files under run_dir, return its record."""
    import impls

    run_dir = Path(run_dir)
    exp_id = experiment_id(spec, framework)
    exp_dir = run_dir / exp_id
    exp_dir.mkdir(parents=True, exist_ok=True)
    backend = impls.load(framework)
    t_start = time.perf_counter()
    train_data = TrainingData(spec, data_dir)
    trainer = backend.build(spec, device=device, variant=variant or DEFAULT_VARIANT[framework])
    noise_rng = np.random.default_rng([spec.seed, 1])
    n_real = real_batches_per_step(spec)
    status, steps_done, history = "ok", 0, {}
    step_times = []
    from tqdm import tqdm

    bar = tqdm(total=spec.steps, desc=exp_id, disable=not progress, leave=False, unit="step")
    with open(exp_dir / "losses.csv", "w", newline="") as f:
        writer = None
        try:
            epoch = train_data.epoch
            for step in range(spec.steps):
                batch = train_data.next(n_real)
                noise = step_noise(spec, noise_rng)
                t0 = time.perf_counter()
                losses = trainer.train_step(batch, noise)
                step_times.append(time.perf_counter() - t0)
                steps_done = step + 1
                if writer is None:
                    writer = csv.DictWriter(f, fieldnames=["step", "wall_s", *losses])
                    writer.writeheader()
                writer.writerow({"step": steps_done, "wall_s": round(sum(step_times), 4), **losses})
                for k, v in losses.items():
                    history.setdefault(k, []).append(v)
                bar.update(1)
                if step % 20 == 0:
                    bar.set_postfix({k: f"{v:.3g}" for k, v in list(losses.items())[:3]})
                if not _finite(losses):
                    status = "diverged"
                    break
                if train_data.epoch != epoch:
                    epoch = train_data.epoch
                    save_samples(trainer, spec, exp_dir / f"samples_epoch{epoch}.png")
        except KeyboardInterrupt:
            status = "interrupted"
        finally:
            bar.close()
    wall_train = time.perf_counter() - t_start
    if status != "diverged":
        save_samples(trainer, spec, exp_dir / "samples_final.png")
        if spec.has_encoder and spec.is_image:
            save_latent_figures(trainer, spec, exp_dir, data_dir)
    if steps_done:
        plots.save_loss_curves(exp_dir / "losses.csv", exp_dir / "loss_curves.png")
    record = {
        "id": exp_id, "experiment": spec.name, "dataset": spec.dataset, "framework": framework,
        "seed": spec.seed, "status": status, "steps_done": steps_done, "spec": spec.to_dict(),
        "final_losses": {k: float(np.mean(v[-FINAL_WINDOW:])) for k, v in history.items()},
        "timing": _timing(step_times, spec.batch_size * n_real),
        "variant": getattr(trainer, "variant", None), "device": device,
        "float32_precision": getattr(trainer, "precision", None), "profile": profile, "n_eval": n_eval,
        "versions": records.versions(), "git_revision": records.git_revision(), "host": records.host(),
    }
    if status == "ok" and metrics:
        record["metrics"] = _metrics(spec, trainer, history, n_eval, data_dir)
    else:
        from .metrics.stability import loss_summary

        record["metrics"] = loss_summary(history)
    record["timing"]["wall_s"] = time.perf_counter() - t_start
    record["timing"]["eval_s"] = record["timing"]["wall_s"] - wall_train
    records.write_record(run_dir / "records" / f"{exp_id}.json", record)
    if status == "interrupted":
        raise KeyboardInterrupt
    return record


def _timing(step_times: list[float], images_per_step: int) -> dict:
    """The median step (the first one pays for tracing/compilation and is reported apart)."""
    if not step_times:
        return {"train_s": 0.0, "ms_per_step": float("nan"), "images_per_s": float("nan"), "first_step_ms": float("nan")}
    steady = step_times[1:] or step_times
    median = float(np.median(steady))
    return {"train_s": float(sum(step_times)), "ms_per_step": 1000.0 * median,
            "images_per_s": images_per_step / median, "first_step_ms": 1000.0 * step_times[0]}


def _metrics(spec, trainer, history, n_eval, data_dir) -> dict:
    """Every metric that applies; a metric that fails is reported, not fatal to the matrix."""
    from .metrics.stability import loss_summary

    out = loss_summary(history)
    try:
        from .metrics import metrics_for

        out.update(metrics_for(spec, trainer, np.random.default_rng([spec.seed, EVAL_SEED_KEY]), n_samples=n_eval,
                               data_dir=data_dir))
    except Exception as e:  # noqa: BLE001 - recorded, the rest of the matrix goes on
        out["metrics_error"] = f"{type(e).__name__}: {e}"
    return out
