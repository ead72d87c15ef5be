"""benchmarks/gpu_end_to_end.py: its augmentation, and its smoke mode end to end on the CPU."""

import importlib.util
import json

import numpy as np
import pytest

from skinlib import reproduce

torch = pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite_pytorch")


@pytest.fixture(scope="module")
def gpu_benchmark():
    path = reproduce.repo_root() / "benchmarks" / "gpu_end_to_end.py"
    spec = importlib.util.spec_from_file_location("gpu_end_to_end", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_augmentation_is_seeded_and_keeps_pixels_in_range(gpu_benchmark):
    x = torch.rand((6, 3, 30, 40), generator=torch.Generator().manual_seed(1)) * 255
    first = gpu_benchmark.augment(x, torch.Generator().manual_seed(0), torch)
    again = gpu_benchmark.augment(x, torch.Generator().manual_seed(0), torch)
    other = gpu_benchmark.augment(x, torch.Generator().manual_seed(5), torch)
    assert first.shape == x.shape
    assert float(first.min()) >= 0 and float(first.max()) <= 255
    assert torch.equal(first, again)
    assert not torch.allclose(first, other)


def test_augmentation_moves_a_spot_only_as_far_as_the_zoom_and_offset_allow(gpu_benchmark):
    """A bright spot at the centre stays near the centre: the offset is at most 20% of the half-width."""
    x = torch.zeros((64, 3, 30, 40))
    x[:, :, 13:17, 18:22] = 255
    out = gpu_benchmark.augment(x, torch.Generator().manual_seed(0), torch).mean(dim=1)
    rows, columns = torch.meshgrid(torch.arange(30.0), torch.arange(40.0), indexing="ij")
    weight = out / out.sum(dim=(1, 2), keepdim=True)
    centre_row, centre_column = (weight * rows).sum(dim=(1, 2)), (weight * columns).sum(dim=(1, 2))
    assert float((centre_row - 14.5).abs().max()) < 0.2 * 15 + 1
    assert float((centre_column - 19.5).abs().max()) < 0.2 * 20 + 1


def test_four_flip_tta_of_a_flip_invariant_model_equals_its_plain_prediction(gpu_benchmark):
    class Mean(torch.nn.Module):
        def forward(self, x):
            return torch.stack([x.mean(dim=(1, 2, 3))] * 7, dim=1) * torch.arange(7.0)

    pixels = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (5, 12, 16, 3), dtype=np.uint8))
    plain = gpu_benchmark.predict(Mean(), pixels, (12, 16), torch)
    tta = gpu_benchmark.predict(Mean(), pixels, (12, 16), torch, tta=True)
    np.testing.assert_allclose(plain, tta, atol=1e-6)
    np.testing.assert_allclose(plain.sum(axis=1), 1, atol=1e-5)


def test_smoke_run_writes_a_record_and_the_shift_scores(gpu_benchmark, real_data_dir, tmp_path):
    out, weights = tmp_path / "record.json", tmp_path / "weights"
    common = ["--images", str(real_data_dir / "images"), "--out", str(out), "--smoke"]
    record = gpu_benchmark.main([*common, "--seeds", "0", "1", "--weights-dir", str(weights)])
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
