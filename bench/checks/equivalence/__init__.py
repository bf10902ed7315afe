"""Cross-framework equivalence: the PyTorch twin and the TensorFlow twin, step by step.

Both twins of a case are built from one spec; the TensorFlow twin takes the weights the
PyTorch twin exports (canonical layout, round trip checked bit for bit), and each twin draws
its harness randomness from its own, identically seeded, NumPy generator. Then, for N steps:
every loss term of every step, every gradient of the last D (critic) step and of the G (and E)
step (`record_grads`), and every parameter and buffer after every step (batch-norm running
statistics, spectral-norm u); forward outputs (sample, discriminate, encode, decode, in
evaluation mode) before the first step and after the last. The first tensor out of tolerance
is named with its step: `dcgan [float64] step 0 params: G.bn0.running_mean differs, max abs
0.069 > 1.8e-11 (max rel 0.88, atol 1e-11, rtol 1e-10)`.

float64: fixed tolerances
-------------------------
A float64 tensor passes when

    max|torch - tf| <= atol + rtol * max|tf|

- The relative part scales with the tensor's largest magnitude, not element by element:
  single elements can be pure rounding noise. Dtypes and shapes must match exactly, NaN must
  sit at the same places (this holds in float32 too).
- Gauge tensors (gauge_names): a bias that feeds batch norm directly has an exactly zero
  gradient (batch norm subtracts the batch mean), so its gradient is rounding noise, different
  in each twin, which Adam and RMSprop scale up by as much as lr / eps: the bias wanders
  without changing any loss or other gradient, and the running mean follows it. It is held to
  a multiple of optimizer_reach(), how far the optimizer can move any parameter in those steps
  (1e-5 of it). Its gradient is judged against its network's largest gradient, and before the
  final forward check every twin takes PyTorch's gauge tensors (evaluation mode sees them). The
  relativistic average GAN (ragan) adds one more: its losses do not change when every D score
  shifts by a constant, so the bias of D's output layer has an exactly zero gradient too.

float32: bounds from both twins' own rounding
---------------------------------------------
A float32 case trains four twins side by side: PyTorch and TensorFlow in float32, and each of
them again in float64, all four from the same (float32) weights and on the same float32 inputs
(the float64 twins get them upcast, so that their runs differ from the float32 ones by
arithmetic only). The two float64 twins are held to the float64 tolerances above, in the same
run. A float32 tensor passes, at each step, when

    max|t32 - f32| <= (2.5 * max(e_torch, e_tf) + 2 * eps32) * s,   s = max|f32|,
    e_torch = max|t32 - t64| / s,   e_tf = max|f32 - f64| / s,

with t = the PyTorch twin, f = the TensorFlow twin, eps32 = 2**-23 = 1.19e-7 (FLOAT32_MODEL).

- Why: the triangle inequality, element by element and so for the largest element,
  |t32 - f32| <= |t32 - t64| + |t64 - f64| + |f64 - f32| <= 2 max(E_torch, E_tf) + D64,
  where D64 = max|t64 - f64| is held to 1e-10 s in the same run (measured at most 1.7e-12 s
  over the full product), far below eps32 s. Two float32 implementations of one computation can differ
  by no more than what each one's own rounding moved it, whatever that rounding was: summation
  order, vector width (SSE4.1, AVX2, AVX-512, AMX), thread count, oneDNN, MKL or Eigen. Both
  twins' errors are measured on the machine that runs the check, so the bound moves with that
  machine's rounding, and nothing in it was fitted to the machine the tables came from.
- factor 2.5: 2 is what the inequality needs; the other 0.5 is slack for D64 and for the
  float64 evaluation of the differences. Two correct twins' difference can therefore reach at
  most 0.8 of its bound (2 / 2.5, when they round in opposite directions by the same amount);
  a larger ratio anywhere, on any CPU, means a defect.
- floor 2 eps32: two float32 ulps at the tensor's largest magnitude (one ulp at s is at most
  eps32 * s), the bound that is left when both twins' float32 results equal their float64
  runs; it is far above D64 and far below any real defect.
- Per tensor and per step: float32 drifts from the exact trajectory in places (LeakyReLU
  units cross their kink at random once weights have drifted by ~1e-6, and the gradient jumps;
  a WGAN critic amplifies rounding over its 5 updates a step), and there e is large for those
  tensors at those steps only; everywhere else e is 1e-8 to 1e-4 and the bound stays that
  tight. A PyTorch-only yardstick was not enough: TensorFlow's float32 can cross a kink where
  PyTorch's does not (its own error is then the larger one), which depends on the CPU's
  rounding.
- Cap 10 %: no float32 bound may exceed 0.10 relative (MAX_FLOAT32_RTOL, enforced in
  _Checker). A tensor whose bound would be wider is not compared at that step: float32 has
  left the exact trajectory there, and a wider bound would let real differences through. The
  row's `not_compared` lists those (quantity, count, steps); the float64 twins are still
  compared at 1e-10 at that step. In the default cases: the float32 gauge biases, whose own
  error is their whole size, and at steps 3-4 (critic updates 16 to 25) 11 WGAN and 4
  WGAN-GP gradients and WGAN's D.conv1.bias; in the full product also three more WGAN /
  WGAN-GP variants at steps 3-4, gradients only.
- What it catches: a defect in a twin's code shows in both of its dtypes (the code is
  dtype-generic), so its float32 and float64 runs agree with each other and disagree with the
  other twin: e stays at rounding level and the bound stays tight. suites/test_equivalence.py
  plants a 1 % error in every optimizer update of either twin and checks that the float32
  comparison itself fails in every default case (the float64 twins fail too).
- What it cannot catch: a defect in one twin's float32 arithmetic only (a kernel that rounds
  through bfloat16, TF32 on a GPU) is that twin's own float32 error by definition, and widens
  its bound (past 4 % it takes the tensor out of the comparison); the float64 twins, held to
  1e-10, are what checks the code.
- Gauge tensors follow the same rule in float32, their gradients against their network's
  largest gradient; the gauge biases themselves are never compared (their own error is ~1).

Tolerances and the worst measured values over the default cases, 5 steps at small widths
(results/tables/equivalence.md lists every default case; "full" is the model x stabilizer x
optimizer product, `-m slow`):

| dtype   | quantity    | atol  | rtol  | default | full    | why this size |
|---------|-------------|-------|-------|---------|---------|---------------|
| float64 | weights     | 0     | 0     | 0       | 0       | a layout transpose moves bits, never rounds |
| float64 | outputs     | 1e-12 | 1e-10 | 4.5e-13 | 4.5e-13 | summation order differs (oneDNN vs ATen), ~1e-16 x sqrt(fan-in) per layer; 1e-10 still catches a float32 constant (3e-9 relative, as tf.nn.leaky_relu's alpha was) |
| float64 | losses      | 1e-12 | 1e-10 | 9.5e-15 | 4.9e-14 | as outputs; ELBO terms are sums over 784 pixels |
| float64 | grads       | 1e-12 | 1e-10 | 1.5e-14 | -       | as outputs, through one backward pass |
| float64 | grads_later | 1e-12 | 1e-10 | 1.0e-12 | 1.0e-12 | float64 drift is ~1e-13, far from any kink |
| float64 | params      | 1e-11 | 1e-10 | 2.0e-12 | 1.1e-11 | RMSprop/Adam divide by sqrt(v) + eps: tiny gradients' rounding is scaled up by up to lr/eps ~ 1e5 |
| float64 | gauge       | 0     | 1e-5  | 6.3e-10 | 1.3e-06 | x optimizer_reach: gradient noise ~1e-16 x gradient scale, times lr/eps |
| float32 | weights     | 0     | 0     | 0       | 0       | as float64 |
| float32 | all others  | 0     | 2.5 max(e_torch, e_tf) + 2 eps32, at most 0.10 | 0.80 of bound; widest 0.089 | 0.80; widest 0.095 | the error model above |

For float32 the "default" and "full" columns give the largest difference as a fraction of its
bound (at most 0.8 for correct twins, as above) and the widest bound that was used.

The package holds :mod:`.trees` (comparing two trees of arrays), :mod:`.bounds` (the error
model above and the checker that applies it), :mod:`.cases` (the case lists and their inputs),
:mod:`.running` (one case) and :mod:`.table` (many cases, the tables, `genbench equivalence`).
"""

from __future__ import annotations

from . import bounds, cases, running, table, trees
from .bounds import (
    EPS32,
    FLOAT32_MODEL,
    MAX_FLOAT32_RTOL,
    QUANTITIES,
    TOLERANCES,
    _Checker,
    assert_twins_close,
    float32_rtol,
    gauge_names,
    optimizer_reach,
    own_error,
)
from .cases import (
    DATA_SEED,
    NOISE_SEED,
    OPTIMIZER_CASES,
    PROBE_SEED,
    REPRESENTATIVE,
    SMALL,
    Case,
    batch,
    default_cases,
    forward,
    parse_case,
    probes,
    random_weights,
)
from .running import _upcast, not_compared_summary, run_case
from .table import COLUMNS, main, run_equivalence, tolerance_rows, write_table
from .trees import EquivalenceError, assert_close_tree, compare, violation
