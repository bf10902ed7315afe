"""The metrics a record carries, each written once: the function that computes it, which
direction is better (what the regression gate checks), its unit, and whether the comparison
tables show it first. bench/checks/gate.py DIRECTIONS and bench/runs/tables.py HEAD_METRICS
are read from here; adding a metric starts here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import fidelity, modes, stability, vae


@dataclass(frozen=True)
class Metric:
    name: str
    function: Callable | None  # computes it (among others it returns); None: metrics_for itself
    direction: str | None  # "lower" or "higher" is better: gated; None: shown, not gated
    unit: str
    head: bool  # the tables show it before the others, in this table's order


METRICS: tuple[Metric, ...] = (
    Metric("fid", fidelity.fidelity_metrics, "lower", "", True),
    Metric("kid_mean", fidelity.fidelity_metrics, "lower", "", True),
    Metric("classes_covered", modes.class_coverage, "higher", "classes", True),
    Metric("class_kl", modes.class_coverage, "lower", "nats", True),
    Metric("modes_covered", modes.mixture_metrics, "higher", "modes", True),
    Metric("high_quality_share", modes.mixture_metrics, "higher", "fraction", True),
    Metric("test_elbo", vae.test_elbo, "higher", "nats", True),
    Metric("test_recon", vae.test_elbo, None, "nats", True),
    Metric("test_kl", vae.test_elbo, None, "nats", True),
    Metric("test_recon_mse", None, None, "", True),  # VAE-GAN's pixel MSE, where no ELBO is defined
    Metric("knn_accuracy", vae.latent_knn_accuracy, "higher", "fraction", True),
    Metric("d_loss_std", stability.loss_summary, None, "", True),
    Metric("mode_kl", modes.mixture_metrics, "lower", "nats", False),
    Metric("precision", fidelity.fidelity_metrics, "higher", "fraction", False),
    Metric("recall", fidelity.fidelity_metrics, "higher", "fraction", False),
    Metric("isc_mean", fidelity.fidelity_metrics, "higher", "", False),
    Metric("iwae_nll", vae.iwae_nll, "lower", "nats", False),
)
BY_NAME = {m.name: m for m in METRICS}
DIRECTIONS = {m.name: m.direction for m in METRICS if m.direction}  # what the gate checks
HEAD_METRICS = tuple(m.name for m in METRICS if m.head)  # the tables' first columns, in order
