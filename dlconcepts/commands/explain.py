"""``dlconcepts explain``: one training step of a small network, every number beside its formula.

The forward pass layer by layer (z and a), the cost, each δ from the output down, and each
∂C/∂w and ∂C/∂b: by hand (``backprop.manual_backprop``, no autograd), beside autograd's
value (through our Functions) and a central-difference estimate. Then the updated
parameters, the new cost, and two classic questions answered with this network's numbers:
why gradients accumulate, and why backward goes in topological order.

The default network is the classic worked example's: 2-2-2, sigmoid everywhere, squared error,
learning rate 0.5, input (0.05, 0.10), target (0.01, 0.99). ``--weights FILE.json`` sets every
weight (keys as in ``MLP.state_dict()``, matrices as nested lists shaped (out, in));
otherwise ``--init`` and ``--seed`` draw them. ``--mnist-index I`` explains one real test
digit instead (784-16-10 unless ``--sizes`` says otherwise), with summaries for wide layers.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import math
from pathlib import Path
from typing import Any

from dlconcepts import choices
from dlconcepts.commands import _common

with _common.lazy_imports():
    import torch

    from dlconcepts import activations, autograd_graph, backprop, data, layers, losses

SMALL = 12  # a layer this wide or narrower gets every number; a wider one a summary
INPUT, TARGET = (0.05, 0.10), (0.01, 0.99)  # the classic example's, for 2 inputs, 2 outputs
MNIST_SIZES = (784, 16, 10)
F = {"sigmoid": "σ", "tanh": "tanh", "relu": "relu"}  # f's name in a formula
F_PRIME = {"sigmoid": "a(1 − a)", "tanh": "1 − a²", "relu": "[a > 0]"}  # f′(z) from a = f(z)
# The central-difference estimate runs 2 forward passes per weight, each about W
# multiply-adds: 2·W² in all for W weights. 100,000 weights is 2·10¹⁰ (tens of seconds);
# 784-16-10 has 12,730.
MAX_WEIGHTS = 100_000
# --steps runs one forward and one backward pass by hand per step, in Python: enough to watch
# the cost fall; training for real is `dlconcepts train`.
MAX_STEPS = 10_000


class Refused(ValueError):
    """An option that cannot be used: one line for the user, no traceback."""


def step_count(text: str) -> int:
    value = _common.positive_int(text)
    if value > MAX_STEPS:
        raise argparse.ArgumentTypeError(
            f"expected at most {MAX_STEPS:,} steps (each is a forward and a backward pass by "
            f"hand; `dlconcepts train` trains for real), got {text!r}"
        )
    return value


def build_parser() -> argparse.ArgumentParser:
    shared = _common.options("lr", "seed", "data-dir", "json", lr=0.5, seed=1)
    p = _common.parser(
        "explain",
        __doc__,
        [
            _common.network_options(
                sizes=None,
                sizes_help="layer sizes, input to output (default: 2,2,2; "
                f"{','.join(map(str, MNIST_SIZES))} with --mnist-index)",
            ),
            shared,
        ],
    )
    p.add_argument(
        "--init", choices=choices.SCHEMES, default="xavier", help="weights, unless --weights"
    )
    p.add_argument("--weights", type=Path, metavar="FILE", help="JSON keyed like MLP.state_dict()")
    example = p.add_mutually_exclusive_group()
    example.add_argument(
        "--input",
        type=_common.number_list,
        help="one example x, comma-separated (default: 0.05,0.1)",
    )
    example.add_argument(
        "--mnist-index",
        **{**_common.OPTIONS["mnist-index"], "help": "take MNIST test digit I as the example"},
    )
    p.add_argument(
        "--target",
        help="a class index for softmax cross-entropy, else comma-separated reals, in [0, 1] "
        "with a sigmoid output and cross-entropy (default: 0.01,0.99; with --mnist-index "
        "the label)",
    )
    p.add_argument(
        "--steps",
        type=step_count,
        help=f"also print the cost after N steps (at most {MAX_STEPS:,})",
    )
    return p


# --- the network and the example ------------------------------------------------------------


def load_weights(model: layers.MLP, path: Path) -> None:
    """Set every parameter of ``model`` from a JSON file keyed like its ``state_dict()``."""
    try:  # from bytes, json reads UTF-8, UTF-16 and UTF-32 alike
        values = json.loads(path.read_bytes())
    except OSError as e:
        raise Refused(f"--weights {path}: cannot read it ({e.strerror})") from None
    except json.JSONDecodeError as e:
        raise Refused(f"--weights {path}: expected JSON, got an error at line {e.lineno}") from None
    except UnicodeDecodeError:
        raise Refused(f"--weights {path}: expected JSON text (UTF-8), got other bytes") from None
    want = list(model.state_dict())
    if not isinstance(values, dict) or sorted(values) != sorted(want):
        got = sorted(values) if isinstance(values, dict) else type(values).__name__
        raise Refused(f"--weights {path}: expected the keys {', '.join(want)}, got {got}")
    with torch.no_grad():
        for name, param in model.state_dict().items():
            try:
                if _has_bool(values[name]):  # torch reads true as 1.0: a slip, not a weight
                    raise TypeError(name)
                value = torch.tensor(values[name], dtype=param.dtype)
            except (TypeError, ValueError):
                raise Refused(
                    f"--weights {path}: {name}: expected numbers, got {values[name]!r}"
                ) from None
            if not torch.isfinite(value).all():
                bad = value[~torch.isfinite(value)][0].item()
                raise Refused(f"--weights {path}: {name}: expected finite numbers, got {bad}")
            if value.shape != param.shape:
                raise Refused(
                    f"--weights {path}: {name}: expected shape {tuple(param.shape)} for "
                    f"--sizes {','.join(map(str, model.sizes))}, got {tuple(value.shape)}"
                )
            param.copy_(value)


def _has_bool(value: object) -> bool:
    """Whether a JSON value holds ``true`` or ``false`` anywhere (Python's bool is an int)."""
    if isinstance(value, list):
        return any(_has_bool(v) for v in value)
    return isinstance(value, bool)


def example(
    args: argparse.Namespace, sizes: tuple[int, ...]
) -> tuple[torch.Tensor, torch.Tensor, str]:
    """The one example (x, t) as (1, in) and (1,) or (1, out) float64 tensors, and its name."""
    label = None
    if args.mnist_index is not None:
        if sizes[0] != data.NUM_FEATURES:
            raise Refused(
                f"--sizes: expected {data.NUM_FEATURES} inputs for --mnist-index, got {sizes[0]}"
            )
        try:
            test = data.load("mnist", train=False, data_dir=args.data_dir, dtype=torch.float64)
        except data.DataError as e:
            raise Refused(str(e)) from None
        if args.mnist_index >= len(test):
            raise Refused(f"--mnist-index: expected 0 to {len(test) - 1}, got {args.mnist_index}")
        x = test.images[args.mnist_index : args.mnist_index + 1]
        label = int(test.labels[args.mnist_index])
        name = f"MNIST test digit {args.mnist_index} (label {label})"
    else:
        values = args.input or INPUT
        if len(values) != sizes[0]:
            raise Refused(
                f"--input: expected {sizes[0]} numbers for --sizes {','.join(map(str, sizes))}, got {len(values)}"
            )
        x = torch.tensor([values], dtype=torch.float64)
        name = "x"
    return x, target(args, sizes, label), name


def target(args: argparse.Namespace, sizes: tuple[int, ...], label: int | None) -> torch.Tensor:
    classes = sizes[-1]
    if args.target is not None and not args.target.strip():  # not the default: a slip
        raise Refused(
            f"--target: expected a class index or comma-separated numbers, got {args.target!r}"
        )
    if (args.output_activation, args.loss) == (None, "cross-entropy"):
        text = args.target or str(1 if label is None else label)
        if not text.isdigit() or int(text) >= classes:
            raise Refused(f"--target: expected a class index from 0 to {classes - 1}, got {text!r}")
        return torch.tensor([int(text)])
    if args.target is None and label is not None:  # the label as a one-hot vector
        return losses.one_hot(torch.tensor([label]), torch.zeros(1, classes, dtype=torch.float64))
    try:
        values = _common.number_list(args.target) if args.target else TARGET
    except argparse.ArgumentTypeError as e:
        raise Refused(f"--target: {e}") from None
    if len(values) != classes:
        raise Refused(
            f"--target: expected {classes} numbers, one per output, got {args.target or ','.join(map(str, TARGET))!r}"
        )
    if args.loss == "cross-entropy" and not all(0 <= v <= 1 for v in values):
        # binary cross-entropy −[t log o + (1 − t) log(1 − o)] is a cost only for t in [0, 1]
        raise Refused(
            f"--target: expected numbers in [0, 1] for a sigmoid output with cross-entropy, "
            f"got {args.target!r}"
        )
    return torch.tensor([values], dtype=torch.float64)


# --- printing --------------------------------------------------------------------------------


def num(value: float | torch.Tensor) -> str:
    return f"{value.item() if isinstance(value, torch.Tensor) else value:.6g}"


def factor(value: float | torch.Tensor) -> str:
    """A number as a factor of a product: in parentheses when negative."""
    text = num(value)
    return f"({text})" if text.startswith("-") else text


def values(t: torch.Tensor) -> str:
    """Every number of a small tensor, a summary of a large one."""
    flat = t.flatten()
    if flat.numel() <= SMALL:
        return "[" + ", ".join(num(v) for v in flat) + "]"
    return (
        f"{flat.numel()} values from {num(flat.min())} to {num(flat.max())}, "
        f"mean {num(flat.mean())}"
    )


def is_small(model: layers.MLP) -> bool:
    return max(model.sizes) <= SMALL


def output_terms(
    key: tuple[str | None, str], z: torch.Tensor, o: torch.Tensor, t: torch.Tensor
) -> list[str]:
    """Each output unit's δ with its numbers, for the output and loss ``key``."""
    if key == (None, "cross-entropy"):
        p = losses.softmax(z)
        return [f"{num(p[k])} − {int(k == int(t))}" for k in range(len(z))]
    if key == ("sigmoid", "cross-entropy"):
        return [f"σ({num(z[k])}) − {num(t[k])} = {num(o[k])} − {num(t[k])}" for k in range(len(z))]
    if key == (None, "squared-error"):
        return [f"{num(o[k])} − {num(t[k])}" for k in range(len(z))]
    return [f"({num(o[k])} − {num(t[k])})·{num(o[k])}·(1 − {num(o[k])})" for k in range(len(z))]


def loss_terms(
    key: tuple[str | None, str], z: torch.Tensor, o: torch.Tensor, t: torch.Tensor
) -> str:
    """E with this example's numbers put in."""
    if key == (None, "cross-entropy"):
        return f"−log softmax(z)[{int(t)}] = −log {num(losses.softmax(z)[int(t)])}"
    if key[1] == "cross-entropy":
        return " + ".join(
            f"−[{num(tk)}·log {num(ok)} + (1 − {num(tk)})·log(1 − {num(ok)})]"
            for tk, ok in zip(t, o)
        )
    return " + ".join(f"½({num(tk)} − {num(ok)})²" for tk, ok in zip(t, o))


def f_prime_terms(activation: str, a: torch.Tensor) -> str:
    """f′(z) from a = f(z), with the number put in."""
    if activation == "sigmoid":
        return f"{num(a)}·(1 − {num(a)})"
    if activation == "tanh":
        return f"(1 − {num(a)}²)"
    return f"[{num(a)} > 0]"


def print_forward(
    model: layers.MLP, tape: list[backprop.LayerValues], key: tuple[str | None, str]
) -> None:
    out = backprop.output_layer(*key)
    print("\nForward pass: z = a_prev Wᵀ + b, then a = f(z), layer by layer")
    below = "x"
    for layer in tape:
        weight, bias = getattr(model, layer.name).weight, getattr(model, layer.name).bias
        is_output = layer.name == "output"
        a_name = "o" if is_output else "a"
        f_text = out.output if is_output else f"a = {model.activation}(z)"
        print(f"  {layer.name}: z = {below} Wᵀ + b, {f_text}")
        z, a, prev = layer.z[0], layer.a[0], layer.input[0]
        if not is_small(model):
            print(f"    z: {values(z)}\n    {a_name}: {values(a)}")
        else:
            for j in range(len(z)):
                terms = " + ".join(
                    f"{factor(prev[i])}·{factor(weight[j, i])}" for i in range(len(prev))
                )
                print(f"    z[{j}] = {terms} + {num(bias[j])} = {num(z[j])}")
            for j in range(len(z)):
                if is_output and key[0] is None:
                    print(f"    o[{j}] = z[{j}] = {num(a[j])}")
                else:
                    name = "σ" if is_output else F[model.activation]
                    print(f"    {a_name}[{j}] = {name}({num(z[j])}) = {num(a[j])}")
        below = f"a_{layer.name}"


def print_backward(
    model: layers.MLP,
    tape: list[backprop.LayerValues],
    key: tuple[str | None, str],
    t: torch.Tensor,
) -> None:
    out = backprop.output_layer(*key)
    print("\nBackward pass, from the output down: a δ is known only once every δ above it is")
    for i in reversed(range(len(tape))):
        layer = tape[i]
        assert layer.delta is not None
        delta = layer.delta[0]
        if layer.name == "output":
            print(f"  output: {out.delta}   (δ = ∂C/∂z)")
            terms = output_terms(key, layer.z[0], layer.a[0], t[0])
        else:
            above = tape[i + 1]
            assert above.delta is not None
            print(
                f"  {layer.name}: δ = (δ_{above.name} W_{above.name}) ⊙ f′(z), "
                f"f′(z) = {F_PRIME[model.activation]}"
            )
            weight = getattr(model, above.name).weight
            terms = [
                "("
                + " + ".join(
                    f"{factor(above.delta[0, k])}·{factor(weight[k, j])}"
                    for k in range(weight.shape[0])
                )
                + f")·{f_prime_terms(model.activation, layer.a[0, j])}"
                for j in range(len(delta))
            ]
        if is_small(model):
            for j, text in enumerate(terms):
                print(f"    δ[{j}] = {text} = {num(delta[j])}")
        else:
            print(f"    δ: {values(delta)}")


def print_gradients(
    model: layers.MLP, tape: list[backprop.LayerValues], grads: dict[str, dict[str, torch.Tensor]]
) -> None:
    manual, auto, numerical = grads["manual"], grads["autograd"], grads["numerical"]
    print(
        "\nGradients: ∂C/∂W = δᵀ a_prev, ∂C/∂b = δ; by hand (no autograd), by autograd "
        "(through our Functions), by central differences"
    )
    inputs = {
        layer.name: "x" if k == 0 else f"a_{tape[k - 1].name}" for k, layer in enumerate(tape)
    }
    rows = []
    for name, g in manual.items():
        layer, kind = name.split(".")
        if not is_small(model):
            rows.append(
                (
                    name,
                    str(tuple(g.shape)),
                    num(g.abs().max()),
                    f"{float((g - auto[name]).abs().max()):.1e}",
                    f"{float((g - numerical[name]).abs().max()):.1e}",
                )
            )
            continue
        for index in itertools.product(*map(range, g.shape)):
            j = index[0]
            formula = f"δ_{layer}[{j}]" + (
                f"·{inputs[layer]}[{index[1]}]" if kind == "weight" else ""
            )
            at = tuple(index)
            rows.append(
                (
                    f"{name}[{','.join(map(str, index))}]",
                    formula,
                    num(g[at]),
                    num(auto[name][at]),
                    num(numerical[name][at]),
                )
            )
    if is_small(model):
        header = ("parameter", "formula", "by hand", "autograd", "numerical")
    else:
        header = (
            "parameter",
            "shape",
            "max |by hand|",
            "max |hand − autograd|",
            "max |hand − numerical|",
        )
    print(_common.text_table(header, rows, right=2))
    for other in ("autograd", "numerical"):
        diff = max(float((manual[n] - grads[other][n]).abs().max()) for n in manual)
        print(f"  largest |by hand − {other}| = {diff:.1e}")


def print_update(
    model: layers.MLP, before: layers.MLP, grads: dict[str, torch.Tensor], lr: float
) -> None:
    print(f"\nUpdate: θ ← θ − η ∂C/∂θ with η = {num(lr)}")
    old = dict(before.named_parameters())
    for name, new in model.named_parameters():
        if not is_small(model):
            change = (new - old[name]).abs().max()
            print(f"  {name}: largest change {num(change)}, now {values(new)}")
            continue
        for index in itertools.product(*map(range, new.shape)):
            where = f"{name}[{','.join(map(str, index))}]"
            print(
                f"  {where} = {num(old[name][index])} − {num(lr)}·{factor(grads[name][index])}"
                f" = {num(new[index])}"
            )


def descend(
    model: layers.MLP, x: torch.Tensor, t: torch.Tensor, key: tuple[str | None, str], lr: float
) -> None:
    """One step of gradient descent on ``model``, with the gradients by hand."""
    grads = backprop.manual_gradients(model, x, t, output_activation=key[0], loss=key[1])
    with torch.no_grad():
        for name, p in model.named_parameters():
            p -= lr * grads[name]


def print_accumulation(
    model: layers.MLP,
    tape: list[backprop.LayerValues],
    x: torch.Tensor,
    t: torch.Tensor,
    key: tuple[str | None, str],
) -> None:
    """Why gradients accumulate: a value used twice, a weight reached through two examples,
    and a second backward without zeroing."""
    print(
        "\nWhy gradients accumulate: where a value reaches the result along several paths, its gradient is the sum"
    )
    a = tape[0].a[0, 0].clone().requires_grad_()
    (dy,) = torch.autograd.grad(a * a, a)
    print(
        f"  y = a·a with a = a_{tape[0].name}[0] = {num(a)}: one path per factor, "
        f"∂y/∂a = a + a = {num(2 * a)}; autograd: {num(dy)}"
    )
    w = model.output.weight
    options = {"output_activation": key[0], "loss": key[1]}
    x2 = x.flip(-1)
    one = backprop.manual_gradients(model, x, t, **options)["output.weight"][0, 0]
    two = backprop.manual_gradients(model, x2, t, **options)["output.weight"][0, 0]
    both_x, both_t = torch.cat([x, x2]), torch.cat([t, t])
    (both,) = torch.autograd.grad(backprop.cost(model, both_x, both_t, **options), w)
    print(
        f"  w = output.weight[0,0] reaches the cost through each example of a batch: "
        f"∂E₁/∂w = {num(one)} for x, ∂E₂/∂w = {num(two)} for x reversed;\n"
        f"    for the batch of both, C = (E₁ + E₂)/2 and ∂C/∂w = ({num(one)} + {num(two)})/2 = "
        f"{num((one + two) / 2)}; autograd: {num(both[0, 0])}"
    )
    twice = copy.deepcopy(model)
    for step in ("once", "twice"):
        backprop.cost(twice, x, t, **options).backward()
        print(
            f"  backward() {step} without zero_grad: output.weight.grad[0,0] = {num(twice.output.weight.grad[0, 0])}"
        )
    print("    (.grad += each new gradient: optimizer.zero_grad() empties it before each step)")


def print_order(
    model: layers.MLP,
    tape: list[backprop.LayerValues],
    x: torch.Tensor,
    t: torch.Tensor,
    key: tuple[str | None, str],
) -> None:
    """Why backward goes in topological order: the order autograd ran its nodes, and a δ
    computed before all the δs above it are known."""
    print(
        "\nWhy backward goes in topological order: a node runs only once every gradient flowing into it is known"
    )
    model = copy.deepcopy(model)  # backward() below fills its .grad
    cost = backprop.cost(model, x, t, output_activation=key[0], loss=key[1])
    names = {id(p): name for name, p in model.named_parameters()}
    ran: list[str] = []
    for node in autograd_graph.nodes(cost):
        label = names.get(id(getattr(node, "variable", None)), type(node).__name__)
        node.register_hook(lambda grads_in, grads_out, label=label: ran.append(label))
    cost.backward()
    print("  backward() ran, from the cost up: " + " → ".join(ran))
    if len(tape) < 2:
        return
    below, above = tape[-2], tape[-1]
    assert below.delta is not None and above.delta is not None
    weight = model.output.weight[:, 0]
    f_prime = activations.get(model.activation).derivative(below.a[0, 0])
    partial = above.delta[0, 0] * weight[0] * f_prime
    print(
        f"  δ_{below.name}[0] = (Σₖ δ_output[k]·W[k,0])·f′ needs the δ of every one of the "
        f"{len(weight)} output units:\n    with only δ_output[0] known it would be "
        f"{num(partial)}, not {num(below.delta[0, 0])}"
    )


# --- the step --------------------------------------------------------------------------------


def nested(tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    return {name: t.tolist() for name, t in tensors.items()}


def weight_count(sizes: tuple[int, ...]) -> int:
    """The weights and biases of an MLP with these layer sizes."""
    return sum((a + 1) * b for a, b in itertools.pairwise(sizes))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    sizes = args.sizes or (MNIST_SIZES if args.mnist_index is not None else (2, 2, 2))
    count = weight_count(sizes)
    if count > MAX_WEIGHTS:
        return _common.error(
            f"--sizes {','.join(map(str, sizes))}: expected at most {MAX_WEIGHTS:,} weights, "
            f"got {count:,}: their numerical gradient, 2 forward passes per weight, would take "
            f"about 2·W² = {2 * count**2:.1e} multiply-adds"
        )
    key = (args.output_activation, args.loss)
    options = {"output_activation": key[0], "loss": key[1]}
    gen = torch.Generator().manual_seed(args.seed)
    model = layers.MLP(sizes, args.activation, args.init, generator=gen, dtype=torch.float64)
    try:
        if args.weights is not None:
            load_weights(model, args.weights)
        x, t, x_name = example(args, sizes)
    except Refused as e:
        return _common.error(e)

    def cost_now() -> torch.Tensor:
        return backprop.cost(model, x, t, **options)

    out = backprop.output_layer(*key)
    weights = (
        f"from {args.weights}" if args.weights else f"{args.init} initialization, seed {args.seed}"
    )
    print(
        f"One step of gradient descent on a {'-'.join(map(str, sizes))} MLP, every number "
        f"with its formula (float64)\n"
        f"  hidden activation f = {args.activation}, output {out.output}, loss {out.loss}, "
        f"cost C = E (one example)\n"
        f"  learning rate η = {num(args.lr)}, weights {weights}\n"
        f"  {x_name} = {values(x[0])}, target t = {values(t[0])}"
    )
    tape, manual = backprop.manual_backprop(model, x, t, **options)
    cost = cost_now()
    if not torch.isfinite(cost):
        return _common.error(
            f"cost: expected a finite number, got {cost.item()} (the weights are too large "
            "for this input: every number after it would be nan)"
        )
    auto = dict(zip(manual, torch.autograd.grad(cost, list(model.parameters()))))
    numerical = backprop.numerical_gradients(model, cost_now)
    print_forward(model, tape, key)
    print(
        f"\nCost: {out.loss}\n  C = {loss_terms(key, tape[-1].z[0], tape[-1].a[0], t[0])} = {num(cost)}"
    )
    print_backward(model, tape, key, t)
    grads = {"manual": manual, "autograd": auto, "numerical": numerical}
    print_gradients(model, tape, grads)

    before = copy.deepcopy(model)
    descend(model, x, t, key, args.lr)
    print_update(model, before, manual, args.lr)
    cost_after = cost_now().item()
    if not math.isfinite(cost_after):
        return _common.error(
            f"cost after the step: expected a finite number, got {cost_after}: "
            f"try a smaller --lr than {args.lr}"
        )
    print(
        f"\nCost after the step: C = {num(cost_after)} (before: {num(cost)}, change {num(cost_after - cost.item())})"
    )
    if args.steps:
        steps = copy.deepcopy(before)
        for _ in range(args.steps):
            descend(steps, x, t, key, args.lr)
        final = backprop.cost(steps, x, t, **options).item()
        if not math.isfinite(final):
            return _common.error(
                f"cost after {args.steps} steps: expected a finite number, got {final}: "
                f"try a smaller --lr than {args.lr}"
            )
        print(f"Cost after {args.steps} steps: C = {num(final)}")

    print_accumulation(before, tape, x, t, key)
    print_order(before, tape, x, t, key)

    if args.json is not None:
        payload = {
            "forward": {
                layer.name: {"z": layer.z.tolist(), "a": layer.a.tolist()} for layer in tape
            },
            "cost": cost.item(),
            "deltas": {
                layer.name: layer.delta.tolist() for layer in tape if layer.delta is not None
            },
            "gradients": nested(manual),
            "autograd_gradients": nested(auto),
            "numerical_gradients": nested(numerical),
            "parameters_after": nested(dict(model.named_parameters())),
            "cost_after": cost_after,
        }
        try:
            print(f"\nwrote {_common.write_json(args.json, payload)}")
        except OSError as e:
            return _common.error(f"--json {args.json}: cannot write it ({e.strerror})")
    return 0
