"""PredictedInstanceNorm (Ghiasi et al.): γ and β computed from a style vector by two linear maps,
or mixed per pixel from several vectors by mask weights."""
import torch
import torch.nn.functional as F

from styleforge.nn.norms import PredictedInstanceNorm


def norm_and_input():
    torch.manual_seed(0)
    norm = PredictedInstanceNorm(5, code_dim=4)
    with torch.no_grad():
        norm.beta.bias.normal_(0, 0.5)
        norm.gamma.bias.normal_(1, 0.5)
    return norm, torch.randn(2, 5, 8, 6) * 3 + 1


def test_gamma_and_beta_are_linear_maps_of_the_style_vector():
    norm, x = norm_and_input()
    code = torch.randn(2, 4)
    out = norm(x, code)
    for i in range(2):
        g, b = norm.gamma.weight @ code[i] + norm.gamma.bias, norm.beta.weight @ code[i] + norm.beta.bias
        ref = F.instance_norm(x[i:i + 1], weight=g, bias=b, eps=1e-5)
        assert torch.allclose(out[i:i + 1], ref, atol=1e-5)
    assert (norm(x, code.flip(0)) - out).abs().mean() > 0.1  # each sample uses its own vector


def test_a_mask_gives_each_pixel_the_gamma_and_beta_of_its_own_vector():
    norm, x = norm_and_input()
    v1, v2 = torch.randn(2, 4), torch.randn(2, 4)
    mask = torch.zeros(2, 1, 4, 3)  # half the size of x: resized (nearest) to it
    mask[..., :2, :] = 1  # the top half of the image
    out = norm(x, (torch.stack([v1, v2], 1), torch.cat([mask, 1 - mask], 1)))
    top, bottom = norm(x, v1), norm(x, v2)
    assert torch.allclose(out[..., :4, :], top[..., :4, :], atol=1e-5)
    assert torch.allclose(out[..., 4:, :], bottom[..., 4:, :], atol=1e-5)
    assert (top - bottom).abs().mean() > 0.1
