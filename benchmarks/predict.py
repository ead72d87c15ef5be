"""How fast is the lesion checker? Cold start, warm latency per image, and throughput for a folder.

- cold: a new process runs ``python -m skinlib predict IMAGE --model MODEL --backend B``, timed from launch
  to exit (Python start, imports, model load, one prediction); the median of ``--repeats`` runs. Both
  backends: ``keras`` (imports TensorFlow) and ``lite`` (the LiteRT copy; no TensorFlow).
- warm: ``Checker.predict`` on one image file (decode, resize, predict) with the model loaded; median and
  95th percentile over ``--warm`` images.
- folder: ``Checker.predict_many`` over ``--folder-images`` files, images per second.

Run:  python benchmarks/predict.py                      (the default model of Saved_Models/)
      python benchmarks/predict.py --model Saved_Models/03_efficientnet_lite0_ensemble.keras

Needs SKINLIB_DATA (real HAM10000 images are used). Results are printed and written to
benchmarks/results/predict_<model>.json, or to ``--out``: the README's table shows the record of that name and, below
it, any other record of the same model in benchmarks/results/ (another machine's).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from input_pipeline import machine  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a .keras file (default: the checker's default model)")
    parser.add_argument("--repeats", type=int, default=5, help="cold starts to time")
    parser.add_argument("--warm", type=int, default=200, help="images for the warm latency")
    parser.add_argument("--folder-images", type=int, default=500, help="images for the folder throughput")
    parser.add_argument("--out", help="the JSON file to write (default: benchmarks/results/predict_<model>.json; "
                                      "another name keeps a second machine's record beside the first)")
    args = parser.parse_args(argv)

    from skinlib import data, predict
    from skinlib.artefacts import write_json_atomic

    model = Path(args.model) if args.model else predict.default_model()
    paths = data.load_metadata()["image_path"].tolist()
    image = paths[0]

    results = {"machine": machine(), "model": model.name, "command": "python benchmarks/predict.py"
               + (f" --model {args.model}" if args.model else "") + (f" --out {args.out}" if args.out else "")}
    for backend in ("keras", "lite"):
        cold = []
        for _ in range(args.repeats):
            begin = time.perf_counter()
            result = subprocess.run([sys.executable, "-m", "skinlib", "predict", image, "--model", str(model),
                                     "--backend", backend], capture_output=True, text=True)
            cold.append(time.perf_counter() - begin)
            if result.returncode:
                raise SystemExit(result.stderr)
        begin = time.perf_counter()
        checker = predict.Checker(model, backend=backend)
        load_seconds = time.perf_counter() - begin
        checker.predict(image)
        latencies = sorted(checker.predict(path).seconds for path in paths[1:args.warm + 1])
        folder = paths[args.warm + 1:args.warm + 1 + args.folder_images]
        begin = time.perf_counter()
        table = checker.predict_many(folder, progress=False)
        folder_seconds = time.perf_counter() - begin
        results[backend] = {
            "input_size": list(checker.size),
            "cold_start_seconds_median": round(statistics.median(cold), 3),
            "cold_start_seconds": [round(c, 3) for c in cold],
            "model_load_seconds_in_process": round(load_seconds, 3),
            "warm_ms_median": round(1000 * statistics.median(latencies), 2),
            "warm_ms_p95": round(1000 * latencies[int(0.95 * (len(latencies) - 1))], 2),
            "warm_images": len(latencies),
            "folder_images_per_second": round(len(table) / folder_seconds, 1), "folder_images": len(table),
        }
    print(json.dumps(results, indent=2))
    out = Path(args.out) if args.out else Path(__file__).resolve().parent / "results" / f"predict_{model.stem}.json"
    write_json_atomic(out, results, end="\n")  # Makes the folder too.
    print(f"written to {out.relative_to(Path.cwd()) if out.is_relative_to(Path.cwd()) else out}")


if __name__ == "__main__":
    main()
