"""CAM attention (U-GAT-IT): the fused 1×1 conv equals the authors' concatenation formula."""
import torch
import torch.nn.functional as F

from styleforge.nn.attention import CAM, cam_layers, class_activation_map


def literal_cam(x, gap_fc, gmp_fc, conv1x1, act):
    """The official forward: re-weight by each classifier's first parameter, concatenate, fuse."""
    n = x.shape[0]
    gap_w = list(gap_fc.parameters())[0]  # weight_orig under spectral norm, as the authors read it
    gmp_w = list(gmp_fc.parameters())[0]
    gap_logit = gap_fc(F.adaptive_avg_pool2d(x, 1).view(n, -1))
    gmp_logit = gmp_fc(F.adaptive_max_pool2d(x, 1).view(n, -1))
    h = torch.cat([x * gap_w[:, :, None, None], x * gmp_w[:, :, None, None]], 1)
    h = act(conv1x1(h))
    return h, torch.cat([gap_logit, gmp_logit], 1), h.sum(1, keepdim=True)


def test_cam_equals_literal_formula_with_and_without_spectral_norm():
    torch.manual_seed(0)
    for spectral, act in ((False, torch.relu), (True, lambda t: F.leaky_relu(t, 0.2))):
        layers = cam_layers(6, spectral=spectral)
        for l in layers:
            l.eval()  # no power iteration: both calls see the same normalised weight
        x = torch.randn(2, 6, 5, 7, requires_grad=True)
        out = class_activation_map(x, *layers, act)
        ref = literal_cam(x, *layers, act)
        assert out[0].shape == (2, 6, 5, 7) and out[1].shape == (2, 2) and out[2].shape == (2, 1, 5, 7)
        for a, b in zip(out, ref):
            assert torch.allclose(a, b, atol=1e-5)
        # gradients too (the fused weight is differentiated through)
        g1 = torch.autograd.grad(out[0].square().sum() + out[1].sum(), [x, *layers[2].parameters()])
        g2 = torch.autograd.grad(ref[0].square().sum() + ref[1].sum(), [x, *layers[2].parameters()])
        for a, b in zip(g1, g2):
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)


def test_spectral_norm_reweights_by_the_raw_weight():
    """With spectral norm the logit uses W/sigma but the channels are scaled by W itself."""
    torch.manual_seed(1)
    gap_fc, gmp_fc, conv = cam_layers(4, spectral=True)
    for l in (gap_fc, gmp_fc):
        l.eval()
        with torch.no_grad():
            l.weight_orig.mul_(10.0)  # sigma is now far from 1
    x = torch.rand(1, 4, 3, 3)
    out, logits, _ = class_activation_map(x, gap_fc, gmp_fc, conv, torch.relu)
    normalised = gap_fc.weight  # W / sigma, set by the hook in the forward
    assert not torch.allclose(normalised, gap_fc.weight_orig)
    assert torch.allclose(logits[:, 0], F.adaptive_avg_pool2d(x, 1).flatten(1) @ normalised[0], atol=1e-6)
    w = conv.weight[:, :4] * gap_fc.weight_orig.view(1, 4, 1, 1) + conv.weight[:, 4:] * gmp_fc.weight_orig.view(1, 4, 1, 1)
    assert torch.allclose(out, torch.relu(F.conv2d(x, w, conv.bias)), atol=1e-6)


def test_cam_module_keys_and_heatmap_is_channel_sum():
    m = CAM(8)
    assert sorted(m.state_dict()) == ["conv1x1.bias", "conv1x1.weight", "gap_fc.weight", "gmp_fc.weight"]
    assert m.gap_fc.weight.shape == (1, 8) and m.conv1x1.weight.shape == (8, 16, 1, 1)
    out, logits, heat = m(torch.randn(3, 8, 4, 4))
    assert torch.allclose(heat, out.sum(1, keepdim=True)) and (out >= 0).all()
