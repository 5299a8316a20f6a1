"""`dlconcepts predict`: a PNG made from an MNIST test digit is classified as that digit."""

from pathlib import Path

import numpy as np
import pytest
import torch
from command_line import assert_refused
from PIL import Image

from dlconcepts import data, losses, training
from dlconcepts.commands import predict


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, data.InMemoryDataset]:
    """A small model trained for a few seconds, and the test digits."""
    out = tmp_path_factory.mktemp("run")
    cfg = training.TrainConfig(
        hidden=(32,), epochs=1, batch_size=64, lr=3e-3, device="cpu", out=str(out)
    )
    train, test = data.load_splits(limit_train=3200, limit_test=100)
    training.fit(cfg, train, test, log=lambda line: None)
    return out, test


def confident_digit(checkpoint: Path, test: data.InMemoryDataset) -> int:
    """The first test digit the model gets right with over 90% probability."""
    model, _ = training.model_from_checkpoint(checkpoint / training.CHECKPOINT)
    with torch.no_grad():
        p = losses.softmax(model(test.images))
    right = (p.argmax(1) == test.labels) & (p.max(1).values > 0.9)
    return int(right.nonzero()[0])


def as_png(test: data.InMemoryDataset, index: int, path: Path) -> Path:
    """Test digit ``index`` as a user's picture: dark ink on white, 4 times the size."""
    mean, std = data.MEAN_STD["mnist"]
    pixels = ((test.images[index] * std + mean).clamp(0, 1) * 255).round().to(torch.uint8)
    image = Image.frombytes("L", (28, 28), (255 - pixels).numpy().tobytes())
    image.resize((112, 112), Image.Resampling.BICUBIC).convert("RGB").save(path)
    return path


def test_a_png_of_a_test_digit_is_classified_correctly(
    trained: tuple[Path, data.InMemoryDataset], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, test = trained
    index = confident_digit(run, test)
    label = int(test.labels[index])
    png = as_png(test, index, tmp_path / "digit.png")
    assert predict.main([str(png), "--checkpoint", str(run), "--mnist-index", str(index)]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].startswith(f"{png}: {label} (") and lines[0].count("%") == 3
    assert err == ""  # a real digit gets no warning
    assert lines[1].startswith(f"mnist test digit {index} (label {label}): {label} (")


def test_the_preparation_is_mnist_like() -> None:
    """Light ink on dark or dark on light, any size: the same 28×28 digit, centred."""
    image = Image.new("L", (90, 60), 255)
    image.paste(0, (30, 10, 40, 50))  # a dark bar, off centre
    field, doubt = predict.mnist_like(image)
    assert doubt is None
    assert field.shape == (28, 28) and field.max() > 0.9 and field[0].max() == 0
    rows, cols = torch.arange(28.0), torch.arange(28.0)
    centre = (field.sum(1) @ rows / field.sum(), field.sum(0) @ cols / field.sum())
    assert abs(centre[0] - 13.5) <= 1 and abs(centre[1] - 13.5) <= 1
    nonzero = field.nonzero()
    assert int(nonzero[:, 0].max() - nonzero[:, 0].min()) + 1 == 20  # the longer side
    with pytest.raises(predict.Unreadable, match="blank"):
        predict.mnist_like(Image.new("L", (10, 10), 255))


def test_an_unreadable_image_is_one_line(
    trained: tuple[Path, data.InMemoryDataset], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, _ = trained
    bad = tmp_path / "digit.png"
    bad.write_bytes(b"not a png")
    assert_refused(predict.main, [str(bad), "--checkpoint", str(run)], "digit.png", capsys)


def test_a_checkpoint_of_another_shape_is_one_line(
    trained: tuple[Path, data.InMemoryDataset], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, _ = trained
    ckpt = training.read_checkpoint(run / training.CHECKPOINT)
    ckpt["config"]["hidden"] = [16]  # says 784-16-10, holds 784-32-10
    torch.save(ckpt, tmp_path / "other.pt")
    assert_refused(
        predict.main,
        ["--mnist-index", "0", "--checkpoint", str(tmp_path / "other.pt")],
        "other.pt",
        capsys,
    )
    (tmp_path / "damaged.pt").write_bytes(b"\x00" * 100)
    argv = ["--mnist-index", "0", "--checkpoint", str(tmp_path / "damaged.pt")]
    assert_refused(predict.main, argv, "damaged.pt", capsys)


@pytest.mark.parametrize(
    "argv, bad",
    [
        (["--checkpoint", "nowhere"], "neither"),
        (["--mnist-index", "0", "--checkpoint", "nowhere"], "nowhere"),
        (["--mnist-index", "0"], "--checkpoint"),
    ],
)
def test_a_bad_option_is_refused_in_one_line(
    argv: list[str], bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert_refused(predict.main, argv, bad, capsys)


def test_a_16_bit_png_is_read_as_the_same_digit(
    trained: tuple[Path, data.InMemoryDataset], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 16-bit grayscale PNG's white is 65535: scaled by its depth, not clipped at 255."""
    run, test = trained
    eight = as_png(test, 0, tmp_path / "eight.png")
    pixels = np.asarray(Image.open(eight).convert("L"), dtype=np.uint16) * 257
    Image.fromarray(pixels).save(tmp_path / "sixteen.png")
    with Image.open(tmp_path / "sixteen.png") as image:
        assert image.mode.startswith("I")  # as PIL opens it: 16 bits per pixel
    assert torch.equal(
        predict.read_image(eight)[0], predict.read_image(tmp_path / "sixteen.png")[0]
    )
    argv = [str(eight), str(tmp_path / "sixteen.png"), "--checkpoint", str(run)]
    assert predict.main(argv) == 0
    first, second = capsys.readouterr().out.splitlines()
    assert first.split(": ", 1)[1] == second.split(": ", 1)[1]


def test_a_dot_or_noise_is_classified_with_a_warning(
    trained: tuple[Path, data.InMemoryDataset], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, _ = trained
    dot = Image.new("L", (100, 100), 255)
    dot.putpixel((50, 50), 0)
    dot.save(tmp_path / "dot.png")
    noise = np.random.default_rng(0).integers(0, 256, (100, 100), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "noise.png")
    argv = [str(tmp_path / "dot.png"), str(tmp_path / "noise.png"), "--checkpoint", str(run)]
    assert predict.main(argv) == 0
    out, err = capsys.readouterr()
    assert out.count("%") == 6  # the prediction is still given
    dot_line, noise_line = err.splitlines()
    assert dot_line == f"warning: {tmp_path / 'dot.png'}: only 1 pixel of ink: a dot, not a digit?"
    assert noise_line.startswith(f"warning: {tmp_path / 'noise.png'}: ") and "noise" in noise_line


def test_a_blank_image_is_one_message(
    trained: tuple[Path, data.InMemoryDataset], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, _ = trained
    Image.new("L", (50, 50), 255).save(tmp_path / "blank.png")
    assert_refused(
        predict.main, [str(tmp_path / "blank.png"), "--checkpoint", str(run)], "blank", capsys
    )
    predict.main([str(tmp_path / "blank.png"), "--checkpoint", str(run)])
    [line] = capsys.readouterr().err.splitlines()
    assert line == f"error: {tmp_path / 'blank.png'}: expected a digit, found a blank image"


@pytest.mark.parametrize("side", [40, 100], ids=["warned", "refused"])
def test_a_decompression_bomb_is_one_line(
    side: int,
    trained: tuple[Path, data.InMemoryDataset],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """PIL warns of a picture over MAX_IMAGE_PIXELS and refuses one over twice that; a
    20000×20000 PNG is the same case at the real limit."""
    run, _ = trained
    Image.new("L", (side, side), 255).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    argv = [str(tmp_path / "big.png"), "--checkpoint", str(run)]
    assert_refused(predict.main, argv, "at most 1,000 pixels", capsys)


def test_a_checkpoint_that_is_not_finite_is_refused(
    trained: tuple[Path, data.InMemoryDataset], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A diverged run's weights: every probability would print as nan%."""
    run, _ = trained
    ckpt = training.read_checkpoint(run / training.CHECKPOINT)
    ckpt["model"]["output.bias"][3] = float("nan")
    torch.save(ckpt, tmp_path / "nan.pt")
    argv = ["--mnist-index", "0", "--checkpoint", str(tmp_path / "nan.pt")]
    assert_refused(predict.main, argv, "output.bias: expected finite weights, got nan", capsys)


def test_a_negative_mnist_index_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert_refused(predict.main, ["--mnist-index", "-1", "--checkpoint", "x"], "'-1'", capsys)


def mnist_pixels(test: data.InMemoryDataset, index: int) -> np.ndarray:
    """Test digit ``index`` as MNIST stores it: 28×28 bytes, light ink on black."""
    mean, std = data.MEAN_STD["mnist"]
    pixels = ((test.images[index] * std + mean).clamp(0, 1) * 255).round().to(torch.uint8)
    return pixels.reshape(28, 28).numpy()


@pytest.mark.parametrize("ink", ["light on dark", "dark on light"])
def test_a_28_by_28_image_is_taken_as_mnist_has_it(
    ink: str, trained: tuple[Path, data.InMemoryDataset], tmp_path: Path
) -> None:
    """A test digit saved as an 8-bit PNG is the dataset's own input: same probabilities."""
    run, test = trained
    model, _ = training.model_from_checkpoint(run / training.CHECKPOINT)
    mean, std = data.MEAN_STD["mnist"]
    for index in range(8):
        pixels = mnist_pixels(test, index)
        png = tmp_path / f"{index}.png"
        Image.fromarray(pixels if ink == "light on dark" else 255 - pixels).save(png)
        field, _ = predict.read_image(png)
        with torch.no_grad():
            got = losses.softmax(model(((field - mean) / std).reshape(1, -1)))
            expected = losses.softmax(model(test.images[index : index + 1]))
        assert torch.allclose(got, expected, rtol=0, atol=1e-6), (index, got, expected)


def test_a_28_by_28_png_and_its_mnist_index_print_the_same(
    trained: tuple[Path, data.InMemoryDataset], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, test = trained
    Image.fromarray(mnist_pixels(test, 0)).save(tmp_path / "0.png")
    argv = [str(tmp_path / "0.png"), "--mnist-index", "0", "--checkpoint", str(run)]
    assert predict.main(argv) == 0
    png, index = capsys.readouterr().out.splitlines()
    assert png.split(": ", 1)[1] == index.split(": ", 1)[1]


@pytest.mark.parametrize(
    "mode, scale",
    [("F", 1 / 255), ("F", 1), ("I;16", 4095 / 255), ("I;16", 257)],
    ids=["float in [0, 1]", "float in [0, 255]", "12-bit in 16", "16-bit"],
)
def test_a_deeper_image_is_scaled_by_its_white(
    mode: str, scale: float, trained: tuple[Path, data.InMemoryDataset], tmp_path: Path
) -> None:
    """A float TIFF in [0, 1] or a 16-bit scan of 12-bit data is the same digit as 8 bits,
    not a blank image."""
    _, test = trained
    eight = as_png(test, 0, tmp_path / "eight.png")
    pixels = np.asarray(Image.open(eight).convert("L"), dtype=np.float64) * scale
    deep = tmp_path / "deep.tiff"
    if mode == "F":
        Image.fromarray(pixels.astype(np.float32)).save(deep)
    else:
        Image.fromarray(pixels.round().astype(np.uint16)).save(deep)
    with Image.open(deep) as image:
        assert image.mode == mode
    assert torch.equal(predict.read_image(eight)[0], predict.read_image(deep)[0])


def test_an_unreadable_image_names_the_formats_read(
    trained: tuple[Path, data.InMemoryDataset], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, _ = trained
    (tmp_path / "x.tiff").write_bytes(b"not an image")
    assert predict.main([str(tmp_path / "x.tiff"), "--checkpoint", str(run)]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: {tmp_path / 'x.tiff'}: expected an image (PNG, JPEG, TIFF,")


@pytest.mark.parametrize(
    "saved, reason",
    [
        (torch.nn.Linear(2, 2), "refuses (Unsupported global: GLOBAL torch.nn.modules.linear."),
        (None, "unreadable file (UnpicklingError: Unsupported operand 0)"),
    ],
    ids=["a whole model", "zeros"],
)
def test_a_file_that_is_not_a_checkpoint_is_one_short_line(
    saved: torch.nn.Module | None, reason: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """torch's paragraph about weights_only is cut to the one sentence that says why."""
    pt = tmp_path / "model.pt"
    if saved is None:
        pt.write_bytes(b"\x00" * 100)
    else:
        torch.save(saved, pt)
    assert predict.main(["--mnist-index", "0", "--checkpoint", str(pt)]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert (
        line.startswith(f"error: {pt}: expected a dlconcepts checkpoint, got ") and reason in line
    )
    assert "weights_only` argument" not in line and len(line) < 300, line
