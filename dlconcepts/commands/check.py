"""``dlconcepts check``: every hand-written gradient proven against PyTorch, in one table.

For each case of the registry in ``dlconcepts.proofs`` (the one the tests run too), in
float64: ``gradcheck`` (with forward AD and batched gradients), ``gradgradcheck``, and the
largest difference from the built-in's value and gradient. Then manual backpropagation
against autograd on an MLP, and the multivariable chain rule on a two-path example.
"""

from __future__ import annotations

import warnings

from dlconcepts.commands import _common

with _common.lazy_imports():
    from dlconcepts import backprop, proofs


def passed(ok: bool) -> str:
    return "pass" if ok else "FAIL"


def main(argv: list[str] | None = None) -> int:
    parser = _common.parser("check", __doc__, [_common.options("device", device="cpu")])
    args = parser.parse_args(argv)
    device = _common.device(args.device)
    # gradcheck's batched-gradient check goes through torch.jit internally; its deprecation
    # warning says nothing about our code
    warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)
    rows = [proofs.check_case(c, device) for c in proofs.CASES]
    bp = proofs.check_backprop(device)
    header = ("piece", "gradcheck", "gradgrad", "max |Δvalue|", "max |Δgrad|")
    cells = [
        (
            r.name,
            passed(r.gradcheck),
            passed(r.gradgradcheck),
            f"{r.value_diff:.1e}",
            f"{r.grad_diff:.1e}",
        )
        for r in rows
    ]
    cells.append((bp.name, "", "", "", f"{bp.grad_diff:.1e}"))
    print(_common.text_table(header, cells))
    print(f"({bp.name}: the largest difference from autograd, relative)")
    print("\nThe multivariable chain rule (derivatives along several paths add up):")
    print(backprop.chain_rule_paths())
    ok = all(r.ok for r in rows) and bp.grad_diff < 1e-10
    print(f"\n{'all checks passed' if ok else 'SOME CHECKS FAILED'} (float64, device {device})")
    return 0 if ok else 1
