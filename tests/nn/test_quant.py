"""``nn.quant.FakeQuant``: ONNX's QuantizeLinear then DequantizeLinear, as onnxruntime computes
them (a two-node graph built here), for int8 and uint8 zero points, on rounding ties and out of
range; gradients straight through; an export as QuantizeLinear / DequantizeLinear."""
import io

import numpy as np
import pytest
import torch

from styleforge.nn.quant import INT8, UINT8, FakeQuant, quant_points

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

SCALE = 0.25  # exact in binary: x / SCALE lands exactly on the ties below


def _qdq_session(scale, zero_point, dtype):
    inits = [numpy_helper.from_array(np.array(scale, np.float32), "s"),
             numpy_helper.from_array(np.array(zero_point, dtype), "z")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])]
    graph = helper.make_graph(nodes, "qdq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _point(scale, zero_point, qrange):
    p = FakeQuant()
    p.set(scale, zero_point, qrange)
    return p


@pytest.mark.parametrize("zero_point, qrange, dtype", [(-5, INT8, np.int8), (-128, INT8, np.int8),
                                                       (7, UINT8, np.uint8), (0, UINT8, np.uint8)])
def test_fake_quant_equals_onnxruntimes_quantize_dequantize(zero_point, qrange, dtype):
    # ties at every half step (round half to even: 0.5 -> 0, 1.5 -> 2, -2.5 -> -2), values far
    # outside the range (saturation at the zero point type's bounds), and random values
    ties = (np.arange(-300, 300) + 0.5) * SCALE
    x = np.concatenate([ties, [-1e6, 1e6, 0.0], np.random.default_rng(0).normal(0, 30, 2000)]).astype(np.float32)
    theirs = _qdq_session(SCALE, zero_point, dtype).run(None, {"x": x})[0]
    ours = _point(SCALE, zero_point, qrange)(torch.from_numpy(x)).numpy()
    assert np.array_equal(ours, theirs)
    # saturation at the zero point type's ends; a tie goes to the even level
    assert ours[300] == 0.0 and ours[301] == 2 * SCALE and ours[302] == 2 * SCALE  # 0.5, 1.5, 2.5 steps
    assert ours.min() == (qrange[0] - zero_point) * SCALE and ours.max() == (qrange[1] - zero_point) * SCALE


def test_a_point_never_set_says_so_and_bad_parameters_are_refused():
    p = FakeQuant()
    assert not p.ready()
    p.set(0.1, 3, INT8)
    assert p.ready() and float(p.zero_point) == 3 and (float(p.qmin), float(p.qmax)) == INT8
    for bad in ((0.0, 0, INT8), (0.1, 200, INT8), (0.1, -1, UINT8)):
        with pytest.raises(ValueError):
            FakeQuant().set(*bad)


def test_gradients_pass_straight_through():
    p = _point(0.1, 0, INT8)
    x = torch.tensor([0.04, 0.26, -3.0], requires_grad=True)
    y = p(x)
    assert torch.allclose(y.detach(), torch.tensor([0.0, 0.3, -3.0]))
    (y * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert torch.equal(x.grad, torch.tensor([1.0, 2.0, 3.0]))


def test_export_writes_quantize_and_dequantize_linear():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), _point(0.05, 3, INT8))
    x = torch.randn(1, 3, 8, 8)
    buf = io.BytesIO()
    torch.onnx.export(net, (x,), buf, dynamo=False, opset_version=17)
    ops = [n.op_type for n in onnx.load_from_string(buf.getvalue()).graph.node]
    assert ops.count("QuantizeLinear") == 1 and ops.count("DequantizeLinear") == 1
    sess = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        ref = net(x).numpy()
    # the same grid; a value within float error of a tie may round the other way
    assert np.mean(np.abs(sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0] - ref) < 1e-6) > 0.99
    assert list(quant_points(net)) == ["1"]
