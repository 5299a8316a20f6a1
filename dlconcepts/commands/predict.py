"""``dlconcepts predict IMAGE... --checkpoint DIR``: classify your own digit images.

Each PNG or JPEG, of any size, is prepared the way MNIST's digits were: grayscale, inverted
when it is dark ink on a light background, cropped to the ink, scaled so its longer side is
20 pixels, and placed in a 28×28 field with its centre of mass at the centre; then normalised
as in training. ``--mnist-index I`` takes test digit I instead. Prints the top 3 classes with
their probabilities. The checkpoint comes from ``dlconcepts train --out DIR``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import UnidentifiedImageError

from dlconcepts.commands import _common

with _common.lazy_imports():
    import torch
    from PIL import Image, ImageOps

    from dlconcepts import data, losses, training

BOX = 20  # MNIST's digits fit a 20×20 box, centred by mass in 28×28
TOP = 3


class Unreadable(ValueError):
    """An image that cannot be read or holds no digit."""


def mnist_like(image: Image.Image) -> torch.Tensor:
    """A digit picture as MNIST would have it: (28, 28) floats in [0, 1], light ink on black."""
    # imported here, not lazily: torch's own import looks into a torchvision in sys.modules
    from torchvision.transforms.functional import pil_to_tensor

    if "A" in image.getbands():  # transparent background: put it on white
        white = Image.new("RGBA", image.size, "white")
        image = Image.alpha_composite(white, image.convert("RGBA"))
    gray = image.convert("L")
    pixels = pil_to_tensor(gray)[0].float() / 255
    border = torch.cat([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    if border.median() > 0.5:  # dark ink on a light background
        gray = ImageOps.invert(gray)
    box = gray.point(lambda p: 255 if p > 40 else 0).getbbox()
    if box is None:
        raise Unreadable("expected a digit, found a blank image")
    digit = gray.crop(box)
    scale = BOX / max(digit.size)
    size = (max(1, round(digit.width * scale)), max(1, round(digit.height * scale)))
    digit = pil_to_tensor(digit.resize(size, Image.Resampling.LANCZOS))[0].float() / 255
    # place it so its centre of mass is at the centre of the 28×28 field
    rows, cols = torch.arange(size[1]).float(), torch.arange(size[0]).float()
    mass = digit.sum()
    centre_y = float((digit.sum(1) * rows).sum() / mass)
    centre_x = float((digit.sum(0) * cols).sum() / mass)
    side = data.IMAGE_SIDE
    top = min(max(round(side / 2 - 0.5 - centre_y), 0), side - size[1])
    left = min(max(round(side / 2 - 0.5 - centre_x), 0), side - size[0])
    field = torch.zeros(side, side)
    field[top : top + size[1], left : left + size[0]] = digit
    return field


def read_image(path: Path) -> torch.Tensor:
    """:func:`mnist_like` of the image file at ``path``; :class:`Unreadable` if it is not one."""
    try:
        with Image.open(path) as image:
            image.load()
            return mnist_like(image)
    except (UnidentifiedImageError, OSError, ValueError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e).split("\n")[0]
        raise Unreadable(f"{path}: expected a PNG or JPEG image, got {reason}") from None


def top_classes(model: torch.nn.Module, x: torch.Tensor) -> str:
    """The ``TOP`` most probable classes of one normalised (784,) input, as text."""
    with torch.no_grad():
        p = losses.softmax(model(x.reshape(1, -1)))[0]
    best = p.topk(TOP)
    return ", ".join(f"{int(c)} ({100 * float(v):.1f}%)" for v, c in zip(best.values, best.indices))


def build_parser() -> argparse.ArgumentParser:
    p = _common.parser("predict", __doc__, [_common.options("data-dir")])
    p.add_argument("images", nargs="*", type=Path, help="PNG or JPEG files")
    p.add_argument(
        "--checkpoint",
        type=Path,
        required=True,
        help="a `dlconcepts train --out DIR` folder, or its checkpoint.pt",
    )
    p.add_argument("--mnist-index", type=int, help="also classify MNIST test digit I")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.images and args.mnist_index is None:
        parser.error("expected IMAGE files or --mnist-index I, got neither")
    try:
        model, cfg = training.model_from_checkpoint(_common.checkpoint_path(args.checkpoint))
    except training.CheckpointError as e:
        return _common.error(e)
    model.eval()
    dtype = training.DTYPES[cfg.dtype]
    mean, std = data.MEAN_STD[cfg.dataset]
    failed = 0
    for path in args.images:
        try:
            pixels = read_image(path)
        except Unreadable as e:
            failed += _common.error(e)
            continue
        print(f"{path}: {top_classes(model, ((pixels - mean) / std).to(dtype))}")
    if args.mnist_index is not None:
        try:
            test = data.load(cfg.dataset, train=False, data_dir=args.data_dir, dtype=dtype)
        except data.DataError as e:
            return _common.error(e)
        if not 0 <= args.mnist_index < len(test):
            return _common.error(
                f"--mnist-index: expected 0 to {len(test) - 1}, got {args.mnist_index}"
            )
        label = int(test.labels[args.mnist_index])
        print(
            f"{cfg.dataset} test digit {args.mnist_index} (label {label}): "
            f"{top_classes(model, test.images[args.mnist_index])}"
        )
    return 1 if failed else 0
