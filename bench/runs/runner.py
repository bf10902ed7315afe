"""Train one experiment for its budget and write what it learned: a plain loop, top to bottom.

Per experiment, under RUN_DIR/<experiment id>/: losses.csv (every loss term, every step),
samples_epoch<k>.png (a grid from a fixed noise seed at each epoch end), samples_final.png,
loss_curves.png, state.npz (the trained weights), and for encoder models on images latents.npz,
latent_pca.png and interpolation.png; and RUN_DIR/records/<experiment id>.json
(identity hash, spec, status, final losses, metrics, timings, timestamps, command, versions,
device, git revision), written atomically. The id and the identity rule: bench/runs/records.py.

The record's status moves, and is written at each arrow:

    training --(loss bad, bench/core/divergence.py)--> diverged
        |------(exception)--> failed            |-----(Ctrl-C)--> interrupted (phase training)
        v
    state.npz saved, then trained --(evaluation: grids, figures, metrics)--> ok
                                          |--(a part raised)--> metrics_failed (error, errors)
                                          |--(Ctrl-C)--> interrupted (phase evaluation)

A record that is trained, metrics_failed or interrupted in evaluation has its state saved:
the next run of the same experiment (same hash) evaluates it from the state, no retraining.
An exception ends only its experiment; Ctrl-C (re-raised) ends the matrix.
"""

from __future__ import annotations

import csv
import io
import sys
import time
from pathlib import Path

import numpy as np

from ..core import cpu, data, facts, registry
from ..core.divergence import final_losses, losses_diverged
from ..core.randomness import real_batches_per_step, step_noise
from ..core.registry import DEFAULT_VARIANT
from ..core.specs import ExperimentSpec
from . import plots, records, trained
from .provenance import code_hash

GRID_SIZE = 64
EVAL_SEED_KEY = 4  # metrics draw their samples from default_rng([seed, EVAL_SEED_KEY])
EVALUATE_AGAIN = ("trained", "metrics_failed", "interrupted")  # with a saved state


def experiment_identity(
    spec: ExperimentSpec,
    framework: str,
    *,
    device="cpu",
    variant=None,
    profile=None,
    n_eval=2000,
    randomness="reproducible",
) -> dict:
    """{"hash", "id", "inputs"} of one experiment (bench/runs/records.py: the identity rule)."""
    return records.identity(
        spec,
        framework,
        variant=variant or DEFAULT_VARIANT[framework],
        device=device,
        profile=profile,
        n_eval=n_eval,
        randomness=randomness,
    )


class TrainingData:
    """Real batches in the spec's range (images), or fresh draws from a 2-D mixture or of
    Stacked MNIST triples, from the experiment's dataset (a bench.core.data.Dataset; None:
    the built-in source of spec.source_dataset)."""

    def __init__(self, spec: ExperimentSpec, dataset: data.Dataset | None = None):
        self.spec = spec
        self.dataset = data.open_dataset(spec.source_dataset) if dataset is None else dataset
        if spec.dataset == "stacked-mnist":  # fresh triples of MNIST train digits every step
            train = self.dataset.train  # read now: a missing copy fails here, not at the first step
            self.batches, self._rng = None, np.random.default_rng([spec.seed, 3])
            self._draw = lambda n, rng: data.stacked_mnist(n, rng, source=train)
        elif spec.is_image:
            train = self.dataset.train
            x = data.to_model_range(train.images, spec.data_range, np.dtype(spec.dtype))
            self.batches = data.Batches(x, train.labels, spec.batch_size, seed=spec.seed)
        else:
            self.batches = None
            self._rng = np.random.default_rng([spec.seed, 3])
            self._draw = self.dataset.draw

    @property
    def epoch(self) -> int:
        return self.batches.epoch if self.batches is not None else 0

    def next(self, n_batches: int) -> dict:
        if self.batches is not None:
            return self.batches.next(n_batches)
        points, modes = self._draw(n_batches * self.spec.batch_size, self._rng)
        if self.spec.is_image:
            points = data.to_model_range(points, self.spec.data_range, np.dtype(self.spec.dtype))
        return {"x": points.astype(self.spec.dtype, copy=False), "y": modes}


def fixed_grid_inputs(spec: ExperimentSpec):
    """The same latent noise (and labels for a CVAE) for every grid of every run of this spec."""
    g = np.random.default_rng([spec.seed, 2])
    z = g.standard_normal((GRID_SIZE, spec.latent_dim)).astype(spec.dtype)
    y = np.arange(GRID_SIZE) % facts.NUM_CLASSES if spec.conditional else None
    return z, y


def save_samples(trainer, spec, path):
    z, y = fixed_grid_inputs(spec)
    out = trainer.sample(z, y)
    if spec.is_image:
        plots.save_grid(data.from_model_range(out, spec.data_range), path)
    else:
        plots.save_points(out, data.mixture_centers(spec.dataset)[0], path, spec.name)


def save_latent_figures(trainer, spec, exp_dir, dataset: data.Dataset | None = None, n=2000):
    """Latent structure of test images of `dataset` (None: spec.dataset's built-in source): the
    encoder means and labels (latents.npz, for the report's t-SNE), their PCA coloured by class,
    and a decoded linear interpolation between the means of eight pairs of test images."""
    test = (data.open_dataset(spec.source_dataset) if dataset is None else dataset).test
    x = data.to_model_range(test.images[:n], spec.data_range, np.dtype(spec.dtype))
    y = test.labels[:n]
    means, _ = trainer.encode(x, y)
    records.save_arrays(exp_dir / "latents.npz", means=np.asarray(means), labels=np.asarray(y))
    plots.save_latent_pca(means, y, exp_dir / "latent_pca.png", f"{spec.name}: latent means (PCA)")
    rows = [plots.interpolation_latents(means[2 * i], means[2 * i + 1], 8) for i in range(8)]
    z = np.concatenate(rows).astype(spec.dtype)
    labels = np.repeat(y[0:16:2], 8) if spec.conditional else None
    images = trainer.decode(z, labels)
    plots.save_grid(data.from_model_range(images, spec.data_range), exp_dir / "interpolation.png")


def plan(existing: dict | None, ident: dict, exp_dir: Path, *, metrics=True, fresh=False) -> tuple[str, str]:
    """What to do about one experiment given the record already under its id (or None):
    ("reuse" | "evaluate" | "train", why)."""
    if existing is None:
        return "train", "no record"
    if fresh:
        return "train", "--fresh"
    if existing.get("spec_hash") != ident["hash"]:
        return "train", "its record has another identity hash"
    status = existing.get("status")
    if status == "diverged":
        return "reuse", "diverged (deterministic: the same hash diverges again)"
    needs_eval = status in EVALUATE_AGAIN and not (status == "interrupted" and existing.get("phase") != "evaluation")
    if status == "ok":
        if not metrics or existing.get("metrics_evaluated"):
            return "reuse", "ok"
        needs_eval = True  # trained and evaluated with --no-metrics; metrics are asked for now
    if needs_eval:
        state = existing.get("state") or {}
        try:
            records.load_state(exp_dir / state.get("file", records.STATE_FILE), state.get("sha256"))
        except records.RecordError as e:
            return "train", f"{status}, but {e}"
        return "evaluate", f"{status}: evaluating from the saved state"
    return "train", f"status {status}"


def _base_record(spec, framework, ident, device, exp_id) -> dict:
    return {
        "schema_version": records.SCHEMA_VERSION,
        "id": exp_id,
        "spec_hash": ident["hash"],
        "code_hash": code_hash(),  # the training code's version (bench/runs/provenance.py), not in the identity
        "identity": ident["inputs"],
        "experiment": spec.name,
        "dataset": spec.dataset,
        "framework": framework,
        "seed": spec.seed,
        "spec": spec.to_dict(),
        "device": device,
        "variant": ident["inputs"]["variant"],
        "profile": ident["inputs"]["profile"],
        "n_eval": ident["inputs"]["n_eval"],
        "float32_precision": None,
        "command": list(sys.argv),
        "versions": records.versions(),
        "git_revision": records.git_revision(),
        "host": records.host(),
        "error": None,
        "errors": {},
    }


def run_experiment(
    spec: ExperimentSpec,
    framework: str,
    run_dir,
    *,
    device="cpu",
    variant=None,
    profile=None,
    data_dir=None,
    progress=True,
    metrics=True,
    n_eval=2000,
    command=None,
    randomness="reproducible",
) -> dict:
    """Train `spec` in `framework`, save its state, evaluate it, write its files under run_dir;
    return its record. Re-raises KeyboardInterrupt after writing an "interrupted" record.
    `randomness`: each step's random inputs from the NumPy stream, or the twin's NativeDraws.
    `data_dir` (a user's copy, or None) is opened once here into the experiment's Dataset,
    which the training batches, the figures and the metrics share."""
    import impls

    run_dir = Path(run_dir)
    dataset = data.open_dataset(spec.source_dataset, data_dir)
    ident = experiment_identity(
        spec, framework, device=device, variant=variant, profile=profile, n_eval=n_eval, randomness=randomness
    )
    exp_id = ident["id"]
    exp_dir = run_dir / exp_id
    exp_dir.mkdir(parents=True, exist_ok=True)
    record_path = run_dir / "records" / f"{exp_id}.json"
    record = _base_record(spec, framework, ident, device, exp_id)
    if command is not None:
        record["command"] = list(command)
    record["started_at"] = records.now_iso()
    t_start = time.perf_counter()
    status, phase, steps_done, history, step_times, loop_times = "ok", "training", 0, {}, [], []
    n_real = real_batches_per_step(spec)
    trainer = None
    eval_every = registry.PROFILES.get(profile, {}).get("eval_every", 0)
    curve = record["curve"] = [] if eval_every else None
    (exp_dir / "curve.csv").unlink(missing_ok=True)  # a retrained experiment starts a new curve
    from tqdm import tqdm

    bar = tqdm(total=spec.steps, desc=exp_id, disable=not progress, leave=False, unit="step")
    try:
        backend = impls.load(framework)
        train_data = TrainingData(spec, dataset)
        trainer = backend.build(spec, device=device, variant=ident["inputs"]["variant"])
        record["float32_precision"] = getattr(trainer, "precision", None)
        record["compute"] = cpu.compute_settings(framework)
        noise_rng = np.random.default_rng([spec.seed, 1])
        draws = backend.noise.NativeDraws(spec, device) if randomness == "native" else None
        with open(exp_dir / "losses.csv", "w", newline="") as f:
            writer = None
            epoch = train_data.epoch
            for step in range(spec.steps):
                t_loop = time.perf_counter()
                batch = train_data.next(n_real)
                noise = step_noise(spec, noise_rng, draws=draws)
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
                loop_times.append(time.perf_counter() - t_loop)
                if losses_diverged(losses):
                    status = "diverged"
                    break
                if train_data.epoch != epoch:
                    epoch = train_data.epoch
                    save_samples(trainer, spec, exp_dir / f"samples_epoch{epoch}.png")
                if eval_every and steps_done % eval_every == 0 and steps_done < spec.steps:
                    curve.append(_curve_point(trainer, spec, steps_done, n_eval, dataset, exp_dir))
    except KeyboardInterrupt:
        status, record["error"] = "interrupted", "interrupted (Ctrl-C) during training"
    except records.WriteError:
        raise
    except Exception as e:  # noqa: BLE001 - recorded; the rest of the matrix goes on
        status, record["error"] = "failed", f"training: {type(e).__name__}: {e}"
        record["errors"]["training"] = record["error"]
    finally:
        bar.close()
    from ..metrics.stability import loss_summary

    record.update(
        {
            "status": status,
            "phase": phase,
            "steps_done": steps_done,
            "final_losses": final_losses(history),
            "metrics": loss_summary(history),
            "metrics_evaluated": False,
            "timing": _timing(step_times, spec.batch_size * n_real, loop_times),
            "state": None,
        }
    )
    record["timing"]["wall_s"] = record["timing"]["train_s_wall"] = time.perf_counter() - t_start
    record["trained_at"] = records.now_iso()
    if status == "ok":  # trained: keep the weights before anything else can fail
        record["state"] = records.save_state(exp_dir / records.STATE_FILE, trainer.get_weights())
        record["status"] = "trained"
    elif status == "diverged" and steps_done:
        _try(record, "loss_curves", lambda: plots.save_loss_curves(exp_dir / "losses.csv", exp_dir / "loss_curves.png"))
    if record["status"] != "trained":
        record["ended_at"] = records.now_iso()
        record["trained"] = dict(zip(("ok", "why"), trained.check(record)))
    records.write_record(record_path, record)
    if status == "interrupted":
        raise KeyboardInterrupt
    if record["status"] != "trained":
        return record
    return evaluate(trainer, spec, record, run_dir, metrics=metrics, n_eval=n_eval, dataset=dataset)


def failed_record(
    spec: ExperimentSpec,
    framework: str,
    run_dir,
    error: str,
    *,
    device="cpu",
    variant=None,
    profile=None,
    n_eval=2000,
    command=None,
    randomness="reproducible",
) -> dict:
    """Write and return the `failed` record of an experiment whose training ended without
    writing one (its process was killed): the next run of the same experiment trains it again."""
    from ..metrics.stability import loss_summary

    ident = experiment_identity(
        spec, framework, device=device, variant=variant, profile=profile, n_eval=n_eval, randomness=randomness
    )
    record = _base_record(spec, framework, ident, device, ident["id"])
    if command is not None:
        record["command"] = list(command)
    record.update(
        {
            "status": "failed",
            "phase": "training",
            "steps_done": 0,
            "final_losses": {},
            "metrics": loss_summary({}),
            "metrics_evaluated": False,
            "timing": _timing([], spec.batch_size),
            "state": None,
            "error": error,
            "errors": {"training": error},
            "ended_at": records.now_iso(),
        }
    )
    records.write_record(Path(run_dir) / "records" / f"{ident['id']}.json", record)
    return record


def evaluate_saved(
    spec: ExperimentSpec,
    framework: str,
    run_dir,
    existing: dict,
    *,
    device="cpu",
    variant=None,
    data_dir=None,
    metrics=True,
    n_eval=2000,
    command=None,
) -> dict:
    """Evaluate an experiment from its saved state (a `trained`, `metrics_failed` or
    evaluation-interrupted record, or an `ok` one evaluated without metrics): rebuild the
    trainer, load the weights, run the evaluation (on `data_dir`'s Dataset, opened once), update
    the record."""
    import impls

    run_dir = Path(run_dir)
    record = dict(existing)
    exp_dir = run_dir / record["id"]
    state = record.get("state") or {}
    weights = records.load_state(exp_dir / state.get("file", records.STATE_FILE), state.get("sha256"))
    trainer = impls.load(framework).build(spec, device=device, variant=variant or DEFAULT_VARIANT[framework])
    trainer.set_weights(weights)
    record["float32_precision"] = getattr(trainer, "precision", None)
    record["compute_evaluation"] = cpu.compute_settings(framework)
    record.update({"evaluated_from_state": True, "error": None, "errors": {}, "schema_version": records.SCHEMA_VERSION})
    if command is not None:
        record["command"] = list(command)
    record["evaluation_started_at"] = records.now_iso()
    return evaluate(
        trainer,
        spec,
        record,
        run_dir,
        metrics=metrics,
        n_eval=n_eval,
        dataset=data.open_dataset(spec.source_dataset, data_dir),
    )


def _try(record: dict, part: str, fn) -> bool:
    """Run one evaluation part; an exception is recorded under errors[part], not raised."""
    try:
        fn()
        return True
    except records.WriteError:
        raise
    except Exception as e:  # noqa: BLE001 - recorded; the other parts and experiments go on
        record["errors"][part] = f"{type(e).__name__}: {e}"
        if record.get("error") is None:
            record["error"] = f"{part}: {type(e).__name__}: {e}"
        return False


def evaluate(
    trainer,
    spec: ExperimentSpec,
    record: dict,
    run_dir,
    *,
    metrics=True,
    n_eval=2000,
    dataset: data.Dataset | None = None,
    data_dir=None,
) -> dict:
    """The evaluation of a trained record: final sample grid, latent figures (VAEs), loss
    curves, metrics, all on `dataset` (else spec.source_dataset opened from `data_dir`). Writes the
    record as ok, metrics_failed or (Ctrl-C, re-raised) interrupted."""
    dataset = data.as_dataset(spec.source_dataset if dataset is None else dataset, data_dir)
    run_dir = Path(run_dir)
    exp_dir = run_dir / record["id"]
    record_path = run_dir / "records" / f"{record['id']}.json"
    t0 = time.perf_counter()
    record["phase"] = "evaluation"
    parts = [("samples", lambda: save_samples(trainer, spec, exp_dir / "samples_final.png"))]
    if spec.has_encoder and spec.is_image:
        parts.append(("latent_figures", lambda: save_latent_figures(trainer, spec, exp_dir, dataset)))
    if (exp_dir / "losses.csv").exists():
        parts.append(
            ("loss_curves", lambda: plots.save_loss_curves(exp_dir / "losses.csv", exp_dir / "loss_curves.png"))
        )
    if metrics:

        def compute():
            from .. import metrics as m

            out = dict(record["metrics"])
            evaluated = m.metrics_for(
                spec, trainer, np.random.default_rng([spec.seed, EVAL_SEED_KEY]), n_samples=n_eval, dataset=dataset
            )
            out.update(evaluated)
            record["metrics"] = out
            record["metrics_evaluated"] = True
            if record.get("curve") is not None:  # the end of the curve is the final evaluation
                point = {"step": record["steps_done"], **evaluated}
                record["curve"] = [p for p in record["curve"] if p["step"] < point["step"]] + [point]
                _append_curve(exp_dir / "curve.csv", point)

        parts.append(("metrics", compute))
    else:
        record["metrics_evaluated"] = False
    try:
        for part, fn in parts:
            _try(record, part, fn)
    except KeyboardInterrupt:
        record["status"] = "interrupted"
        record["error"] = f"interrupted (Ctrl-C) during evaluation ({part}); the trained state is kept"
        record["ended_at"] = records.now_iso()
        records.write_record(record_path, record)
        raise
    record["status"] = "metrics_failed" if record["errors"] else "ok"
    record["phase"] = "done" if record["status"] == "ok" else "evaluation"
    record["trained"] = dict(zip(("ok", "why"), trained.check(record)))  # the study's criterion, at write time
    timing = record.setdefault("timing", {})
    timing["eval_s"] = time.perf_counter() - t0
    timing["wall_s"] = timing.get("train_s_wall", timing.get("train_s", 0.0)) + timing["eval_s"]
    record["ended_at"] = records.now_iso()
    records.write_record(record_path, record)
    return record


def _curve_point(trainer, spec, step: int, n_eval: int, dataset, exp_dir) -> dict:
    """The quick metrics at `step` (samples from default_rng([seed, EVAL_SEED_KEY, step])),
    appended to curve.csv; a metric that fails is left out of the point, training goes on."""
    from .. import metrics as m

    point = {"step": step}
    try:
        point.update(
            m.metrics_for(
                spec,
                trainer,
                np.random.default_rng([spec.seed, EVAL_SEED_KEY, step]),
                n_samples=n_eval,
                dataset=dataset,
            )
        )
    except Exception as e:  # noqa: BLE001 - recorded in the point
        point["error"] = f"{type(e).__name__}: {e}"
    _append_curve(exp_dir / "curve.csv", point)
    return point


def _append_curve(path: Path, point: dict) -> None:
    rows: list[dict] = []
    if path.exists():
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    rows = [r for r in rows if int(r["step"]) != point["step"]] + [dict(point)]
    fields = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    records.atomic_write_text(path, buf.getvalue())


def _timing(step_times: list[float], images_per_step: int, loop_times=()) -> dict:
    """The median model step (`train_step` alone; the first one pays for tracing/compilation
    and is reported apart) and the median whole loop iteration as `genbench run` executes it
    (real batch, random draws, the step, loss logging; epoch-end grids are rare and the median
    leaves them out); overhead_pct = 100 (loop - step) / step."""
    nan = float("nan")
    if not step_times:
        return {
            "train_s": 0.0,
            "ms_per_step": nan,
            "images_per_s": nan,
            "first_step_ms": nan,
            "loop_ms_per_step": nan,
            "overhead_pct": nan,
        }
    steady = step_times[1:] or step_times
    median = float(np.median(steady))
    loop = float(np.median(loop_times[1:] or loop_times)) if len(loop_times) else nan
    return {
        "train_s": float(sum(step_times)),
        "ms_per_step": 1000.0 * median,
        "images_per_s": images_per_step / median,
        "first_step_ms": 1000.0 * step_times[0],
        "loop_ms_per_step": 1000.0 * loop,
        "overhead_pct": 100.0 * (loop - median) / median,
    }
