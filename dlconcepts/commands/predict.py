"""``dlconcepts predict IMAGE... --checkpoint DIR``: classify your own digit images.

Any image Pillow reads (PNG, JPEG, TIFF, BMP, GIF, WebP, ...), of any size, is prepared the
way MNIST's digits were: grayscale, inverted when it is dark ink on a light background,
cropped to the ink, scaled so its longer side is 20 pixels, and placed in a 28×28 field with
its centre of mass at the centre; then normalised as in training. A 28×28 image is already in
MNIST's format and is taken as it is (only inverted if it is dark on light), so a test digit
saved as a PNG gives the same input as ``--mnist-index``. Images of more than 8 bits (16-bit
PNG or TIFF, float TIFF) are scaled by their white: the smallest of 1, 255, 4095 (12-bit
data) and 65535 that the brightest pixel does not exceed. A picture with almost no ink (a
dot) or ink nearly everywhere (noise) is still classified, with a warning: the network
answers a digit for anything. ``--mnist-index I`` takes test digit I instead. Prints the top
3 classes with their probabilities. The checkpoint comes from ``dlconcepts train --out DIR``.
"""

from __future__ import annotations

import argparse
import re
import sys
import warnings
from pathlib import Path

from PIL import UnidentifiedImageError

from dlconcepts.commands import _common

with _common.lazy_imports():
    import numpy as np
    import torch
    from PIL import Image, ImageOps

    from dlconcepts import data, losses, training

BOX = 20  # MNIST's digits fit a 20×20 box, centred by mass in 28×28
TOP = 3
# A pixel is ink when it is brighter than this (of 255) once the digit is light on dark:
# about 16% of full brightness, above the grain of paper and JPEG's ringing, below a pencil.
INK = 40
# Less ink than this many pixels is a dot or a speck, not a digit; ink over more than this
# share of the picture is noise or a filled area (an MNIST digit inks about a fifth of its
# field).
FEWEST_INK_PIXELS = 10
MOST_INK = 0.5


class Unreadable(ValueError):
    """An image that cannot be read or holds no digit."""


# The white of an image with more than 8 bits: a float image in [0, 1], 8-bit values stored
# in a wider image, a 12-bit scanner's or camera's data, full 16 bits.
WHITES = (1, 255, 4095, 65535)
WIDE = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
FORMATS = "PNG, JPEG, TIFF, BMP, GIF, WebP or another format Pillow reads"


def white(brightest: float) -> float:
    """The value that is white in an image whose brightest pixel is ``brightest``: the
    smallest of :data:`WHITES` it does not exceed (itself beyond them)."""
    return next((w for w in WHITES if brightest <= w), brightest)


def grayscale(image: Image.Image) -> Image.Image:
    """``image`` in 8-bit grayscale ("L"). A 16-bit, 32-bit or float image is scaled by its
    :func:`white`: a plain conversion would clip a 16-bit PNG at 255 and turn a float image
    in [0, 1] into a blank one."""
    if image.mode in WIDE:
        values = np.asarray(image.convert("F" if image.mode == "F" else "I"), dtype=np.float64)
        scaled = values.clip(0, None) * (255 / white(float(values.max(initial=0))))
        return Image.fromarray(scaled.round().clip(0, 255).astype(np.uint8))
    if "A" in image.getbands():  # transparent background: put it on white
        paper = Image.new("RGBA", image.size, "white")
        image = Image.alpha_composite(paper, image.convert("RGBA"))
    return image.convert("L")


def doubt(ink: torch.Tensor) -> str | None:
    """Why the ink mask of a picture (True = ink) may hold no digit, or None."""
    count, share = int(ink.sum()), float(ink.float().mean())
    if count < FEWEST_INK_PIXELS:
        return f"only {count} pixel{'s' * (count != 1)} of ink: a dot, not a digit?"
    if share > MOST_INK:
        return f"{100 * share:.0f}% of the picture is ink: noise, not a digit?"
    return None


def mnist_like(image: Image.Image) -> tuple[torch.Tensor, str | None]:
    """A digit picture as MNIST would have it: (28, 28) floats in [0, 1], light ink on black;
    and a :func:`doubt` about it, or None."""
    # imported here, not lazily: torch's own import looks into a torchvision in sys.modules
    from torchvision.transforms.functional import pil_to_tensor

    gray = grayscale(image)
    pixels = pil_to_tensor(gray)[0].float() / 255
    border = torch.cat([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    if border.median() > 0.5:  # dark ink on a light background
        gray = ImageOps.invert(gray)
    ink = pil_to_tensor(gray)[0] > INK
    box = gray.point(lambda p: 255 if p > INK else 0).getbbox()
    if box is None:
        raise Unreadable("expected a digit, found a blank image")
    side = data.IMAGE_SIDE
    if gray.size == (side, side):  # MNIST's own format: already centred in its 28×28 field
        return pil_to_tensor(gray)[0].float() / 255, doubt(ink)
    digit = gray.crop(box)
    scale = BOX / max(digit.size)
    size = (max(1, round(digit.width * scale)), max(1, round(digit.height * scale)))
    digit = pil_to_tensor(digit.resize(size, Image.Resampling.LANCZOS))[0].float() / 255
    # place it so its centre of mass is at the centre of the 28×28 field
    rows, cols = torch.arange(size[1]).float(), torch.arange(size[0]).float()
    mass = digit.sum()
    centre_y = float((digit.sum(1) * rows).sum() / mass)
    centre_x = float((digit.sum(0) * cols).sum() / mass)
    top = min(max(round(side / 2 - 0.5 - centre_y), 0), side - size[1])
    left = min(max(round(side / 2 - 0.5 - centre_x), 0), side - size[0])
    field = torch.zeros(side, side)
    field[top : top + size[1], left : left + size[0]] = digit
    return field, doubt(ink)


def read_image(path: Path) -> tuple[torch.Tensor, str | None]:
    """:func:`mnist_like` of the image file at ``path``; :class:`Unreadable` if it is not one."""
    try:
        with warnings.catch_warnings():
            # PIL warns of a picture over MAX_IMAGE_PIXELS and refuses one over twice that
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.load()
                return mnist_like(image)
    except Unreadable as e:
        raise Unreadable(f"{path}: {e}") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
        pixels = re.search(r"\((\d+) pixels\)", str(e))
        got = f"{int(pixels[1]):,} pixels" if pixels else "more"
        raise Unreadable(
            f"{path}: expected a picture of at most {Image.MAX_IMAGE_PIXELS:,} pixels "
            f"(a digit needs far fewer), got {got}"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e).split("\n")[0]
        raise Unreadable(f"{path}: expected an image ({FORMATS}), got {reason}") from None


def top_classes(model: torch.nn.Module, x: torch.Tensor) -> str:
    """The ``TOP`` most probable classes of one normalised (784,) input, as text."""
    with torch.no_grad():
        p = losses.softmax(model(x.reshape(1, -1)))[0]
    best = p.topk(TOP)
    return ", ".join(f"{int(c)} ({100 * float(v):.1f}%)" for v, c in zip(best.values, best.indices))


def build_parser() -> argparse.ArgumentParser:
    p = _common.parser("predict", __doc__, [_common.options("data-dir", "mnist-index")])
    p.add_argument("images", nargs="*", type=Path, help="image files (PNG, JPEG, TIFF, ...)")
    p.add_argument(
        "--checkpoint",
        type=Path,
        required=True,
        help="a `dlconcepts train --out DIR` folder, or its checkpoint.pt",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.images and args.mnist_index is None:
        parser.error("expected IMAGE files or --mnist-index I, got neither")
    try:
        model, cfg = _common.trained_model(args.checkpoint)
    except training.CheckpointError as e:
        return _common.error(e)
    model.eval()
    dtype = training.DTYPES[cfg.dtype]
    mean, std = data.MEAN_STD[cfg.dataset]
    failed = 0
    for path in args.images:
        try:
            pixels, why = read_image(path)
        except Unreadable as e:
            failed += _common.error(e)
            continue
        print(f"{path}: {top_classes(model, ((pixels - mean) / std).to(dtype))}")
        if why is not None:
            print(f"warning: {path}: {why}", file=sys.stderr)
    if args.mnist_index is not None:
        try:
            test = data.load(cfg.dataset, train=False, data_dir=args.data_dir, dtype=dtype)
        except data.DataError as e:
            return _common.error(e)
        if args.mnist_index >= len(test):
            return _common.error(
                f"--mnist-index: expected 0 to {len(test) - 1}, got {args.mnist_index}"
            )
        label = int(test.labels[args.mnist_index])
        print(
            f"{cfg.dataset} test digit {args.mnist_index} (label {label}): "
            f"{top_classes(model, test.images[args.mnist_index])}"
        )
    return 1 if failed else 0
