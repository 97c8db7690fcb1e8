"""A functional re-implementation of the UNIT/MUNIT generators' forward (NVlabs networks.py:
``AdaINGen``, ``VAEGen``), written from their definitions on a plain state dict with the official
key names, plus builders of such state dicts (random tensors, official shapes). The importer tests
compare styleforge's networks against it; nothing here uses styleforge's modules."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _conv(sd, key, x, k, stride, act, norm=None, adain=None):
    p = {7: 3, 5: 2, 4: 1, 3: 1}[k]
    x = F.conv2d(F.pad(x, (p, p, p, p), mode="reflect"), sd[f"{key}.conv.weight"],
                 sd[f"{key}.conv.bias"], stride)
    if norm == "in":
        x = F.instance_norm(x)
    elif norm == "ln":  # their LayerNorm: unbiased std, eps added to the std
        n = x.shape[0]
        mean = x.reshape(n, -1).mean(1).view(n, 1, 1, 1)
        std = x.reshape(n, -1).std(1).view(n, 1, 1, 1)
        x = (x - mean) / (std + 1e-5)
        x = x * sd[f"{key}.norm.gamma"].view(1, -1, 1, 1) + sd[f"{key}.norm.beta"].view(1, -1, 1, 1)
    elif norm == "adain":  # their AdaptiveInstanceNorm2d: batch norm over a 1×(N·C)×H×W view
        bias, weight = adain
        n, c = x.shape[:2]
        y = F.batch_norm(x.reshape(1, n * c, *x.shape[2:]), torch.zeros(n * c, dtype=x.dtype),
                         torch.ones(n * c, dtype=x.dtype), weight.reshape(-1), bias.reshape(-1),
                         True, 0.1, 1e-5)
        x = y.view_as(x)
    if act == "relu":
        x = F.relu(x)
    elif act == "tanh":
        x = torch.tanh(x)
    return x


def _res_blocks(sd, key, x, n_res, norm, adain_params=None):
    c = x.shape[1]
    for i in range(n_res):
        y = x
        for j, act in ((0, "relu"), (1, None)):
            ad = None
            if adain_params is not None:
                ad = (adain_params[:, :c], adain_params[:, c:2 * c])
                adain_params = adain_params[:, 2 * c:]
            y = _conv(sd, f"{key}.model.{i}.model.{j}", y, 3, 1, act, norm, ad)
        x = x + y
    return x


def content(sd, x, prefix, n_down, n_res):
    x = _conv(sd, f"{prefix}.model.0", x, 7, 1, "relu", "in")
    for i in range(1, n_down + 1):
        x = _conv(sd, f"{prefix}.model.{i}", x, 4, 2, "relu", "in")
    return _res_blocks(sd, f"{prefix}.model.{n_down + 1}", x, n_res, "in")


def style(sd, x, n_style_down=4):
    for i in range(n_style_down + 1):
        x = _conv(sd, f"enc_style.model.{i}", x, 7 if i == 0 else 4, 1 if i == 0 else 2, "relu")
    x = x.mean(dim=(2, 3), keepdim=True)
    last = n_style_down + 2
    return F.conv2d(x, sd[f"enc_style.model.{last}.weight"], sd[f"enc_style.model.{last}.bias"])


def mlp(sd, s):
    h = s.reshape(s.shape[0], -1)
    for i in range(3):
        h = F.linear(h, sd[f"mlp.model.{i}.fc.weight"], sd[f"mlp.model.{i}.fc.bias"])
        if i < 2:
            h = F.relu(h)
    return h


def decode(sd, h, prefix, n_up, n_res, res_norm, adain_params=None):
    x = _res_blocks(sd, f"{prefix}.model.0", h, n_res, res_norm, adain_params)
    idx = 1
    for _ in range(n_up):
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = _conv(sd, f"{prefix}.model.{idx + 1}", x, 5, 1, "relu", "ln")
        idx += 2
    return _conv(sd, f"{prefix}.model.{idx}", x, 7, 1, "tanh")


def munit_translate(sd_src, sd_dst, x, s, n_down, n_res):
    """Their test.py: decode(content of x by the source, style s N×style_dim by the target)."""
    c = content(sd_src, x, "enc_content", n_down, n_res)
    return decode(sd_dst, c, "dec", n_down, n_res, "adain", mlp(sd_dst, s))


def unit_translate(sd_src, sd_dst, x, n_down, n_res):
    return decode(sd_dst, content(sd_src, x, "enc", n_down, n_res), "dec", n_down, n_res, "in")


# ---- state dicts with the official names and shapes ----------------------------------------
def _conv_entry(sd, key, cin, cout, k, g):
    sd[f"{key}.conv.weight"] = torch.randn(cout, cin, k, k, generator=g) * (1.0 / (cin * k * k)) ** 0.5
    sd[f"{key}.conv.bias"] = torch.randn(cout, generator=g) * 0.1


def _encoder_entries(sd, prefix, in_ch, dim, n_down, n_res, g, old_in_stats):
    def in_stats(key, c):
        if old_in_stats:  # PyTorch 0.3 InstanceNorm2d buffers
            sd[f"{key}.norm.running_mean"] = torch.zeros(c)
            sd[f"{key}.norm.running_var"] = torch.ones(c)

    _conv_entry(sd, f"{prefix}.model.0", in_ch, dim, 7, g)
    in_stats(f"{prefix}.model.0", dim)
    for i in range(1, n_down + 1):
        _conv_entry(sd, f"{prefix}.model.{i}", dim, 2 * dim, 4, g)
        in_stats(f"{prefix}.model.{i}", 2 * dim)
        dim *= 2
    for i in range(n_res):
        for j in range(2):
            key = f"{prefix}.model.{n_down + 1}.model.{i}.model.{j}"
            _conv_entry(sd, key, dim, dim, 3, g)
            in_stats(key, dim)
    return dim


def _decoder_entries(sd, dim, out_ch, n_up, n_res, g, adain_buffers):
    for i in range(n_res):
        for j in range(2):
            key = f"dec.model.0.model.{i}.model.{j}"
            _conv_entry(sd, key, dim, dim, 3, g)
            if adain_buffers:  # their AdaIN layers' unused buffers
                sd[f"{key}.norm.running_mean"] = torch.zeros(dim)
                sd[f"{key}.norm.running_var"] = torch.ones(dim)
    idx = 1
    for _ in range(n_up):
        _conv_entry(sd, f"dec.model.{idx + 1}", dim, dim // 2, 5, g)
        sd[f"dec.model.{idx + 1}.norm.gamma"] = torch.rand(dim // 2, generator=g)
        sd[f"dec.model.{idx + 1}.norm.beta"] = torch.randn(dim // 2, generator=g) * 0.1
        dim //= 2
        idx += 2
    _conv_entry(sd, f"dec.model.{idx}", dim, out_ch, 7, g)


def munit_generator_sd(seed, dim=8, style_dim=8, mlp_dim=16, n_down=2, n_res=2, old=True):
    """gen_a/gen_b of a MUNIT ``gen_XXXXXXXX.pt``; ``old``: PyTorch 0.3 instance-norm stats."""
    g = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}
    w = dim
    _conv_entry(sd, "enc_style.model.0", 3, w, 7, g)
    for i in (1, 2):
        _conv_entry(sd, f"enc_style.model.{i}", w, 2 * w, 4, g)
        w *= 2
    for i in (3, 4):
        _conv_entry(sd, f"enc_style.model.{i}", w, w, 4, g)
    sd["enc_style.model.6.weight"] = torch.randn(style_dim, w, 1, 1, generator=g) / w ** 0.5
    sd["enc_style.model.6.bias"] = torch.randn(style_dim, generator=g) * 0.1
    top = _encoder_entries(sd, "enc_content", 3, dim, n_down, n_res, g, old)
    _decoder_entries(sd, top, 3, n_down, n_res, g, adain_buffers=True)
    n_adain = n_res * 2 * 2 * top
    for i, (cin, cout) in enumerate(((style_dim, mlp_dim), (mlp_dim, mlp_dim), (mlp_dim, n_adain))):
        sd[f"mlp.model.{i}.fc.weight"] = torch.randn(cout, cin, generator=g) / cin ** 0.5
        sd[f"mlp.model.{i}.fc.bias"] = torch.randn(cout, generator=g) * 0.1
    # AdaIN "std" entries around 1, as a trained MLP gives
    sd["mlp.model.2.fc.bias"] += torch.ones(n_res * 2, 2, top).mul(torch.tensor([0.0, 1.0])[None, :, None]).flatten()
    return sd


def unit_generator_sd(seed, dim=8, n_down=2, n_res=2, old=True):
    g = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}
    top = _encoder_entries(sd, "enc", 3, dim, n_down, n_res, g, old)
    _decoder_entries(sd, top, 3, n_down, n_res, g, adain_buffers=False)
    if old:
        for i in range(n_res):
            for j in range(2):
                sd[f"dec.model.0.model.{i}.model.{j}.norm.running_mean"] = torch.zeros(top)
                sd[f"dec.model.0.model.{i}.model.{j}.norm.running_var"] = torch.ones(top)
    return sd
