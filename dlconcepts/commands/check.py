"""``dlconcepts check``: every hand-written gradient proven against PyTorch, in one table.

For each case of the registry in ``dlconcepts.proofs`` (the one the tests run too), in
float64: ``gradcheck`` (with forward AD and batched gradients), ``gradgradcheck``, and the
largest difference from the built-in's value and gradient. Then manual backpropagation
against autograd on an MLP, and the multivariable chain rule on a two-path example.

``--function FILE.py:NAME --against PIECE`` checks *your own* ``torch.autograd.Function``
(or function) instead, with ``dlconcepts.testing``: the table of its checks, exit status 0
when every required check passes and 1 otherwise; ``--json FILE`` writes the report too.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from dlconcepts.commands import _common

with _common.lazy_imports():
    from dlconcepts import backprop, proofs, testing

# testing.AGAINST, without importing torch for --help
AGAINST = (
    "sigmoid",
    "tanh",
    "relu",
    "linear",
    "cross_entropy",
    "mse_loss",
    "binary_cross_entropy_with_logits",
    "backprop",
)


def passed(ok: bool) -> str:
    return "pass" if ok else "FAIL"


def main(argv: list[str] | None = None) -> int:
    parser = _common.parser("check", __doc__, [_common.options("device", device="cpu")])
    parser.add_argument(
        "--function",
        metavar="FILE.py:NAME",
        help="your own autograd.Function or function to check: FILE.py:NAME or module:NAME "
        "(needs --against)",
    )
    parser.add_argument(
        "--against",
        choices=AGAINST,
        help="the piece it should equal: PyTorch's built-in of that name (backprop: "
        "NAME(model, x, target) returns every parameter's gradient, checked against autograd)",
    )
    parser.add_argument(
        "--json",
        **{**_common.OPTIONS["json"], "help": "with --function: also write the report as JSON"},
    )
    args = parser.parse_args(argv)
    if args.function is not None and args.against is None:
        parser.error(f"--against: expected the piece {args.function} should equal, got nothing")
    if args.function is None and (args.against or args.json):
        given = " and ".join(
            o for o, v in (("--against", args.against), ("--json", args.json)) if v
        )
        parser.error(f"--function: expected FILE.py:NAME to go with {given}, got nothing")
    device = _common.device(args.device)
    if args.function is not None:
        return check_yours(parser, args.function, args.against, device, args.json)
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
    ok = all(r.ok for r in rows) and bp.grad_diff < proofs.TOLERANCE
    print(f"\n{'all checks passed' if ok else 'SOME CHECKS FAILED'} (float64, device {device})")
    return 0 if ok else 1


def check_yours(
    parser: argparse.ArgumentParser,
    spec: str,
    against: str,
    device: object,
    json_path: Path | None,
) -> int:
    """``--function``: the report of ``dlconcepts.testing.check_function`` on what ``spec``
    names; a file that does not load is one line naming its line, and exit status 2."""
    try:
        fn = testing.load(spec)
        report = testing.check_function(fn, against, device=device)
    except (ValueError, TypeError) as e:
        parser.error(str(e))
    print(report)
    if json_path is not None:
        _common.write_json(json_path, {"function_spec": spec, **report.to_dict()})
        print(f"wrote {json_path}")
    return 0 if report.passed else 1
