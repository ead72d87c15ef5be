"""Fit a model with the project's callbacks and save what it produced, atomically.

:func:`fit` trains on a ``tf.data`` pipeline, computes the validation
balanced accuracy after every epoch, keeps the weights of the best epoch by
that score (model selection on validation only), stops early when it stops
improving, and shows Keras' progress. :func:`save_run` writes the ``.keras``
model, its history and its row in the shared results table, each through a
temporary file (:mod:`skinlib.artefacts`), so a crash leaves the last good files in place.

:func:`experiment` is one iteration of a chapter in one call (seed, build,
train, score on validation, save). Chapter 03's transfer learning on cached
views is in :mod:`skinlib.features`.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pandas as pd

from skinlib.artefacts import record_metrics, save_model_atomic, write_table_atomic
from skinlib.metrics import classification_metrics


def set_seeds(seed=0):
    """Seed Python, NumPy and TensorFlow, and ask TensorFlow for deterministic ops.

    With the same seed, a model built and trained after this call starts from
    the same weights and sees the same batches, so a rerun repeats its numbers.

    Parameters
    ----------
    seed : int, default=0

    Examples
    --------
    >>> set_seeds(0)  # doctest: +SKIP
    """
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def class_weights(labels, n_classes=7, power=1.0):
    """Weights that make every class count as much as the others in the loss.

    Each class gets ``(n_samples / (n_classes * count)) ** power``: rare
    classes weigh more; ``power`` < 1 softens the balancing (0: no weights).

    Parameters
    ----------
    labels : array-like of shape (n,)
        Training class indices; every class must occur.
    n_classes : int, default=7
    power : float, default=1.0

    Returns
    -------
    dict
        ``{class index: weight}``, for Keras' ``class_weight``.

    Examples
    --------
    >>> class_weights(np.array([0, 0, 0, 1]), 2)
    {0: 0.6666666666666666, 1: 2.0}
    """
    counts = np.bincount(np.asarray(labels), minlength=n_classes)
    if (counts == 0).any():
        raise ValueError(f"every class needs at least one training image; counts per class: {counts.tolist()}.")
    return {index: (len(labels) / (n_classes * count)) ** power for index, count in enumerate(counts.tolist())}


def validation_callback(images, labels, *, metadata=None, batch_size=256, verbose=True):
    """A Keras callback that scores the validation split after every epoch.

    It adds ``val_loss``, ``val_accuracy`` and ``val_balanced_accuracy`` to the
    epoch's logs (one prediction pass, so callbacks after it can monitor them)
    and prints one line per epoch. It keeps each epoch's probabilities in
    ``probabilities`` (by epoch, from 1), so the best epoch's need no second pass.

    Parameters
    ----------
    images : ndarray
        Validation images (or feature vectors for a head).
    labels : array-like of shape (n,)
    metadata : ndarray, default=None
        The second input of a two-input model.
    batch_size : int, default=256
    verbose : bool, default=True

    Returns
    -------
    keras.callbacks.Callback

    Examples
    --------
    >>> scorer = validation_callback(val.images, val.labels)  # doctest: +SKIP
    >>> model.fit(batches, epochs=3, callbacks=[scorer])  # doctest: +SKIP
    """
    import keras
    from sklearn.metrics import balanced_accuracy_score

    from skinlib import pipeline

    batches = pipeline.evaluation_dataset(images, batch_size=batch_size, metadata=metadata)
    labels = np.asarray(labels)

    class ValidationScore(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.started = time.perf_counter()
            self.probabilities = {}

        def on_epoch_end(self, epoch, logs=None):
            probabilities = self.probabilities[epoch + 1] = self.model.predict(batches, verbose=0)
            chosen = np.clip(probabilities[np.arange(len(labels)), labels], 1e-7, 1)
            logs["val_loss"] = float(-np.log(chosen).mean())
            logs["val_accuracy"] = float((probabilities.argmax(axis=1) == labels).mean())
            logs["val_balanced_accuracy"] = float(balanced_accuracy_score(labels, probabilities.argmax(axis=1)))
            if verbose:
                print(f"epoch {epoch + 1:>3}  loss {logs['loss']:.3f}  accuracy {logs['accuracy']:.3f}  "
                      f"val_loss {logs['val_loss']:.3f}  val_accuracy {logs['val_accuracy']:.3f}  "
                      f"val_balanced_accuracy {logs['val_balanced_accuracy']:.3f}  "
                      f"({time.perf_counter() - self.started:.0f} s)", flush=True)

    return ValidationScore()


def learning_rate_schedule(schedule, learning_rate, total_steps):
    """The learning rate (a number or a Keras schedule) for :func:`fit`'s ``schedule`` argument.

    Parameters
    ----------
    schedule : {None, "plateau", "cosine", "one_cycle"}
        None and "plateau" keep the rate constant (the plateau cut is a
        callback of :func:`fit`).
    learning_rate : float
        The rate, or the peak of a schedule.
    total_steps : int
        Training steps of the whole run.

    Returns
    -------
    float or keras.optimizers.schedules.LearningRateSchedule

    Examples
    --------
    >>> cycle = learning_rate_schedule("one_cycle", 0.01, 100)
    >>> [round(float(cycle(step)), 4) for step in (0, 30, 100)]
    [0.0004, 0.01, 0.0]
    """
    import keras

    if schedule in (None, "plateau"):
        return learning_rate
    if schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=max(1, total_steps))
    if schedule == "one_cycle":
        warmup = max(1, int(0.3 * total_steps))
        return keras.optimizers.schedules.CosineDecay(learning_rate / 25, decay_steps=max(1, total_steps - warmup),
                                                      warmup_target=learning_rate, warmup_steps=warmup)
    raise ValueError(f"schedule must be None, 'cosine', 'plateau' or 'one_cycle'. Got {schedule!r} instead.")


@dataclasses.dataclass
class Run:
    """What :func:`fit` returns: the model (best epoch's weights), its history and timing.

    ``history`` has one row per epoch (index from 1) with the training and
    validation loss and accuracy and ``val_balanced_accuracy``; ``best_epoch``
    is the epoch whose weights ``model`` holds.
    """

    name: str
    model: object
    history: pd.DataFrame
    seconds: float
    best_epoch: int
    validation_probabilities: np.ndarray = None
    """The best epoch's validation probabilities (those of ``model``), as scored during training."""


def fit(model, train_data, validation, *, name, epochs=20, learning_rate=1e-3, optimizer="adam",
        schedule=None, class_weight=None, patience=5, verbose=True, loss="sparse_categorical_crossentropy",
        callbacks=()):
    """Compile and train ``model``, keeping the epoch with the best validation balanced accuracy.

    Parameters
    ----------
    model : keras.Model
        Uncompiled, from :mod:`skinlib.models`.
    train_data : tf.data.Dataset
        From :func:`skinlib.pipeline.training_dataset`.
    validation : tuple (images, labels) or (images, labels, metadata)
        Validation arrays (uint8 images or feature vectors, integer labels,
        and the metadata of a two-input model).
    name : str
        Name of the run, used for saved files and the results table.
    epochs : int, default=20
    learning_rate : float, default=1e-3
    optimizer : {"adam", "sgd"}, default="adam"
        Adam, or SGD with Nesterov momentum 0.9 (the original study's choice).
    schedule : {None, "cosine", "plateau", "one_cycle"}, default=None
        Cosine decay of the learning rate over all epochs; a tenfold cut
        when the validation loss stalls for two epochs (ReduceLROnPlateau);
        or one cycle: a linear warm-up from a 25th of the rate to the rate
        over the first 30% of the steps, then cosine decay.
    class_weight : dict, default=None
        From :func:`class_weights`, to weigh rare classes up in the loss.
    patience : int, default=5
        Epochs without a better validation balanced accuracy before stopping.
    verbose : bool, default=True
        Print one line per epoch with the training and validation scores.
    loss : str or keras.losses.Loss, default="sparse_categorical_crossentropy"
        For example ``skinlib.features.loss_function("cross_entropy", label_smoothing=0.1)``
        with one-hot labels.
    callbacks : sequence of keras.callbacks.Callback, default=()
        Run after the validation scorer and early stopping.

    Returns
    -------
    Run

    Examples
    --------
    >>> batches = pipeline.training_dataset(train.images, train.labels, batch_size=64)  # doctest: +SKIP
    >>> run = fit(models.cnn((64, 64, 3)), batches, (val.images, val.labels), name="cnn")  # doctest: +SKIP
    >>> run.best_epoch, run.history["val_balanced_accuracy"].max()  # doctest: +SKIP
    """
    import keras

    steps = int(train_data.cardinality().numpy())
    rate = learning_rate_schedule(schedule, learning_rate, steps * epochs)
    if optimizer == "adam":
        chosen = keras.optimizers.Adam(rate)
    elif optimizer == "sgd":
        chosen = keras.optimizers.SGD(rate, momentum=0.9, nesterov=True)
    else:
        raise ValueError(f"optimizer must be 'adam' or 'sgd'. Got {optimizer!r} instead.")
    model.compile(optimizer=chosen, loss=loss, metrics=["accuracy"])
    images, labels, *metadata = validation
    scorer = validation_callback(images, labels, metadata=metadata[0] if metadata else None, verbose=verbose)
    chosen_callbacks = [
        scorer,
        keras.callbacks.EarlyStopping("val_balanced_accuracy", mode="max", patience=patience,
                                      restore_best_weights=True, verbose=0),
    ]
    if schedule == "plateau":
        chosen_callbacks.append(keras.callbacks.ReduceLROnPlateau("val_loss", factor=0.1, patience=2, verbose=0))
    begin = time.perf_counter()
    history = model.fit(train_data, epochs=epochs, class_weight=class_weight,
                        callbacks=chosen_callbacks + list(callbacks), verbose=0,
                        shuffle=False)
    seconds = time.perf_counter() - begin
    table = pd.DataFrame(history.history).rename_axis("epoch")
    table.index = table.index + 1
    best = int(table["val_balanced_accuracy"].idxmax())  # The first best, as EarlyStopping restores it.
    return Run(name=name, model=model, history=table.round(5), seconds=seconds, best_epoch=best,
               validation_probabilities=scorer.probabilities[best])


def save_run(run, metrics, *, folder, notebook, extra=None, save_model=True):
    """Save a run's model (unless ``save_model`` is False), history and metrics row; return the file names.

    Parameters
    ----------
    run : Run
    metrics : dict
        Its validation metrics (:func:`skinlib.metrics.classification_metrics`).
    folder : str or Path
        ``Saved_Models/`` (:func:`skinlib.artefacts.models_dir`).
    notebook : str
        The chapter, recorded in the results table.
    extra : dict, default=None
        More columns for the results table.
    save_model : bool, default=True

    Returns
    -------
    list of str
        ``<name>.keras`` (when saved) and ``<name>_history.csv``; the results
        row and ``<name>_metrics.json`` are written by
        :func:`skinlib.artefacts.record_metrics`.

    Examples
    --------
    >>> save_run(run, metrics, folder=artefacts.models_dir(), notebook="02_CNN_Iterations")  # doctest: +SKIP
    ['02_cnn.keras', '02_cnn_history.csv']
    """
    folder = Path(folder)
    model_path = save_model_atomic(run.model, folder / f"{run.name}.keras") if save_model else None
    history_path = write_table_atomic(run.history, folder / f"{run.name}_history.csv")
    details = {"params": int(run.model.count_params()),
               "trainable_params": int(sum(np.prod(w.shape) for w in run.model.trainable_weights)),
               "epochs_run": len(run.history), "best_epoch": run.best_epoch, "train_seconds": round(run.seconds, 1)}
    record_metrics(run.name, metrics, folder=folder, notebook=notebook, extra=extra, details=details)
    return [p.name for p in (model_path, history_path) if p is not None]


@dataclasses.dataclass
class Experiment:
    """A trained run with its validation predictions and metrics (what :func:`experiment` returns)."""

    run: Run
    metrics: dict
    labels: np.ndarray
    probabilities: np.ndarray

    @property
    def name(self):
        return self.run.name

    @property
    def model(self):
        return self.run.model

    @property
    def summary(self):
        """The metrics with the run's name, for :func:`skinlib.metrics.change`."""
        return {"name": self.name, **self.metrics}


def experiment(name, build, splits, *, folder, notebook, epochs=12, batch_size=64, seed=0, augment=None,
               balance_classes=False, metadata=None, save_model=True, record=True, extra=None, **fit_options):
    """Seed, build, train, evaluate on validation and save: one iteration of a chapter in one call.

    Parameters
    ----------
    name : str
        Run name (file names and the results table).
    build : callable
        Returns a fresh uncompiled model; called after seeding, so weights
        start the same on every rerun.
    splits : dict
        From :func:`skinlib.split.load_split_images`, with "train" and "val".
    folder : str or Path
        Where the model, history and results row go (``Saved_Models/``).
    notebook : str
        The chapter that made the run, recorded in the results table.
    epochs, batch_size, seed : int
    augment : keras layer, default=None
        Applied to training batches only (:func:`skinlib.models.augmentation`).
    balance_classes : bool or float, default=False
        Weigh the loss by :func:`class_weights` of the training labels (a
        number: the weights' ``power``).
    metadata : dict, default=None
        Metadata arrays by split name ("train", "val"), for a two-input model.
    save_model : bool, default=True
        Save the ``.keras`` file (else only the history, metrics and results row).
    record : bool, default=True
        Save anything at all; False for a repeat with another seed that only measures the spread (it must not
        become a candidate for the final model or a row of the results table).
    extra : dict, default=None
        More columns for the results table.
    **fit_options
        Passed to :func:`fit` (learning_rate, optimizer, schedule, patience).

    Returns
    -------
    Experiment

    Examples
    --------
    >>> splits = split.load_split_images((64, 64), splits=("train", "val"))  # doctest: +SKIP
    >>> cnn = experiment("02_cnn", lambda: models.cnn((64, 64, 3)), splits, folder=artefacts.models_dir(),
    ...                  notebook="02_CNN_Iterations", epochs=8)  # doctest: +SKIP
    >>> cnn.metrics["balanced_accuracy"]  # doctest: +SKIP
    """
    from skinlib import pipeline

    import tensorflow as tf

    set_seeds(seed)
    train, validation = splits["train"], splits["val"]
    metadata = metadata or {}
    data = pipeline.training_dataset(train.images, train.labels, batch_size=batch_size, seed=seed, augment=augment,
                                     metadata=metadata.get("train"))
    power = 1.0 if balance_classes is True else float(balance_classes)
    weights = class_weights(train.labels, power=power) if balance_classes else None
    validation_arrays = (validation.images, validation.labels) + ((metadata["val"],) if "val" in metadata else ())
    logger, level = tf.get_logger(), tf.get_logger().level
    logger.setLevel("ERROR")  # Predicting after each epoch retraces tf.functions; TensorFlow's note on it is noise.
    try:
        run = fit(build(), data, validation_arrays, name=name, epochs=epochs, class_weight=weights, **fit_options)
    finally:
        logger.setLevel(level)
    probabilities = run.validation_probabilities  # The restored best epoch's, scored once during training.
    metrics = classification_metrics(validation.labels, probabilities)
    size = "x".join(map(str, train.images.shape[1:3])) if train.images.ndim == 4 else "features"
    if record:
        save_run(run, metrics, folder=folder, notebook=notebook, save_model=save_model,
                 extra={"input_size": size, "train_images": len(train.labels), **(extra or {})})
    return Experiment(run=run, metrics=metrics, labels=validation.labels, probabilities=probabilities)
