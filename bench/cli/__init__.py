"""The `genbench` command line: run, study, list, data, gate, baseline, tables, report, eval,
train-evaluator, equivalence. Defaults come from bench/core/registry.py, the single place that defines them.

The package: :mod:`.options` (shared choices, defaults, exit codes, list parsers), :mod:`.parser`
(build_parser), :mod:`.run` (run, study and the experiment matrix), :mod:`.commands` (the other
commands); ``main`` dispatches and maps errors to exit codes."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from ..core import cpu  # noqa: E402

cpu.apply_tf_onednn()  # before any command imports TensorFlow (bench/core/cpu.py)

from ..core.specs import SpecError  # noqa: E402
from .commands import (  # noqa: E402
    cmd_baseline,
    cmd_data,
    cmd_equivalence,
    cmd_eval,
    cmd_gate,
    cmd_list,
    cmd_report,
    cmd_tables,
    cmd_train_evaluator,
)
from .options import (  # noqa: E402
    EQUIVALENCE_DTYPES,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    FRAMEWORK_CHOICES,
    RUN_DEFAULTS,
    TF_VARIANTS,
    UsageError,
    _models,
    _seeds,
    _steps,
)
from .parser import build_parser  # noqa: E402
from .run import cmd_run, cmd_study  # noqa: E402

COMMANDS = {
    "run": cmd_run,
    "study": cmd_study,
    "list": cmd_list,
    "data": cmd_data,
    "gate": cmd_gate,
    "baseline": cmd_baseline,
    "tables": cmd_tables,
    "report": cmd_report,
    "eval": cmd_eval,
    "train-evaluator": cmd_train_evaluator,
    "equivalence": cmd_equivalence,
}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    args._command = list(sys.argv) if argv is None else ["genbench", *map(str, argv)]
    from ..checks.gate import BaselineError
    from ..core.data import DataError
    from ..metrics import SamplesFileError
    from ..metrics.evaluator import EvaluatorError
    from ..runs.records import RecordError, WriteError

    try:
        return COMMANDS[args.command](args)
    except (
        UsageError,
        SpecError,
        DataError,
        BaselineError,
        SamplesFileError,
        EvaluatorError,
        RecordError,
        FileNotFoundError,
    ) as e:
        print(f"genbench {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except WriteError as e:  # disk full, permissions: the previous content of the file is intact
        print(f"genbench {args.command}: error: {e}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:  # `genbench run` handles Ctrl-C in its matrix itself; this is anywhere else
        print(f"genbench {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
