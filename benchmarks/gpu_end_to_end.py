"""End-to-end fine-tuning of EfficientNet-Lite0 on a GPU: what compute alone would buy.

The shipped recipe (chapter 03) trains only the upper blocks of Lite0 over cached views, because a step
through every layer runs at about 40 images/s on the project's 2 cores (``train_full`` in the README's
training-speed table). This benchmark asks what lifting that limit buys: the same backbone and ImageNet
weights, the same split, Shades of Gray colour constancy applied after the augmentation (as the shipped
model's first layer applies it to jittered views), class weights of power 1 on each image's loss and label
smoothing 0.1 (as Keras' ``class_weight`` with ``CategoricalCrossentropy``), but every layer trained for many
epochs, with flips, rotation, zoom and colour jitter drawn afresh at every step. Each epoch is scored on
validation and the best epoch kept (model selection on validation only; the test split is never read).

    SKINLIB_DATA=../shared/data/ham10000 python benchmarks/gpu_end_to_end.py \\
        --out benchmarks/results/gpu_end_to_end.json --weights-dir /tmp/gpu_weights

A second mode scores the kept weights on validation under chapter 04's acquisition shifts (on the CPU; the
shifts use TensorFlow, as in ``benchmarks/shifts_on_validation.py``) and adds them to the record:

    SKINLIB_DATA=../shared/data/ham10000 python benchmarks/gpu_end_to_end.py \\
        --shifts /tmp/gpu_weights --out benchmarks/results/gpu_end_to_end.json

Needs PyTorch and efficientnet-lite-pytorch (``Environment/requirements-test.txt``), and a CUDA GPU for the
real run (about 2 minutes per seed at 150x200 on an H200). ``--smoke`` trains on a few images per class for
one epoch on whatever device there is; ``tests/test_benchmarks.py`` runs it on the CPU.
"""

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np

from skinlib import acquisition, images, metrics, split
from skinlib.artefacts import write_atomic
from skinlib.data import CLASSES, find_data_dir, index_files
from skinlib.train import class_weights

KEYS = ("accuracy", "balanced_accuracy", "macro_auc", "malignant_auc")
FLIPS = ((False, False), (True, False), (False, True), (True, True))
"""Test-time augmentation: the four flips a 4:3 image allows (as chapter 03's views)."""


def parse_size(text):
    """``"150x200"`` -> ``(150, 200)`` (height, width).

    >>> parse_size("300x400")
    (300, 400)
    """
    height, width = (int(part) for part in text.lower().split("x"))
    return height, width


def read_split(folder, name, *, per_class=None, seed=0):
    """Raw uint8 pixels (n, 150, 200, 3) and class indices of one split of the committed manifest.

    The images are found anywhere below ``folder`` (:func:`skinlib.data.index_files`, so any layout of the data
    set, or a copy holding only the splits needed) and decoded once through skinlib's image cache.
    """
    table = split.load_manifest()
    table = table[table["split"] == name]
    if per_class:
        table = table.sample(frac=1, random_state=seed).groupby("dx").head(per_class)
    found = index_files(folder).images
    missing = [image_id for image_id in table["image_id"] if image_id not in found]
    if missing:
        raise FileNotFoundError(f"{len(missing)} image(s) of the {name} split are not under {folder}, e.g. "
                                f"{missing[0]}.jpg")
    pixels = images.load_images([found[image_id] for image_id in table["image_id"]], size=(150, 200),
                                progress=False)
    return pixels, np.array([CLASSES.index(dx) for dx in table["dx"]])


def sources(args):
    """The image folder and the Lite0 weight file: the arguments, else SKINLIB_DATA and the installed package."""
    from skinlib.efficientnet_lite import weights_file

    folder = Path(args.images) if args.images else find_data_dir()
    return folder, Path(args.lite0_weights) if args.lite0_weights else weights_file("lite0")


def shades_of_gray(x, power=6):
    """Shades of Gray colour constancy of a float NCHW batch (0-255), as :class:`skinlib.acquisition.ShadesOfGray`.

    Each channel is divided by its Minkowski-p mean and the image rescaled by
    the root mean square of the three means (no rounding, like the Keras layer).
    """
    values = x.clamp(min=0)
    illuminant = (values / 255).pow(power).mean(dim=(2, 3), keepdim=True).pow(1 / power)
    norm = illuminant.pow(2).mean(dim=1, keepdim=True).sqrt()
    return (values * norm / illuminant.clamp(min=1e-6)).clamp(0, 255)


def build(size, weights, torch):
    """Lite0 with ImageNet weights and a new 7-class head, static 'same' padding for ``size``."""
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(weights), num_classes=len(CLASSES),
                                         image_size=list(size))
    return model.to(memory_format=torch.channels_last)


def to_input(x, size, torch):
    """Float NCHW pixels (0-255) -> the network's input.

    Shades of Gray, then a bilinear resize to ``size`` where it differs, then ``(x - 127) / 128``.
    """
    x = shades_of_gray(x)
    if tuple(x.shape[2:]) != tuple(size):
        x = torch.nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False)
    return ((x - 127.0) / 128.0).contiguous(memory_format=torch.channels_last)


def as_float(batch):
    """uint8 NHWC -> float NCHW, on the batch's device."""
    return batch.permute(0, 3, 1, 2).float()


def affine(u, height, width, torch):
    """The affine maps of :func:`augment` from draws ``u`` in [-1, 1] (columns 0-5), for ``affine_grid``.

    Column 0 turns by up to 20 degrees, 1 zooms by 1-1.25x, 2 and 3 flip
    (left-right, up-down) where negative, 4 and 5 offset the sampled window by
    up to the margin the zoom leaves. The rotation is corrected for the
    image's aspect ratio, so that it turns pixels, not normalised coordinates.
    """
    angle, scale = u[:, 0] * math.pi / 9, 1 / (1.125 + 0.125 * u[:, 1])
    flip_x, flip_y = torch.where(u[:, 2] < 0, -1.0, 1.0), torch.where(u[:, 3] < 0, -1.0, 1.0)
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    return torch.stack([torch.stack([cos * flip_x, -sin * height / width * flip_y, (1 - scale) * u[:, 4]], 1),
                        torch.stack([sin * width / height * flip_x, cos * flip_y, (1 - scale) * u[:, 5]], 1)], 1)


def warp(x, theta, torch):
    """Resample a float NCHW batch through affine maps (bilinear, reflected at the borders)."""
    grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    return torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def augment(x, generator, torch):
    """Random flips, rotation (+-20 degrees), zoom (1-1.25x) with an offset, and colour jitter, per image.

    ``x`` is a float batch in pixel units (0-255), NCHW. The colour ranges follow
    :func:`skinlib.acquisition.random_acquisition`: colour temperature +-20%,
    saturation x0.7-1.3, contrast x0.8-1.2, brightness x0.8-1.2. The geometry
    is one affine map per image, in the normalised coordinates of
    ``affine_grid`` (the rotation corrected for the 4:3 aspect ratio), with
    reflection at the borders.
    """
    u = torch.rand((len(x), 10), generator=generator, device=x.device) * 2 - 1
    x = warp(x, affine(u, *x.shape[2:], torch), torch)
    column = lambda index: u[:, index].view(-1, 1, 1, 1)  # noqa: E731
    gain = 1 + 0.2 * column(6)
    x = x * torch.cat([gain, torch.ones_like(gain), 1 / gain], dim=1)
    gray = x.mean(dim=1, keepdim=True)
    x = gray + (x - gray) * (1 + 0.3 * column(7))
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = ((x - mean) * (1 + 0.2 * column(8)) + mean) * (1 + 0.2 * column(9))
    return x.clamp(0, 255)


def predict(model, pixels, size, torch, *, tta=False, batch_size=256):
    """Softmax probabilities of uint8 NHWC pixels (a device tensor); ``tta`` averages the four flips."""
    device = pixels.device
    model.eval()
    outputs = []
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        for start in range(0, len(pixels), batch_size):
            x = to_input(as_float(pixels[start:start + batch_size]), size, torch)
            total = 0
            for flip_x, flip_y in (FLIPS if tta else FLIPS[:1]):
                dims = [d for d, on in ((3, flip_x), (2, flip_y)) if on]
                total = total + torch.softmax(model(x.flip(dims) if dims else x).float(), dim=1)
            outputs.append((total / (4 if tta else 1)).cpu().numpy())
    return np.concatenate(outputs)


def scores(labels, probabilities):
    """Headline metrics and per-class recall (:func:`skinlib.metrics.classification_metrics`), rounded."""
    result = metrics.classification_metrics(labels, probabilities)
    recall = {dx: round(result[f"recall_{dx}"], 4) for dx in CLASSES if (labels == CLASSES.index(dx)).any()}
    return {**{key: round(result[key], 4) for key in KEYS}, "recall": recall}


def weighted_loss(logits, labels, weight, torch, smoothing=0.1):
    """Cross-entropy with label smoothing, each image's loss times its own class's weight, averaged over the batch.

    This is what Keras computes for ``class_weight`` with ``CategoricalCrossentropy(label_smoothing=...)``
    (chapter 03). torch's ``CrossEntropyLoss(weight=...)`` differs: it also weights the smoothing term of
    every other class by that class's weight, which pulls every image towards the rare classes.
    """
    losses = torch.nn.functional.cross_entropy(logits, labels, label_smoothing=smoothing, reduction="none")
    return (weight[labels] * losses).mean()


def train_one(data, *, size, seed, epochs, batch_size, learning_rate, weight_decay, torch, device, weights,
              log=print, progress=None):
    """Fine-tune every layer; return the run's record and the best epoch's state dict (on the CPU)."""
    torch.manual_seed(seed)
    generator = torch.Generator(device=device).manual_seed(seed)
    train_pixels, train_labels = data["train"]
    val_pixels, val_labels = data["val"]
    model = build(size, weights, torch).to(device)
    weight = torch.tensor([class_weights(train_labels.cpu().numpy())[k] for k in range(len(CLASSES))],
                          dtype=torch.float32, device=device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    steps_per_epoch = max(1, len(train_labels) // batch_size)
    total, warmup = steps_per_epoch * epochs, max(1, int(0.1 * steps_per_epoch * epochs))
    decay = max(1, total - warmup)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: (step + 1) / warmup if step < warmup else
                                                 0.5 * (1 + math.cos(math.pi * (step - warmup) / decay)))
    curve, best, best_state = [], None, None
    start = time.perf_counter()
    training_seconds = 0.0
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(train_labels), generator=generator, device=device)
        epoch_start, losses = time.perf_counter(), []
        for step in range(steps_per_epoch):
            index = order[step * batch_size:(step + 1) * batch_size]
            x = to_input(augment(as_float(train_pixels[index]), generator, torch), size, torch)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                loss = weighted_loss(model(x).float(), train_labels[index], weight, torch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(loss.detach())
        loss_value = float(torch.stack(losses).mean())
        if device.type == "cuda":
            torch.cuda.synchronize()
        training_seconds += time.perf_counter() - epoch_start
        result = scores(val_labels.cpu().numpy(), predict(model, val_pixels, size, torch))
        point = {"epoch": epoch, "seconds": round(time.perf_counter() - start, 1), "loss": round(loss_value, 4),
                 **{f"val_{key}": result[key] for key in KEYS}}
        curve.append(point)
        if progress:
            progress(curve)
        log(f"  {size[0]}x{size[1]} seed {seed} epoch {epoch}/{epochs}: loss {loss_value:.3f}, "
            f"val balanced accuracy {result['balanced_accuracy']:.3f}, accuracy {result['accuracy']:.3f} "
            f"({point['seconds']:.0f} s)")
        if best is None or result["balanced_accuracy"] > best["balanced_accuracy"]:
            best = {"epoch": epoch, **result}
            best_state = {key: value.detach().cpu().clone() for key, value in model.state_dict().items()}
    model.load_state_dict(best_state)
    tta = predict(model, val_pixels, size, torch, tta=True)
    record = {"size": f"{size[0]}x{size[1]}", "seed": seed, "epochs": epochs, "seconds": round(time.perf_counter() -
              start, 1), "train_images_per_second": round(steps_per_epoch * batch_size * epochs / training_seconds, 1),
              "curve": curve, "best": best, "tta": scores(val_labels.cpu().numpy(), tta)}
    return record, best_state, tta


def summarise(runs, probabilities, labels):
    """Mean and standard deviation over seeds per input size, plain and with TTA, and the seeds' ensemble."""
    summary = {}
    for size in dict.fromkeys(run["size"] for run in runs):
        done = [run for run in runs if run["size"] == size]
        entry = {"seeds": [run["seed"] for run in done]}
        spread = metrics.seed_spread({procedure: [run[procedure] for run in done] for procedure in ("best", "tta")},
                                     metrics=KEYS)
        for procedure in ("best", "tta"):
            for key in KEYS:
                mean, sd = spread.loc[procedure, (key, "mean")], spread.loc[procedure, (key, "std")]
                entry[f"{procedure}_{key}_mean"] = round(float(mean), 4)
                entry[f"{procedure}_{key}_sd"] = None if np.isnan(sd) else round(float(sd), 4)
        if len(done) > 1:
            ensemble = np.mean([probabilities[(size, run["seed"])] for run in done], axis=0)
            entry["ensemble_tta"] = scores(labels, ensemble)
        summary[size] = entry
    return summary


def write_record(path, record):
    write_atomic(path, lambda handle: handle.write((json.dumps(record, indent=2) + "\n").encode()))


def train_main(args, torch):
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    folder, weights = sources(args)
    per_class = 4 if args.smoke else None
    started = time.perf_counter()
    data = {}
    for name in ("train", "val"):
        pixels, labels = read_split(folder, name, per_class=per_class)
        data[name] = (torch.from_numpy(pixels).to(device), torch.from_numpy(labels).to(device))
    print(f"read and prepared {len(data['train'][1])} training and {len(data['val'][1])} validation images "
          f"in {time.perf_counter() - started:.0f} s on {device}", flush=True)
    record = {"benchmark": "gpu_end_to_end", "device": torch.cuda.get_device_name() if device.type == "cuda" else
              "cpu", "torch": torch.__version__, "settings": {
                  "backbone": "EfficientNet-Lite0 (ImageNet)", "trained": "every layer",
                  "epochs": 1 if args.smoke else args.epochs,
                  "batch_size": args.batch_size, "optimizer": "AdamW", "learning_rate": args.learning_rate,
                  "weight_decay": args.weight_decay, "schedule": "linear warm-up over 10% of the steps, cosine decay",
                  "loss": "cross-entropy with label smoothing 0.1, times the image's class weight (power 1)",
                  "cudnn_benchmark": bool(args.cudnn_benchmark),
                  "precision": "bfloat16 autocast" if device.type == "cuda" else "float32",
                  "colour_constancy": "Shades of Gray, p=6, after the augmentation",
                  "augmentation": "flips, rotation +-20 deg, zoom 1-1.25x, colour temperature, saturation, contrast, "
                                  "brightness (new draws every step)", "selection": "best epoch on validation balanced "
                                                                                     "accuracy"},
              "smoke": bool(args.smoke), "runs": [], "skipped": []}
    probabilities, last_seconds = {}, {}
    val_labels = data["val"][1].cpu().numpy()
    for size_text in args.sizes:
        size = parse_size(size_text)
        for seed in args.seeds:
            pixels = size[0] * size[1]
            known = [seconds * pixels / other for other, seconds in last_seconds.items()]
            expected = max(known) if known else 0.0
            if args.budget and time.perf_counter() - started + expected > args.budget:
                record["skipped"].append({"size": size_text, "seed": seed, "expected_seconds": round(expected)})
                print(f"skipped {size_text} seed {seed}: about {expected:.0f} s would pass the budget", flush=True)
                continue
            run, state, tta = train_one(data, size=size, seed=seed, epochs=1 if args.smoke else args.epochs,
                                        batch_size=args.batch_size, learning_rate=args.learning_rate,
                                        weight_decay=args.weight_decay, torch=torch, device=device, weights=weights,
                                        log=lambda line: print(line, flush=True),
                                        progress=lambda curve: write_record(args.out, {
                                            **record, "in_progress": {"size": size_text, "seed": seed,
                                                                      "curve": curve}}))
            last_seconds[pixels] = run["seconds"]
            probabilities[(run["size"], seed)] = tta
            record["runs"].append(run)
            record["summary"] = summarise(record["runs"], probabilities, val_labels)
            record["total_seconds"] = round(time.perf_counter() - started, 1)
            write_record(args.out, record)
            if args.weights_dir:
                folder = Path(args.weights_dir)
                folder.mkdir(parents=True, exist_ok=True)
                half = {key: value.half() if value.is_floating_point() else value for key, value in state.items()}
                write_atomic(folder / f"{run['size']}_seed{seed}.pt", lambda handle: torch.save(half, handle))
            print(f"{run['size']} seed {seed}: best epoch {run['best']['epoch']}, val balanced accuracy "
                  f"{run['best']['balanced_accuracy']:.3f} (TTA {run['tta']['balanced_accuracy']:.3f}), "
                  f"{run['seconds']:.0f} s, {run['train_images_per_second']:.0f} training images/s", flush=True)
    write_record(args.out, record)
    return record


def shift_changes(runs):
    """Change in balanced accuracy under each shift, per scored seed and their mean, for each input size.

    >>> run = lambda seed, warm: {"size": "150x200", "seed": seed, "shifts": {  # noqa: E731
    ...     "none": {"balanced_accuracy": 0.7}, "warm": {"balanced_accuracy": warm}}}
    >>> shift_changes([run(0, 0.68), run(1, 0.71), {"size": "150x200", "seed": 2}])["150x200"]["warm"]
    {'seeds': [0, 1], 'changes': [-0.02, 0.01], 'mean': -0.005}
    """
    summary = {}
    for size in dict.fromkeys(run["size"] for run in runs if "shifts" in run):
        scored = [run for run in runs if run["size"] == size and "shifts" in run]
        summary[size] = {}
        for name in scored[0]["shifts"]:
            changes = [round(run["shifts"][name]["balanced_accuracy"] - run["shifts"]["none"]["balanced_accuracy"], 4)
                       for run in scored]
            summary[size][name] = {"seeds": [run["seed"] for run in scored], "changes": changes,
                                   "mean": round(float(np.mean(changes)), 4)}
    return summary


def shifts_main(args, torch):
    """Score each kept weight file on validation under every named shift of chapter 04 (plain, no TTA).

    A run with no weight file in the folder keeps the shifts it has in the record; the summary of changes in
    balanced accuracy (:func:`shift_changes`) covers every run with shifts.
    """
    record = json.loads(Path(args.out).read_text())
    path_of = lambda run: Path(args.shifts) / f"{run['size']}_seed{run['seed']}.pt"  # noqa: E731
    if any(path_of(run).is_file() for run in record["runs"]):  # Else only the summary is recomputed.
        folder, weights = sources(args)
        raw, labels = read_split(folder, "val", per_class=4 if args.smoke else None)
        shifted = {name: torch.from_numpy(acquisition.shift(raw, name)) for name in acquisition.SHIFTS}
        torch.set_num_threads(os.cpu_count())
    for run in record["runs"]:
        path = path_of(run)
        if not path.is_file():
            print(f"no weights for {run['size']} seed {run['seed']} at {path}; its recorded shifts kept", flush=True)
            continue
        size = parse_size(run["size"])
        model = build(size, weights, torch)
        model.load_state_dict({key: value.float() if value.is_floating_point() else value
                               for key, value in torch.load(path).items()})
        run["shifts"] = {}
        for name, pixels in shifted.items():
            result = scores(labels, predict(model, pixels, size, torch, batch_size=64))
            run["shifts"][name] = {key: result[key] for key in KEYS}
            print(f"{run['size']} seed {run['seed']} under {name}: balanced accuracy "
                  f"{result['balanced_accuracy']:.3f}", flush=True)
        write_record(args.out, record)
    record["shift_changes"] = shift_changes(record["runs"])
    write_record(args.out, record)
    return record


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="the JSON record to write (or, with --shifts, to extend)")
    parser.add_argument("--sizes", nargs="+", default=["150x200"], help="input sizes, height x width, in order")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds: skip a run expected to end past it (the last run's time scaled by the pixel "
                             "count, which overestimates on a GPU that small inputs leave idle)")
    parser.add_argument("--images", help="a folder with the ISIC_*.jpg images below it (default: SKINLIB_DATA)")
    parser.add_argument("--lite0-weights", help="the efficientnet-lite0 .pth file (default: the installed package's)")
    parser.add_argument("--weights-dir", help="keep each run's best weights here (float16), for --shifts")
    parser.add_argument("--shifts", metavar="WEIGHTS_DIR", help="score the kept weights under acquisition shifts")
    parser.add_argument("--cudnn-benchmark", action="store_true", help="let cuDNN time its algorithms first")
    parser.add_argument("--smoke", action="store_true", help="4 images per class, one epoch")
    args = parser.parse_args(argv)
    import torch

    return shifts_main(args, torch) if args.shifts else train_main(args, torch)


if __name__ == "__main__":
    main()
