"""benchmarks/gpu_end_to_end.py: its augmentation, and its smoke mode end to end on the CPU."""

import json
from pathlib import Path

import numpy as np
import pytest

from skinlib import split
from tests.conftest import load_benchmark

torch = pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite_pytorch")


@pytest.fixture(scope="module")
def gpu_benchmark():
    return load_benchmark("gpu_end_to_end")


def test_augmentation_is_seeded(gpu_benchmark):
    x = torch.rand((6, 3, 30, 40), generator=torch.Generator().manual_seed(1)) * 255
    first = gpu_benchmark.augment(x, torch.Generator().manual_seed(0), torch)
    assert first.shape == x.shape
    assert torch.equal(first, gpu_benchmark.augment(x, torch.Generator().manual_seed(0), torch))
    assert not torch.allclose(first, gpu_benchmark.augment(x, torch.Generator().manual_seed(5), torch))


def _spot_after(gpu_benchmark, draws, spot=(0, 10)):
    """Where a spot ``spot`` = (down, right) px from the centre of a 4:3 image lands: (dx, dy) from the centre."""
    x = torch.zeros((1, 1, 60, 80))
    row, column = 29 + spot[0], 39 + spot[1]
    x[:, :, row:row + 2, column:column + 2] = 1.0  # the centre is (29.5, 39.5)
    u = torch.zeros((1, 10))
    u[0, :len(draws)] = torch.tensor(draws, dtype=torch.float32)
    out = gpu_benchmark.warp(x, gpu_benchmark.affine(u, 60, 80, torch), torch)[0, 0]
    rows, columns = torch.meshgrid(torch.arange(60.0), torch.arange(80.0), indexing="ij")
    weight = out / out.sum()
    return float((weight * columns).sum() - 39.5), float((weight * rows).sum() - 29.5)


def test_affine_turns_flips_zooms_and_offsets_pixels_not_normalised_coordinates(gpu_benchmark):
    # Draws: angle, zoom, flip left-right, flip up-down, offsets x and y. Zoom draw -1 is 1x, +1 is 1.25x; flips
    # where < 0; an offset of 1 moves the sampled window by the whole margin the zoom leaves.
    assert _spot_after(gpu_benchmark, [0.0, -1.0, 1.0, 1.0]) == pytest.approx((10.0, 0.0), abs=0.05)
    dx, dy = _spot_after(gpu_benchmark, [1.0, -1.0, 1.0, 1.0])  # 20 degrees: the spot stays 10 px away
    assert np.hypot(dx, dy) == pytest.approx(10.0, abs=0.3)
    assert np.degrees(abs(np.arctan2(dy, dx))) == pytest.approx(20.0, abs=1.5)
    dx, dy = _spot_after(gpu_benchmark, [1.0, -1.0, 1.0, 1.0], spot=(10, 0))  # the same turn, on the other axis
    assert np.hypot(dx, dy) == pytest.approx(10.0, abs=0.3)
    assert _spot_after(gpu_benchmark, [0.0, -1.0, -1.0, 1.0]) == pytest.approx((-10.0, 0.0), abs=0.05)
    assert _spot_after(gpu_benchmark, [0.0, -1.0, 1.0, -1.0], spot=(10, 0)) == pytest.approx((0.0, -10.0), abs=0.05)
    assert _spot_after(gpu_benchmark, [0.0, 1.0, 1.0, 1.0]) == pytest.approx((12.5, 0.0), abs=0.3)
    # Zoom 1.25x with the window moved by its whole margin, 0.2 in normalised units: a spot 10 px right of the
    # centre (0.25 of the half-width, 40 px) lands at (0.25 - 0.2) / 0.8 = 0.0625, 2.5 px; one 10 px below it
    # (1/3 of the half-height, 30 px) at (1/3 - 0.2) / 0.8 = 1/6, 5 px.
    assert _spot_after(gpu_benchmark, [0.0, 1.0, 1.0, 1.0, 1.0, 0.0]) == pytest.approx((2.5, 0.0), abs=0.3)
    assert _spot_after(gpu_benchmark, [0.0, 1.0, 1.0, 1.0, 0.0, 1.0], spot=(10, 0)) == pytest.approx((0.0, 5.0),
                                                                                                      abs=0.3)


def test_loss_weights_each_image_by_its_own_class_as_keras_class_weight(gpu_benchmark):
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [-0.5, 1.5, 0.0]])
    labels = torch.tensor([0, 2, 1])
    weight = torch.tensor([0.5, 3.0, 8.0])
    log_p = torch.log_softmax(logits, dim=1)
    target = 0.9 * torch.eye(3)[labels] + 0.1 / 3  # label smoothing 0.1 over 3 classes
    expected = (weight[labels] * -(target * log_p).sum(dim=1)).mean()
    assert float(gpu_benchmark.weighted_loss(logits, labels, weight, torch)) == pytest.approx(float(expected), rel=1e-6)
    torch_weighted = torch.nn.CrossEntropyLoss(weight=weight, label_smoothing=0.1)(logits, labels)
    assert float(torch_weighted) != pytest.approx(float(expected), rel=1e-3)  # the loss of the first run differs


def test_shades_of_gray_matches_skinlib(gpu_benchmark):
    from skinlib import acquisition

    pixels = np.random.default_rng(0).integers(0, 256, (3, 12, 16, 3), dtype=np.uint8)
    pixels[1] = (pixels[1] * np.array([1.0, 0.7, 0.4])).astype(np.uint8)  # a colour cast
    ours = gpu_benchmark.shades_of_gray(torch.from_numpy(pixels).permute(0, 3, 1, 2).float())
    np.testing.assert_allclose(ours.permute(0, 2, 3, 1).numpy(), acquisition.shades_of_gray(pixels), atol=0.51)


def test_four_flip_tta_averages_the_flipped_images(gpu_benchmark):
    class Linear(torch.nn.Module):  # depends on where each pixel is, so every flip gives other logits
        def __init__(self):
            super().__init__()
            self.weights = torch.randn((12 * 16 * 3, 7), generator=torch.Generator().manual_seed(0)) / 100

        def forward(self, x):
            return x.permute(0, 2, 3, 1).reshape(len(x), -1) @ self.weights

    pixels = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (5, 12, 16, 3), dtype=np.uint8))
    model = Linear()
    flips = [gpu_benchmark.predict(model, pixels.flip(dims) if dims else pixels, (12, 16), torch)
             for dims in ([], [2], [1], [1, 2])]
    assert not np.allclose(flips[0], flips[1])
    np.testing.assert_allclose(gpu_benchmark.predict(model, pixels, (12, 16), torch, tta=True), np.mean(flips, 0),
                               atol=1e-6)


def test_smoke_run_reads_no_test_image_and_writes_a_record_and_the_shift_scores(gpu_benchmark, real_data_dir,
                                                                                  tmp_path, monkeypatch):
    out, weights = tmp_path / "record.json", tmp_path / "weights"
    common = ["--images", str(real_data_dir), "--out", str(out), "--smoke"]
    read, original = [], gpu_benchmark.images.read_image
    monkeypatch.setattr(gpu_benchmark.images, "read_image", lambda path, **kw: read.append(Path(path).stem) or original(
        path, **kw))
    calls, augment, shades_of_gray = [], gpu_benchmark.augment, gpu_benchmark.shades_of_gray
    monkeypatch.setattr(gpu_benchmark, "augment", lambda *a: calls.append("augment") or augment(*a))
    monkeypatch.setattr(gpu_benchmark, "shades_of_gray", lambda x: calls.append("gray") or shades_of_gray(x))
    record = gpu_benchmark.main([*common, "--seeds", "0", "1", "--weights-dir", str(weights)])
    # Training jitters the raw pixels, then removes the colour cast (as the shipped model's first layer does).
    assert calls.count("augment") == 2 and all(calls[i + 1] == "gray" for i, c in enumerate(calls) if c == "augment")
    assert record["settings"]["epochs"] == 1
    manifest = split.load_manifest()
    assert len(read) == 56 and not set(read) & set(manifest.loc[manifest["split"] == "test", "image_id"])
    assert record == json.loads(out.read_text())
    assert [run["seed"] for run in record["runs"]] == [0, 1] and record["smoke"]
    assert len(record["runs"][0]["curve"]) == 1
    assert set(record["summary"]["150x200"]["ensemble_tta"]["recall"]) <= {"akiec", "bcc", "bkl", "df", "mel",
                                                                          "nv", "vasc"}
    assert sorted(path.name for path in weights.iterdir()) == ["150x200_seed0.pt", "150x200_seed1.pt"]
    record = gpu_benchmark.main([*common, "--shifts", str(weights)])
    from skinlib import acquisition

    assert set(record["runs"][1]["shifts"]) == set(acquisition.SHIFTS)
    scored = json.loads(out.read_text())["runs"][1]["shifts"]
    assert all(0 <= scores["balanced_accuracy"] <= 1 for scores in scored.values())
    changes = record["shift_changes"]["150x200"]
    assert set(changes) == set(acquisition.SHIFTS) and changes["none"]["changes"] == [0.0, 0.0]
    assert changes["JPEG quality 30"]["changes"][1] == round(
        scored["JPEG quality 30"]["balanced_accuracy"] - scored["none"]["balanced_accuracy"], 4)
