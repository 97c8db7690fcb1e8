#!/usr/bin/env python
"""Converts the three MediaPipe models styleforge ships (src/styleforge/faces/models/) from the
``.tflite`` files inside the ``mediapipe==0.10.21`` wheel to ONNX, run by onnxruntime.

Maintainer tool, not run by users or tests (the converted files are in the repository). It
reads each TFLite flatbuffer with the ``tflite`` package (schema bindings only, no TensorFlow)
and writes an NCHW ONNX graph op by op; float16 weights stay float16 in the file behind a Cast
(onnxruntime folds it at load), so the files are about as small as the originals. Only the ops
these models use are handled.

    python -m venv /tmp/conv && /tmp/conv/bin/pip install tflite onnx numpy
    pip download mediapipe==0.10.21 --no-deps -d /tmp/mp && unzip -q /tmp/mp/*.whl -d /tmp/mp
    /tmp/conv/bin/python scripts/convert_mediapipe_models.py /tmp/mp/mediapipe src/styleforge/faces/models

Inputs and outputs keep the TFLite layout (NHWC image in, the original output shapes), so the
ONNX files are used exactly as MediaPipe uses the TFLite ones.
"""
from __future__ import annotations

import hashlib
import struct
import sys
from pathlib import Path

import numpy as np
import onnx
import tflite
from onnx import TensorProto, helper, numpy_helper

MODELS = {
    # name in styleforge: path inside the wheel's mediapipe/ folder
    "selfie_segmentation.onnx": "modules/selfie_segmentation/selfie_segmentation.tflite",
    "face_detection_short_range.onnx": "modules/face_detection/face_detection_short_range.tflite",
    "face_landmark.onnx": "modules/face_landmark/face_landmark.tflite",
}

OPS = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
DTYPES = {tflite.TensorType.FLOAT32: np.float32, tflite.TensorType.FLOAT16: np.float16,
          tflite.TensorType.INT32: np.int32, tflite.TensorType.INT64: np.int64}
ACT = {tflite.ActivationFunctionType.NONE: None, tflite.ActivationFunctionType.RELU: "Relu",
       tflite.ActivationFunctionType.RELU6: "Relu6"}
SAME, VALID = tflite.Padding.SAME, tflite.Padding.VALID


def same_pads(size: int, k: int, s: int, d: int = 1) -> tuple[int, int]:
    """TensorFlow's SAME padding along one axis: the extra pixel goes after."""
    out = -(-size // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


class Converter:
    def __init__(self, path: Path):
        self.buf = path.read_bytes()
        self.model = tflite.Model.GetRootAsModel(self.buf, 0)
        self.g = self.model.Subgraphs(0)
        self.nodes, self.inits, self.consts = [], [], {}
        self.layout = {}  # tensor index -> "nchw" (a 4-D activation, transposed) or "plain"
        self.n = 0

    # -- helpers ------------------------------------------------------------------------
    def t(self, i):
        return self.g.Tensors(i)

    def name(self, i) -> str:
        return f"t{i}"

    def shape(self, i) -> list[int]:
        return [int(v) for v in self.t(i).ShapeAsNumpy()]

    def data(self, i) -> np.ndarray | None:
        if i in self.consts:
            return self.consts[i]
        t = self.t(i)
        b = self.model.Buffers(t.Buffer())
        if b is None or b.DataLength() == 0:
            return None
        a = np.frombuffer(b.DataAsNumpy().tobytes(), DTYPES[t.Type()]).reshape(self.shape(i))
        self.consts[i] = a
        return a

    def fresh(self, base: str) -> str:
        self.n += 1
        return f"{base}_{self.n}"

    def init(self, a: np.ndarray, base: str = "w") -> str:
        """An initializer; float16 weights are kept float16 behind a Cast to float32."""
        name = self.fresh(base)
        if a.dtype == np.float16:
            self.inits.append(numpy_helper.from_array(a, name + "_f16"))
            self.node("Cast", [name + "_f16"], [name], to=TensorProto.FLOAT)
        else:
            self.inits.append(numpy_helper.from_array(np.ascontiguousarray(a), name))
        return name

    def node(self, op, ins, outs, **attrs):
        self.nodes.append(helper.make_node(op, ins, outs, name=self.fresh(op), **attrs))

    def act(self, out_name: str, fused) -> tuple[str, str]:
        """(name the op writes, final name) with the fused activation appended."""
        a = ACT[fused]
        if a is None:
            return out_name, out_name
        tmp = self.fresh("pre")
        if a == "Relu":
            self.node("Relu", [tmp], [out_name])
        else:
            self.node("Clip", [tmp, self.init(np.array(0, np.float32)), self.init(np.array(6, np.float32))], [out_name])
        return tmp, out_name

    def operand(self, i, like4d: bool) -> str:
        """An input: an activation by name, or a constant made NCHW-broadcastable."""
        a = self.data(i)
        if a is None:
            return self.name(i)
        a = a.astype(np.float16 if a.dtype == np.float16 else a.dtype)
        if like4d:
            if a.ndim == 4:
                a = a.transpose(0, 3, 1, 2)
            elif a.ndim in (1, 3) and a.size == a.shape[-1]:
                a = a.reshape(1, -1, 1, 1)
        return self.init(a)

    # -- ops ------------------------------------------------------------------------------
    def conv(self, op, depthwise: bool):
        opt = (tflite.DepthwiseConv2DOptions if depthwise else tflite.Conv2DOptions)()
        o = op.BuiltinOptions()
        opt.Init(o.Bytes, o.Pos)
        x, w, b = op.Inputs(0), op.Inputs(1), op.Inputs(2) if op.InputsLength() > 2 else -1
        wt = self.data(w)  # conv: O×kh×kw×I ; depthwise: 1×kh×kw×C
        _, h, wd, cin = self.shape(x)
        if depthwise:
            wt = wt.transpose(3, 0, 1, 2)  # C×1×kh×kw
            group = cin
        else:
            wt = wt.transpose(0, 3, 1, 2)
            group = 1
        kh, kw = wt.shape[2:]
        sh, sw = opt.StrideH(), opt.StrideW()
        dh, dw = opt.DilationHFactor() or 1, opt.DilationWFactor() or 1
        if opt.Padding() == SAME:
            ph, pw = same_pads(h, kh, sh, dh), same_pads(wd, kw, sw, dw)
        else:
            ph, pw = (0, 0), (0, 0)
        ins = [self.name(x), self.init(wt)]
        if b >= 0 and self.data(b) is not None:
            ins.append(self.init(self.data(b)))
        y, final = self.act(self.name(op.Outputs(0)), opt.FusedActivationFunction())
        self.node("Conv", ins, [y], strides=[sh, sw], dilations=[dh, dw], group=group,
                  pads=[ph[0], pw[0], ph[1], pw[1]], kernel_shape=[kh, kw])
        self.layout[op.Outputs(0)] = "nchw"

    def transpose_conv_bias(self, op):
        # MediaPipe's custom op: custom options are the raw TfLiteTransposeConvParams struct
        # {padding, stride_width, stride_height} (three int32)
        padding, sw, sh = struct.unpack("<3i", op.CustomOptionsAsNumpy().tobytes()[:12])
        x, w, b = op.Inputs(0), op.Inputs(1), op.Inputs(2)
        wt = self.data(w).transpose(3, 0, 1, 2)  # O×kh×kw×I -> I×O×kh×kw
        kh, kw = wt.shape[2:]
        _, h, wd, _ = self.shape(x)
        _, oh, ow, _ = self.shape(op.Outputs(0))
        pads, outpad = [], []
        for size, out, k, s in ((h, oh, kh, sh), (wd, ow, kw, sw)):
            total = s * (size - 1) + k - out
            if total >= 0:
                pads.append((total // 2, total - total // 2))
                outpad.append(0)
            else:
                pads.append((0, 0))
                outpad.append(-total)
        self.node("ConvTranspose", [self.name(x), self.init(wt), self.init(self.data(b))], [self.name(op.Outputs(0))],
                  strides=[sh, sw], kernel_shape=[kh, kw], pads=[pads[0][0], pads[1][0], pads[0][1], pads[1][1]],
                  output_padding=outpad)
        self.layout[op.Outputs(0)] = "nchw"
        assert padding in (SAME, VALID)

    def pool(self, op, kind: str):
        opt = tflite.Pool2DOptions()
        o = op.BuiltinOptions()
        opt.Init(o.Bytes, o.Pos)
        x = op.Inputs(0)
        _, h, w, _ = self.shape(x)
        kh, kw, sh, sw = opt.FilterHeight(), opt.FilterWidth(), opt.StrideH(), opt.StrideW()
        ph, pw = (same_pads(h, kh, sh), same_pads(w, kw, sw)) if opt.Padding() == SAME else ((0, 0), (0, 0))
        y, _ = self.act(self.name(op.Outputs(0)), opt.FusedActivationFunction())
        kw_ = {"count_include_pad": 0} if kind == "AveragePool" else {}
        self.node(kind, [self.name(x)], [y], kernel_shape=[kh, kw], strides=[sh, sw],
                  pads=[ph[0], pw[0], ph[1], pw[1]], **kw_)
        self.layout[op.Outputs(0)] = "nchw"

    def binary(self, op, kind: str, opts_cls):
        a, b = op.Inputs(0), op.Inputs(1)
        is4d = len(self.shape(op.Outputs(0))) == 4
        fused = None
        if op.BuiltinOptions() is not None:
            opt = opts_cls()
            o = op.BuiltinOptions()
            opt.Init(o.Bytes, o.Pos)
            fused = opt.FusedActivationFunction()
        y, _ = self.act(self.name(op.Outputs(0)), fused or tflite.ActivationFunctionType.NONE)
        self.node(kind, [self.operand(a, is4d), self.operand(b, is4d)], [y])
        self.layout[op.Outputs(0)] = "nchw" if is4d else "plain"

    def unary(self, op, kind: str):
        self.node(kind, [self.name(op.Inputs(0))], [self.name(op.Outputs(0))])
        self.layout[op.Outputs(0)] = self.layout.get(op.Inputs(0), "nchw")

    def prelu(self, op):
        alpha = self.data(op.Inputs(1))
        self.node("PRelu", [self.name(op.Inputs(0)), self.init(alpha.reshape(-1, 1, 1))], [self.name(op.Outputs(0))])
        self.layout[op.Outputs(0)] = "nchw"

    def pad(self, op):
        p = self.data(op.Inputs(1)).astype(np.int64)  # 4×2, NHWC
        p = p[[0, 3, 1, 2]]
        pads = np.concatenate([p[:, 0], p[:, 1]]).astype(np.int64)
        self.node("Pad", [self.name(op.Inputs(0)), self.init(pads, "pads")], [self.name(op.Outputs(0))], mode="constant")
        self.layout[op.Outputs(0)] = "nchw"

    def resize(self, op):
        opt = tflite.ResizeBilinearOptions()
        o = op.BuiltinOptions()
        opt.Init(o.Bytes, o.Pos)
        n, oh, ow, c = self.shape(op.Outputs(0))
        mode = "align_corners" if opt.AlignCorners() else "half_pixel" if opt.HalfPixelCenters() else "asymmetric"
        sizes = self.init(np.array([n, c, oh, ow], np.int64), "sizes")
        self.node("Resize", [self.name(op.Inputs(0)), "", "", sizes], [self.name(op.Outputs(0))], mode="linear",
                  coordinate_transformation_mode=mode)
        self.layout[op.Outputs(0)] = "nchw"

    def reshape(self, op):
        x = op.Inputs(0)
        src = self.name(x)
        if self.layout.get(x) == "nchw":  # back to NHWC order before flattening, as TFLite sees it
            tmp = self.fresh("nhwc")
            self.node("Transpose", [src], [tmp], perm=[0, 2, 3, 1])
            src = tmp
        shape = self.init(np.array(self.shape(op.Outputs(0)), np.int64), "shape")
        self.node("Reshape", [src, shape], [self.name(op.Outputs(0))])
        self.layout[op.Outputs(0)] = "plain"

    def concat(self, op):
        opt = tflite.ConcatenationOptions()
        o = op.BuiltinOptions()
        opt.Init(o.Bytes, o.Pos)
        ins = [op.Inputs(j) for j in range(op.InputsLength())]
        axis = opt.Axis()
        nd = len(self.shape(op.Outputs(0)))
        axis = axis % nd
        lay = self.layout.get(ins[0], "plain")
        if lay == "nchw":
            axis = [0, 2, 3, 1][axis]
        self.node("Concat", [self.name(i) for i in ins], [self.name(op.Outputs(0))], axis=axis)
        self.layout[op.Outputs(0)] = lay

    # -- graph ----------------------------------------------------------------------------
    def convert(self) -> onnx.ModelProto:
        g, m = self.g, self.model
        graph_inputs, graph_outputs = [], []
        for k in range(g.InputsLength()):
            i = g.Inputs(k)
            shp = self.shape(i)
            graph_inputs.append(helper.make_tensor_value_info(self.t(i).Name().decode(), TensorProto.FLOAT, shp))
            self.node("Transpose", [self.t(i).Name().decode()], [self.name(i)], perm=[0, 3, 1, 2])
            self.layout[i] = "nchw"
        for k in range(g.OperatorsLength()):
            op = g.Operators(k)
            oc = m.OperatorCodes(op.OpcodeIndex())
            code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
            name = "CUSTOM:" + oc.CustomCode().decode() if code == tflite.BuiltinOperator.CUSTOM else OPS[code]
            if name == "DEQUANTIZE":  # float16 constant -> its float16 data, cast on use
                self.consts[op.Outputs(0)] = self.data(op.Inputs(0))
            elif name == "CONV_2D":
                self.conv(op, False)
            elif name == "DEPTHWISE_CONV_2D":
                self.conv(op, True)
            elif name == "CUSTOM:Convolution2DTransposeBias":
                self.transpose_conv_bias(op)
            elif name == "MAX_POOL_2D":
                self.pool(op, "MaxPool")
            elif name == "AVERAGE_POOL_2D":
                self.pool(op, "AveragePool")
            elif name == "ADD":
                self.binary(op, "Add", tflite.AddOptions)
            elif name == "MUL":
                self.binary(op, "Mul", tflite.MulOptions)
            elif name == "RELU":
                self.unary(op, "Relu")
            elif name == "LOGISTIC":
                self.unary(op, "Sigmoid")
            elif name == "HARD_SWISH":
                self.unary(op, "HardSwish")
            elif name == "PRELU":
                self.prelu(op)
            elif name == "PAD":
                self.pad(op)
            elif name == "RESIZE_BILINEAR":
                self.resize(op)
            elif name == "RESHAPE":
                self.reshape(op)
            elif name == "CONCATENATION":
                self.concat(op)
            else:
                raise NotImplementedError(name)
        for k in range(g.OutputsLength()):
            i = g.Outputs(k)
            out = self.t(i).Name().decode()
            if self.layout.get(i) == "nchw":
                self.node("Transpose", [self.name(i)], [out], perm=[0, 2, 3, 1])
            else:
                self.node("Identity", [self.name(i)], [out])
            graph_outputs.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, self.shape(i)))
        graph = helper.make_graph(self.nodes, "mediapipe", graph_inputs, graph_outputs, self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="styleforge")
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model


def main(argv):
    src, dst = Path(argv[0]), Path(argv[1])
    dst.mkdir(parents=True, exist_ok=True)
    for out, rel in MODELS.items():
        path = src / rel
        model = Converter(path).convert()
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        helper.set_model_props(model, {"source": f"mediapipe==0.10.21 wheel, mediapipe/{rel}",
                                       "source_sha256": sha, "license": "Apache-2.0"})
        onnx.save(model, dst / out)
        print(f"{out}: {len(model.graph.node)} nodes, {(dst / out).stat().st_size} bytes, from {rel} ({sha[:12]})")


if __name__ == "__main__":
    main(sys.argv[1:])
