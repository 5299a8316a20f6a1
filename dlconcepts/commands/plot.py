r"""``dlconcepts plot WHAT``: draw the docs' pictures (needs the 'plot' extra).

========================= ==================================================================
WHAT                      picture
========================= ==================================================================
``activations``           ``activations.png``: sigmoid, tanh and ReLU and their derivatives,
                          computed by the hand-written Functions (f' through our backward)
``curves``                ``training_curves.png``: test cost and accuracy per epoch of the
                          ``dlconcepts study`` grid (read from its ``results.json``)
``signals``               ``signals.png``: std of the activations and gradients per layer of
                          a deep MLP at initialization (``dlconcepts signals``), log scale
``worst``                 ``worst_digits.png``: the test digits with the highest loss
``weights``               ``init_weights.png``: each initialization's weights against the
                          density its formula says they follow; with ``--checkpoint`` also
                          ``learned_weights.png``: its first-layer weights as 28×28 images,
                          beside the initial ones
``all``                   all of the above
========================= ==================================================================

The pictures go into ``--out``, ``runs/plot`` under the current directory by default.
``curves`` and ``signals`` draw what ``dlconcepts study`` and ``dlconcepts signals`` saved,
looked for in the ``--results`` folders (their default outputs, ``runs/study`` and
``runs/signals``); a folder given with ``--results`` must exist, a default one need not.
Signals without a ``signals.json`` are measured here (a second or two);
a study without a ``results.json`` is trained here only with ``--dry-run`` (a tiny grid),
since the real one takes minutes. The docs' pictures are
``dlconcepts plot all --results docs/results --out docs/img``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dlconcepts.commands import _common

with _common.lazy_imports():
    from dlconcepts import activations, data, experiments, figures, training

FILES: dict[str, str] = {
    "activations": "activations.png",
    "curves": "training_curves.png",
    "signals": "signals.png",
    "worst": "worst_digits.png",
    "weights": "init_weights.png",
}
LEARNED = "learned_weights.png"  # plot weights --checkpoint
# where `dlconcepts study` and `dlconcepts signals` write when given no --out
RESULTS = [Path("runs", "study"), Path("runs", "signals")]


class Missing(Exception):
    """What a picture is drawn from is not there: another command makes it first."""


def read_saved(path: Path) -> dict[str, Any]:
    """A ``results.json`` or ``signals.json``; a damaged one is a ``ValueError`` naming it."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: expected the JSON its command wrote, got {e}") from None


def results_folder(text: str) -> Path:
    """``--results``: a folder that exists. A misspelt one would otherwise be looked in, found
    empty, and the signals measured afresh as if nothing had been saved."""
    path = Path(text)
    if not path.is_dir():
        found = "a file" if path.exists() else "no such folder"
        raise argparse.ArgumentTypeError(
            f"expected a folder of saved results, got {text!r}: {found}"
        )
    return path


def find(folders: Sequence[Path], name: str) -> Path | None:
    """The first ``folder/name`` that is a file, if any."""
    return next((folder / name for folder in folders if (folder / name).is_file()), None)


def splits(cfg: training.TrainConfig) -> tuple[data.InMemoryDataset, data.InMemoryDataset]:
    """The data ``cfg`` trains on, on its device; a :class:`~dlconcepts.data.DataError` fails
    one picture, not the whole command."""
    return data.load_splits(**_common.split_options(cfg, _common.device(cfg.device)))


def study_results(args: argparse.Namespace) -> dict[str, Any]:
    """The study's ``results.json``; with ``--dry-run`` and none saved, a tiny grid run here."""
    saved = find(args.results, "results.json")
    if saved is not None:
        return read_saved(saved)
    if not args.dry_run:
        folders = " or ".join(map(str, args.results))
        raise Missing(
            f"expected the study's results.json in {folders}, found none; make it first with "
            "`dlconcepts study` (minutes; `dlconcepts study --dry-run` for a quick look), "
            "or pass --results DIR"
        )
    print("curves: no results.json saved; training a tiny study grid here (--dry-run)")
    cfg = _common.train_config(args, experiments.STUDY)
    runs = experiments.run_study(
        cfg, tuple(activations.ACTIVATIONS), _common.INITS, [cfg.seed], *splits(cfg), progress=False
    )
    return {"config": training.config_dict(cfg), "runs": [dataclasses.asdict(r) for r in runs]}


def signals_payload(args: argparse.Namespace) -> dict[str, Any]:
    """The signals' ``signals.json``, or the same numbers measured now."""
    saved = find(args.results, "signals.json")
    if saved is not None:
        return read_saved(saved)
    print("signals: no signals.json saved; measuring them here")
    size = experiments.SIGNALS_DRY_RUN_BATCH if args.dry_run else experiments.SIGNALS_BATCH
    batch = data.load("mnist", train=True, data_dir=args.data_dir, limit=size)
    return experiments.measure_signals(
        batch, tuple(activations.ACTIVATIONS), _common.INITS, seed=args.seed
    )


def worst_digits(args: argparse.Namespace, path: Path) -> Path:
    """``worst_digits.png`` for the ``--checkpoint``'s model, or for one trained here."""
    if args.checkpoint is not None:
        model, cfg = _common.trained_model(args.checkpoint)
        test_set = data.load(
            cfg.dataset, train=False, data_dir=args.data_dir, dtype=training.DTYPES[cfg.dtype]
        )
        losses, predictions = training.evaluate(model, test_set, training.cost_fn(cfg.impl))
    else:
        # the main job's model (784-800-10, ReLU + He, Adam), trained briefly
        cfg = _common.train_config(args, progress=False)
        train_set, test_set = splits(cfg)
        result = training.fit(cfg, train_set, test_set)
        assert result.test_losses is not None and result.test_predictions is not None
        losses, predictions = result.test_losses, result.test_predictions
    return figures.plot_worst(
        test_set.images, test_set.labels.cpu(), predictions, losses, path, dataset=cfg.dataset
    )


def learned_weights(checkpoint: Path, path: Path) -> Path:
    """``learned_weights.png``: the checkpoint's first-layer weights beside the initial ones,
    rebuilt from its config (the initialization is seeded)."""
    model, cfg = _common.trained_model(checkpoint)
    (_, initial), (_, learned) = training.build_model(cfg).linears()[0], model.linears()[0]
    return figures.plot_learned_weights(initial.weight.detach(), learned.weight.detach(), path)


def draw(what: str, args: argparse.Namespace) -> list[Path]:
    """Draw one picture (two for ``weights --checkpoint``) into ``args.out``; their paths."""
    path = args.out / FILES[what]
    if what == "activations":
        return [figures.plot_activations(path)]
    if what == "curves":
        return [figures.plot_curves(study_results(args), path)]
    if what == "signals":
        return [figures.plot_signals(signals_payload(args), path)]
    if what == "worst":
        return [worst_digits(args, path)]
    drawn = [figures.plot_init_weights(path, _common.INITS, seed=args.seed)]
    if args.checkpoint is not None:
        drawn.append(learned_weights(args.checkpoint, args.out / LEARNED))
    return drawn


def build_parser() -> argparse.ArgumentParser:
    shared = _common.options("epochs", "seed", "device", "data-dir", "dry-run", epochs=2, seed=1)
    p = _common.parser("plot", __doc__, [shared, _common.out_option("plot", "the PNGs")])
    p.add_argument("what", choices=[*FILES, "all"], help="which picture")
    p.add_argument(
        "--results",
        type=results_folder,
        nargs="+",
        default=RESULTS,
        help="folders to look in for the study's results.json and the signals' signals.json",
    )
    p.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="a `dlconcepts train --out DIR` folder (or its checkpoint.pt): worst uses its "
        "model instead of training one here for --epochs; weights also draws its learned "
        "first-layer weights",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        figures.require_matplotlib()
    except figures.MissingExtra as e:
        return _common.error(e)
    pictures = list(FILES) if args.what == "all" else [args.what]
    drawn, failed = 0, 0
    for what in pictures:
        try:
            paths = draw(what, args)
        except (Missing, data.DataError) as e:
            if len(pictures) == 1:  # the one picture asked for
                return _common.error(f"plot {what}: {e}")
            # `plot all` draws what it can, and says what to run for the rest
            print(f"warning: plot {what}: not drawn: {e}", file=sys.stderr)
        except (training.CheckpointError, ValueError) as e:
            failed += _common.error(f"plot {what}: {e}")
        else:
            drawn += len(paths)
            print("\n".join(f"wrote {path}" for path in paths))
    return 1 if failed or not drawn else 0
