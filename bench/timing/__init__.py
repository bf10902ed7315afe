"""Timing: the measured GEMM peak (peak), the analytic FLOP counts per model (flops), and the
table written from pytest-benchmark's JSON (timing_table)."""


def add_threads_option(parser) -> None:
    """`--threads N` for the timing tools (layers, profile)."""
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="pin this process to N cores and every library to N threads, as one `genbench run --jobs` "
        "worker trains (default: each library's own threads on every core)",
    )


def pin_from_args(parser, threads) -> None:
    """Apply --threads before anything is built or timed; a bad count is a usage error."""
    if threads is None:
        return
    from ..runs.executors import pin_process

    try:
        pin_process(threads)
    except ValueError as e:
        parser.error(f"--threads: {e}")
