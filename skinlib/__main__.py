"""Command line: ``python -m skinlib {download,check,split,cache,reproduce,predict,score}``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _download(args):
    from skinlib import download

    if args.isic2018_test:
        import shlex

        got = download.download_isic2018_test(args.dest, server=args.server)
        truth = shlex.quote(str(got.truth)) if got.truth else "DIAGNOSES.csv"
        print(f"The ISIC 2018 challenge's test images ({got.count}) are in {got.images}: answer them with python -m "
              f"skinlib predict {shlex.quote(str(got.images))} --csv answers.csv, then score the answers against "
              f"their diagnoses with python -m skinlib score answers.csv --truth {truth}"
              + ("" if got.truth else " (the record listed no ground-truth file: the challenge publishes one)"))
        return
    if args.if_missing:
        folder = download.ensure_data(args.dest, server=args.server, masks=not args.no_masks)
    else:
        folder = download.download_ham10000(args.dest, server=args.server, masks=not args.no_masks)
    print(f"HAM10000 is in {folder}")


def _check(args):
    from skinlib import data

    report = data.check_data(args.data, decode=not args.no_decode, progress=True)
    print(report)
    return 0 if report.ok else 1


def _split(args):
    from skinlib import data, split

    manifest = split.make_split(data.load_metadata(args.data), seed=args.seed)
    print(split.split_summary(manifest).to_string())
    if args.write:
        print(f"Wrote {split.save_manifest(manifest)}")
        return 0
    same = split.matches_manifest(manifest)
    print(f"Identical to the committed manifest {split.MANIFEST_PATH.name}: {same}")
    return 0 if same else 1


def _cache(args):
    import time

    from skinlib import data, images

    metadata = data.load_metadata(args.data)
    for side in args.size:
        begin = time.perf_counter()
        array = images.load_images(metadata["image_path"], size=(side, side))
        print(f"{array.shape[0]} images at {side}x{side}: ready in {time.perf_counter() - begin:.1f} s")


def _reproduce(args):
    from skinlib import download, reproduce

    if args.readme:
        changed = reproduce.update_readme()
        print(f"README.md and benchmarks/TRIALS.md: {', '.join(changed) or 'no'} block(s) rewritten from the saved "
              "results.")
        return 0
    if args.list:
        table = reproduce.parameters().astype(str)
        widths = {column: max(len(column), table[column].str.len().max()) for column in table.columns[:-1]}
        for row in [dict(zip(table.columns, table.columns))] + table.to_dict("records"):
            print("  ".join(row[column].ljust(width) for column, width in widths.items()) + "  " + row["help"])
        return 0
    settings = dict(reproduce.parse_assignment(text) for text in args.set or [])
    reproduce.declared_parameters(settings, only=args.only)  # A typo is refused before any download or run.
    download.ensure_data()
    reproduce.reproduce(smoke=args.smoke, only=args.only, settings=settings)


PREDICT_EXIT_STATUS = """exit status:
  0    every image was answered
  1    some images could not be read or used (each has its message in the error column of the table
       and the CSV) and the others were answered
  2    no answer: no image files, none of them readable, a missing or unreadable model, a CSV
       path that cannot be written, or a bad argument
  130  interrupted (Ctrl-C)
Entries of a folder that the checker does not read (other endings, subfolders, a metadata CSV
beside the images) are named on stderr and leave the status as it is."""


def _predict(args):
    from skinlib import predict

    files = predict.image_files(args.images)
    skipped = predict.skipped_files(args.images)
    if skipped:
        names = ", ".join(p.name + ("/" if p.is_dir() else "") for p in skipped[:5])
        more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        print(f"skipped {len(skipped)} entr{'y' if len(skipped) == 1 else 'ies'} of the folder(s) that the checker "
              f"does not read ({names}{more}): it reads files ending in "
              f"{', '.join(predict.CHECKED_EXTENSIONS)}, and does not search subfolders.", file=sys.stderr)
    if not files:
        print("error: no image files given (or the folders hold none).", file=sys.stderr)
        return 2
    if args.csv is not None:  # Refused before the model loads and the images run, not after.
        if not args.csv.strip():
            print("error: --csv needs a file path.", file=sys.stderr)
            return 2
        from skinlib.artefacts import unwritable_reason

        args.csv = Path(args.csv).expanduser()
        problem = unwritable_reason(args.csv)
        if problem:
            print(f"error: the CSV file {args.csv} {problem}; give a file path in a writable folder.", file=sys.stderr)
            return 2
    checker = predict.Checker(args.model, backend=args.backend)
    if checker.note:
        print(f"note: {checker.note}", file=sys.stderr)
    given = [name for name in ("age", "sex", "site") if getattr(args, name) is not None]
    if given and not checker.uses_metadata:
        print(f"note: the model {checker.name} reads the image only; --{', --'.join(given)} "
              f"{'was' if len(given) == 1 else 'were'} not used.", file=sys.stderr)
    print(predict.NOTICE)
    if args.csv is not None or len(files) > 1:
        table = checker.predict_many(files, progress=len(files) > 1, age=args.age, sex=args.sex, site=args.site)
        shown = table.astype(object).where(table.notna(), "").astype(str)
        print(shown.drop(columns=["model", "version", "backend", *predict.PROBABILITY_COLUMNS]).to_string(index=False))
        print(f"model {checker.name} {checker.version} ({predict.BACKENDS[checker.backend]})")
        failed = int((table["error"].fillna("") != "").sum())
        if failed:
            print(f"{failed} of {len(table)} image(s) could not be read; see the error column.", file=sys.stderr)
        if args.csv is not None:  # After the table is shown, so that a failed write loses no answer.
            from skinlib.artefacts import write_table_atomic

            try:
                write_table_atomic(table, args.csv, index=False)
            except OSError as error:
                print(f"error: could not write the CSV file {args.csv}: {error.strerror or error}", file=sys.stderr)
                return 2
            print(f"Wrote {len(table)} rows to {args.csv}", file=sys.stderr)
        return 2 if failed == len(table) else 1 if failed else 0
    print(checker.predict(files[0], age=args.age, sex=args.sex, site=args.site))
    return 0


def _score(args):
    import pandas as pd

    from skinlib import predict
    from skinlib.artefacts import unwritable_reason, write_json_atomic

    answers_path = Path(args.answers)
    if args.json:  # Refused before the bootstrap runs, not after.
        problem = unwritable_reason(Path(args.json).expanduser())
        if problem:
            raise predict.ScoreError(f"the JSON file {args.json} {problem}; give a file path in a writable folder.")
    try:
        answers = pd.read_csv(answers_path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as error:
        raise predict.ScoreError(f"{answers_path}: cannot be read as a CSV file ({error}).") from None
    truth = predict.read_truth(args.truth)
    try:
        table, counts = predict.score_answers(answers, truth, n_resamples=args.resamples)
    except predict.ScoreError as error:
        raise predict.ScoreError(f"{answers_path} against {args.truth}: {error}") from None
    support = ", ".join(f"{dx} {n}" for dx, n in counts["support"].items())
    print(f"{counts['scored']} image(s) of {counts['lesions']} lesion(s) scored against {args.truth} ({support}); "
          f"{counts['errors']} the checker could not read left out; model {', '.join(counts['model']) or 'not named'}.")
    if counts["threshold"] is not None:
        print(f"sensitivity and specificity at the checker's screening threshold, {counts['threshold']:.4f}.")
    print(f"95% intervals from {args.resamples} bootstrap resamples of the lesions of each diagnosis (each image is its "
          "own lesion where the diagnoses name none):")
    print(table.round(3).to_string())
    for note in _score_notes(counts):
        print(f"note: {note}", file=sys.stderr)
    if args.json:
        metrics = table.astype(object).where(table.notna(), None).to_dict(orient="index")  # NaN is not JSON.
        write_json_atomic(Path(args.json).expanduser(), {"answers": str(answers_path), "truth": str(args.truth),
                                                         **counts, "metrics": metrics}, end="\n")
        print(f"Wrote the scores to {args.json}", file=sys.stderr)
    return 0


def _score_notes(counts):
    """What a reader of the scores should know about them: too few lesions, diagnoses absent, images seen in training.

    >>> for note in _score_notes({"support": {"mel": 3, "nv": 9, "df": 0}, "few_lesions": {"mel": 1},
    ...                           "ham10000": {"train": 2, "test": 1}}):
    ...     print(note)
    mel 1 has fewer than 5 lesions: the bootstrap barely varies its recall (with one lesion, not at all), so the intervals are too narrow.
    2 of the 3 diagnoses are present (mel, nv): balanced accuracy is the mean of their recalls (and a macro AUC is over them).
    2 scored image(s) are HAM10000 training images: every model of this project learnt from its training images, and the shipped refit from its validation images too, so these scores are not those of new images.
    """
    from skinlib.predict import FEW_LESIONS

    notes = []
    few = counts.get("few_lesions") or {}
    if few:
        listed = ", ".join(f"{dx} {n}" for dx, n in few.items())
        one = " (with one lesion, not at all)" if 1 in few.values() else ""
        notes.append(f"{listed} {'has' if len(few) == 1 else 'have'} fewer than {FEW_LESIONS} lesions: the bootstrap "
                     f"barely varies {'its recall' if len(few) == 1 else 'their recalls'}{one}, so the intervals are "
                     "too narrow.")
    present = [dx for dx, n in counts["support"].items() if n]
    if len(present) < len(counts["support"]):
        notes.append(f"{len(present)} of the {len(counts['support'])} diagnoses are present ({', '.join(present)}): "
                     "balanced accuracy is the mean of their recalls (and a macro AUC is over them).")
    seen = {name: n for name, n in (counts.get("ham10000") or {}).items() if name in ("train", "val")}
    if seen:
        which = " and ".join({"train": "training", "val": "validation"}[name] for name in seen)
        notes.append(f"{sum(seen.values())} scored image(s) are HAM10000 {which} images: every model of this project "
                     "learnt from its training images, and the shipped refit from its validation images too, so these "
                     "scores are not those of new images.")
    return notes


def _age(text):
    """An age in years, 0 to 120, for ``--age``."""
    try:
        age = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of years") from None
    if not 0 <= age <= 120:
        raise argparse.ArgumentTypeError(f"{text} is not an age between 0 and 120 years")
    return age


def _folded(text):
    """A choice as given, without surrounding spaces or capitals (``--site " Lower Extremity"``)."""
    return text.strip().lower()


def build_parser():
    """Return the argument parser of ``python -m skinlib``."""
    from skinlib.data import SEXES, SITES

    parser = argparse.ArgumentParser(prog="python -m skinlib", description=(__doc__ or "").replace("``", ""))
    commands = parser.add_subparsers(dest="command", required=True)

    command = commands.add_parser("download", help="fetch HAM10000 from Harvard Dataverse")
    command.add_argument("--dest", help="target folder (default: $SKINLIB_DATA or data/ham10000; with --isic2018-test, "
                                        "isic2018_task3_test beside it)")
    command.add_argument("--server", help="Dataverse address (default: $SKINLIB_DATAVERSE or Harvard's)")
    command.add_argument("--no-masks", action="store_true", help="skip the lesion segmentation masks")
    command.add_argument("--if-missing", action="store_true", help="do nothing when the data is already found")
    command.add_argument("--isic2018-test", action="store_true",
                         help="fetch only the ISIC 2018 challenge's test images from the same record (for python -m "
                              "skinlib score; default --dest: isic2018_task3_test beside the HAM10000 folder)")
    command.set_defaults(run=_download)

    command = commands.add_parser("check", help="validate the data set and list every problem")
    command.add_argument("--data", help="data folder (default: $SKINLIB_DATA or data/ham10000)")
    command.add_argument("--no-decode", action="store_true", help="skip decoding every image")
    command.set_defaults(run=_check)

    command = commands.add_parser("split", help="rebuild the split and compare it with the committed manifest")
    command.add_argument("--data", help="data folder (default: $SKINLIB_DATA or data/ham10000)")
    command.add_argument("--seed", type=int, default=2018, help="seed of the split (default 2018)")
    command.add_argument("--write", action="store_true", help="overwrite the committed manifest")
    command.set_defaults(run=_split)

    command = commands.add_parser("cache", help="decode every image once into the disk cache")
    command.add_argument("--data", help="data folder (default: $SKINLIB_DATA or data/ham10000)")
    command.add_argument("--size", type=int, nargs="+", default=[64], help="square sizes to cache (default 64)")
    command.set_defaults(run=_cache)

    command = commands.add_parser("reproduce", help="run every notebook in order with papermill")
    command.add_argument("--smoke", action="store_true", help="small subset, outputs to .papermill/smoke/")
    command.add_argument("--only", nargs="+", help="run only notebooks whose name contains these strings")
    command.add_argument("--set", action="append", metavar="NAME=VALUE",
                         help="set a parameter in every notebook that has it (repeatable), e.g. --set seed=1")
    command.add_argument("--list", action="store_true", help="list every notebook's parameters and stop")
    command.add_argument("--readme", action="store_true",
                         help="only rewrite the result tables of the README and the trial log from the saved results "
                              "and stop")
    command.set_defaults(run=_reproduce)

    command = commands.add_parser("score", help="score the checker's answers (predict --csv) against known diagnoses")
    command.add_argument("answers", help="the CSV file that python -m skinlib predict IMAGES --csv wrote")
    command.add_argument("--truth", required=True,
                         help="a CSV of the images' diagnoses: 'dx' beside 'image_id' or 'image' (HAM10000's layout), "
                              "or ISIC 2018's ground truth ('image' and one 0/1 column per diagnosis)")
    command.add_argument("--resamples", type=int, default=1000,
                         help="bootstrap resamples for the intervals (default 1000)")
    command.add_argument("--json", help="also write the scores to this JSON file")
    command.set_defaults(run=_score)

    command = commands.add_parser("predict", help="top-3 diagnoses and P(malignant) for images, on this machine",
                                  epilog=PREDICT_EXIT_STATUS, formatter_class=argparse.RawDescriptionHelpFormatter)
    command.add_argument("images", nargs="+", help="image files or folders of images")
    command.add_argument("--model",
                         help="a .keras model or its .tflite copy (default: the final model in Saved_Models/)")
    command.add_argument("--csv", help="write one row per image to this CSV file")
    command.add_argument("--backend", choices=["auto", "keras", "lite"], default="auto",
                         help="auto (default): the model's LiteRT copy when there is one (fast start), else Keras")
    command.add_argument("--age", type=_age, help="patient age in years, for a model trained with metadata")
    command.add_argument("--sex", type=_folded, choices=SEXES, help="for a model trained with metadata")
    command.add_argument("--site", type=_folded, choices=SITES, metavar="SITE",
                         help=f"body site, for a model trained with metadata (quote two words): one of "
                              f"{', '.join(SITES)}")
    command.set_defaults(run=_predict)
    return parser


def main(argv=None):
    """Run the command line and return its exit status."""
    from skinlib.data import DataError
    from skinlib.download import DownloadError
    from skinlib.images import ImageError
    from skinlib.predict import ModelError, ScoreError
    from skinlib.reproduce import NotebookFailed, ParameterError

    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except (DataError, ImageError, DownloadError, NotebookFailed, ParameterError, ModelError, ScoreError,
            FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; partial downloads resume on the next run.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
