"""How much of each acquisition shift a model's constancy front lets through, on the validation images.

The front is what a model does to the pixels before the network sees them (:data:`skinlib.acquisition.CONSTANCY`):
Shades of Gray alone (chapter 03's models), Shades of Gray then intensity standardization
(``colour_constancy="shades_of_gray+intensity"``), and, for comparison, the same two layers in the other order. For
each of chapter 04's seven shifts (:data:`skinlib.acquisition.SHIFTS`), the mean absolute change of the front's
output (pixel levels, 0-255) between the shifted and the unshifted image: 0 means the shift never reaches the
network. No model is trained or read; the layers are the ones the models use.

    SKINLIB_DATA=../shared/data/ham10000 python benchmarks/constancy_invariance.py \\
        --out benchmarks/results/constancy_invariance.json

About a minute on 2 cores.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from input_pipeline import machine  # noqa: E402

from skinlib import acquisition, split  # noqa: E402

FRONTS = {"Shades of Gray": ("colour",), "Shades of Gray, then intensity": ("colour", "intensity"),
          "intensity, then Shades of Gray": ("intensity", "colour")}


def front(pixels, order, batch_size=128):
    """The layers of ``order`` applied to a uint8 batch, in batches; float pixels 0-255."""
    import numpy as np

    layers = {"colour": acquisition.ShadesOfGray(), "intensity": acquisition.IntensityStandardization()}
    out = []
    for start in range(0, len(pixels), batch_size):
        x = pixels[start:start + batch_size].astype("float32")
        for name in order:
            x = layers[name](x)
        out.append(np.asarray(x))
    return np.concatenate(out)


def main(argv=None):
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="the JSON to write")
    parser.add_argument("--images", type=int, default=None, help="the first N validation images only (a smoke run)")
    args = parser.parse_args(argv)
    begin = time.perf_counter()
    images = split.load_split_images((150, 200), splits=("val",), progress=False)["val"].images[:args.images]
    shifted = {name: acquisition.shift(images, name) for name in acquisition.SHIFTS if name != "none"}
    table = {}
    for label, order in FRONTS.items():
        plain = front(images, order)
        table[label] = {name: round(float(np.abs(front(pixels, order) - plain).mean()), 2)
                        for name, pixels in shifted.items()}
        print(f"{label}: {table[label]}", flush=True)
    record = {"benchmark": "constancy_invariance", "what": __doc__.split("\n\n")[0].replace("\n", " "),
              "unit": "mean absolute change of the front's output, pixel levels 0-255", "split": "val",
              "images": len(images), "input_size": [150, 200], "changes": table,
              "seconds": round(time.perf_counter() - begin, 1), "machine": machine(),
              "command": " ".join(["python benchmarks/constancy_invariance.py",
                                   *(sys.argv[1:] if argv is None else argv)])}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
