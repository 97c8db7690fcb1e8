"""Mattes: GrabCut seeded by the face box on real photos; user-provided ONNX models (built here
with onnx.helper) through onnxruntime, and the pipeline using their output."""
import numpy as np
import pytest
from PIL import Image

from styleforge.errors import CheckpointError, ConfigError
from styleforge.faces import FaceDetector, FacePreprocessor, GrabCutMatting, OnnxMatting, load_matting

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402


@pytest.fixture(scope="module")
def detector():
    return FaceDetector()


def _rgb(path):
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _save(model, path):
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def red_channel_model(path):
    """NCHW, dynamic size, input in [-1, 1]: alpha = (R + 1) / 2, i.e. the red channel / 255."""
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, "h", "w"])
    y = helper.make_tensor_value_info("matte", TensorProto.FLOAT, [1, 1, "h", "w"])
    inits = [helper.make_tensor(n, TensorProto.INT64, [1], [v]) for n, v in
             (("start", 0), ("end", 1), ("axis", 1))]
    inits.append(helper.make_tensor("one", TensorProto.FLOAT, [], [1.0]))
    inits.append(helper.make_tensor("half", TensorProto.FLOAT, [], [0.5]))
    nodes = [helper.make_node("Slice", ["image", "start", "end", "axis"], ["r"]),
             helper.make_node("Add", ["r", "one"], ["r1"]),
             helper.make_node("Mul", ["r1", "half"], ["matte"])]
    graph = helper.make_graph(nodes, "red", [x], [y], inits)
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def mean_nhwc_model(path, side):
    """NHWC, fixed side, input in [0, 1]: alpha = mean of R, G, B, as 1×h×w×1."""
    x = helper.make_tensor_value_info("input_1", TensorProto.FLOAT, [1, side, side, 3])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, side, side, 1])
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [3])
    graph = helper.make_graph([helper.make_node("ReduceMean", ["input_1", "axes"], ["out"], keepdims=1)],
                              "mean", [x], [y], [axes])
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)


def constant_model(path, value):
    """alpha = 0 * R + value everywhere (uses the input so the graph has a dynamic size)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "h", "w"])
    y = helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 1, "h", "w"])
    inits = [helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
             helper.make_tensor("v", TensorProto.FLOAT, [], [value]),
             helper.make_tensor("axes", TensorProto.INT64, [1], [1])]
    nodes = [helper.make_node("ReduceMean", ["x", "axes"], ["m"], keepdims=1),
             helper.make_node("Mul", ["m", "zero"], ["z"]), helper.make_node("Add", ["z", "v"], ["a"])]
    graph = helper.make_graph(nodes, "const", [x], [y], inits)
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)


@pytest.mark.parametrize("rel", ["photo2cartoon/testA/AM1987.jpg", "photo2cartoon_demo/photo_test.jpg",
                                 "stargan_v2_representative/celeba_hq/src/male/191300.jpg"])
def test_grabcut_keeps_the_face_and_drops_the_top_corners(shared_data, detector, rel):
    parts = rel.split("/")
    photo = _rgb(shared_data(parts[0]) / "/".join(parts[1:]))
    pre = FacePreprocessor(size=128, detector=detector)
    crop = pre(photo)[0]
    a = crop.alpha
    assert a.shape == (128, 128) and a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1
    x0, y0, x1, y1 = (int(round(v)) for v in crop.box)
    assert a[y0:y1, x0:x1].mean() > 0.8
    k = 12
    assert a[:k, :k].mean() < 0.1 and a[:k, -k:].mean() < 0.1
    white = crop.whitened()
    assert (white[:4, :4] >= 250).all()  # the background became white


def test_grabcut_seeds_put_the_inner_face_in_front_and_corners_behind():
    import cv2

    seeds = GrabCutMatting().seeds((100, 100), (30, 30, 70, 70))
    assert seeds[50, 50] == cv2.GC_FGD and seeds[0, 0] == cv2.GC_BGD and seeds[0, 99] == cv2.GC_BGD
    assert seeds[99, 50] == cv2.GC_PR_FGD


def test_onnx_matting_returns_the_models_output(shared_data, detector, tmp_path):
    photo = _rgb(shared_data("photo2cartoon") / "testA" / "AM1982.jpg")
    crop = FacePreprocessor(size=64, matting=None, detector=detector)(photo)[0].image
    m = OnnxMatting(red_channel_model(tmp_path / "red.onnx"), size=64)
    assert m.input_hw == (64, 64) and not m.nhwc
    np.testing.assert_allclose(m(crop), crop[..., 0] / 255.0, atol=1e-5)
    # NHWC, fixed size, [0, 1] input, 1×h×w×1 output
    m2 = OnnxMatting(mean_nhwc_model(tmp_path / "mean.onnx", 64), input_range="0,1")
    assert m2.nhwc and m2.input_hw == (64, 64)
    np.testing.assert_allclose(m2(crop), crop.mean(axis=2) / 255.0, atol=1e-5)
    # a fixed size different from the image's: the matte is resized back to the image
    m3 = OnnxMatting(mean_nhwc_model(tmp_path / "mean32.onnx", 32), input_range="0,1")
    out = m3(crop)
    assert out.shape == (64, 64)
    assert abs(float(out.mean()) - float(crop.mean()) / 255.0) < 0.02


@pytest.mark.parametrize("value", [0.0, 1.0])
def test_pipeline_whitens_with_the_onnx_models_matte(shared_data, detector, tmp_path, value):
    photo = _rgb(shared_data("photo2cartoon") / "testA" / "AM1982.jpg")
    pre = FacePreprocessor(size=64, matting=str(constant_model(tmp_path / "c.onnx", value)), detector=detector)
    crop = pre(photo)[0]
    if value == 0.0:
        assert (crop.alpha == 0).all() and (crop.whitened() == 255).all()
    else:
        assert np.allclose(crop.alpha[crop.valid], 1.0)
        assert (crop.whitened()[crop.valid] == crop.image[crop.valid]).all()


def test_onnx_errors_name_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        OnnxMatting(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="bad.onnx"):
        OnnxMatting(bad)
    with pytest.raises(ConfigError, match="multiple of 32"):
        OnnxMatting(red_channel_model(tmp_path / "r.onnx"), size=50)
    with pytest.raises(ConfigError, match="grabcut"):
        load_matting("model.pb")
