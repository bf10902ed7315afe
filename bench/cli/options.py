"""What the command line shares: its bad-input error, choices, defaults, exit codes and the
parsers of list-valued options (seeds, steps, models)."""

from __future__ import annotations

from ..core import registry

FRAMEWORK_CHOICES = ("torch", "tensorflow", "both")
EQUIVALENCE_DTYPES = ("float64", "float32")
TF_VARIANTS = registry.VARIANTS["tensorflow"]  # as the twin reads them: no TensorFlow import


class UsageError(Exception):
    """Bad input from the command line: printed as one line, exit code 2."""


# None: the profile's own choice (registry.profile_experiments: mnist and dcgan,vae; the ci profile's matrix)
RUN_DEFAULTS = {
    "profile": "quick",
    "dataset": None,
    "framework": "both",
    "models": None,
    "seeds": "0",
    "steps": None,
    "device": "cpu",
    "float32_precision": "full",
    "data_dir": None,
    "no_metrics": False,
    "convention": "torch",
    "randomness": "reproducible",
}
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _seeds(text: str) -> list[int]:
    """'0,1,2' or '0-2' -> [0, 1, 2]; UsageError (one line) for anything else."""
    out = []
    for part in str(text).split(","):
        part = part.strip()
        try:
            if "-" in part[1:]:
                lo, hi = (int(x) for x in part.split("-", 1))
                if lo > hi:
                    raise UsageError(
                        f"--seeds {text!r}: {part} is an empty range ({lo} > {hi}); write low-high, e.g. {hi}-{lo}"
                    )
                out += list(range(lo, hi + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise UsageError(f"--seeds takes integers like '0,1,2' or '0-4', got {text!r}") from None
    if any(s < 0 for s in out):
        raise UsageError(f"--seeds {text!r}: seeds must be >= 0")
    dup = sorted({s for s in out if out.count(s) > 1})
    if dup:
        raise UsageError(f"--seeds {text!r}: seed {dup[0]} appears twice")
    return out


def _steps(text) -> int | None:
    if text is None:
        return None
    try:
        steps = int(text)
    except ValueError:
        raise UsageError(f"--steps takes a positive integer, got {text!r}") from None
    if steps < 1:
        raise UsageError(f"--steps must be >= 1, got {steps}")
    return steps


def _models(text: str) -> list[tuple[str, tuple[str, ...]]]:
    if text == "matrix":
        return list(registry.SEED_MATRIX)
    if text == "all":
        return [(m, ()) for m in registry.MODELS]
    out = [registry.parse_model(t) for t in text.split(",") if t.strip()]
    if not out:
        raise UsageError(f"--models {text!r} names no model; `genbench list` shows the catalog")
    return out
