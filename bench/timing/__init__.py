"""Timing: the measured GEMM peak (peak), the analytic FLOP counts per model (flops), and the
table written from pytest-benchmark's JSON (timing_table)."""
