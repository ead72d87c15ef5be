"""Images per second: skinlib's cached tf.data pipeline against Keras' ImageDataGenerator.

The original study fed its models with
``ImageDataGenerator.flow_from_dataframe``, which decodes and resizes every
JPEG again in every epoch. skinlib decodes once into a disk cache and then
serves batches from memory through tf.data. Both sides here produce shuffled
float32 batches of the same images at the same size, without augmentation.

Run:  python benchmarks/input_pipeline.py            (all 10,015 images, 64x64, 3 repetitions)
      python benchmarks/input_pipeline.py --limit 500 --repeats 1   (quick)

Results are printed and written to benchmarks/results/input_pipeline.json.
"""

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def machine():
    """Describe the machine the numbers come from."""
    from skinlib.reproduce import cpu_has_avx512, cpu_name

    return {"cpu": cpu_name(), "cores": os.cpu_count(), "avx512": cpu_has_avx512(),
            "python": platform.python_version(), "system": platform.system()}


def one_epoch(iterable, batches=None):
    """Pull every batch once; return (images seen, seconds)."""
    begin, seen = time.perf_counter(), 0
    for number, batch in enumerate(iterable):
        seen += int(batch[0].shape[0])
        if batches is not None and number + 1 >= batches:
            break
    return seen, time.perf_counter() - begin


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=64, help="square image size (default 64)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N images")
    parser.add_argument("--repeats", type=int, default=3, help="epochs timed per method (default 3)")
    parser.add_argument("--output", default=str(Path(__file__).parent / "results" / "input_pipeline.json"))
    args = parser.parse_args()

    import tensorflow as tf

    from skinlib import data, images, pipeline

    table = data.load_metadata()
    if args.limit:
        table = table.iloc[: args.limit]
    size, count = (args.size, args.size), len(table)
    print(f"{count} images at {args.size}x{args.size}, batch {args.batch_size}, on {machine()}")

    generator = tf.keras.preprocessing.image.ImageDataGenerator(rescale=1 / 255).flow_from_dataframe(
        table.assign(dx=table["dx"].astype(str)), x_col="image_path", y_col="dx", target_size=size,
        batch_size=args.batch_size, class_mode="sparse", shuffle=True, seed=0)
    baseline = []
    for _ in range(args.repeats):
        seen, seconds = one_epoch(generator, batches=len(generator))
        baseline.append(seen / seconds)
        print(f"  ImageDataGenerator epoch: {seen / seconds:8.0f} images/s")

    with tempfile.TemporaryDirectory() as cache:
        begin = time.perf_counter()
        images.load_images(table["image_path"], size=size, cache_dir=cache, progress=False)
        cold_seconds = time.perf_counter() - begin
        print(f"  skinlib first decode into the cache (once): {cold_seconds:.1f} s "
              f"({count / cold_seconds:.0f} images/s)")
        begin = time.perf_counter()
        pixels = images.load_images(table["image_path"], size=size, cache_dir=cache, progress=False)
        dataset = pipeline.training_dataset(pixels, table["label"].to_numpy(), batch_size=args.batch_size)
        load_seconds = time.perf_counter() - begin
        print(f"  skinlib cache check, load and pipeline set-up (once per notebook): {load_seconds:.2f} s")
    warm = []
    for _ in range(args.repeats):
        seen, seconds = one_epoch(dataset)
        warm.append(seen / seconds)
        print(f"  skinlib tf.data epoch: {seen / seconds:8.0f} images/s")

    median = statistics.median
    first_epoch = count / (load_seconds + count / median(warm))
    result = {
        "machine": machine(), "images": count, "size": args.size, "batch_size": args.batch_size,
        "repeats": args.repeats, "image_data_generator_images_per_s": [round(v) for v in baseline],
        "skinlib_epoch_images_per_s": [round(v) for v in warm],
        "skinlib_first_decode_s": round(cold_seconds, 2), "skinlib_load_and_setup_s": round(load_seconds, 2),
        "speedup_per_epoch": round(median(warm) / median(baseline), 1),
        "speedup_first_epoch_from_cache": round(first_epoch / median(baseline), 1),
    }
    print(f"Speed-up per epoch (median of {args.repeats}): {result['speedup_per_epoch']}x; "
          f"first epoch of a notebook, cache load and set-up included: {result['speedup_first_epoch_from_cache']}x")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    print(f"Wrote {args.output}")


if __name__ == "__main__":
    main()
