"""LIN / AdaLIN (U-GAT-IT): equal to the authors' formula (unbiased variances), rho clipping."""
import torch

from styleforge.nn.norms import LIN, AdaLIN, ILN, clip_rho_, layer_instance_norm


def literal_lin(x, rho, gamma, beta, eps=1e-5):
    """The official adaILN/ILN forward, term by term (torch.var is unbiased by default)."""
    out_in = (x - x.mean((2, 3), keepdim=True)) / torch.sqrt(x.var((2, 3), keepdim=True) + eps)
    out_ln = (x - x.mean((1, 2, 3), keepdim=True)) / torch.sqrt(x.var((1, 2, 3), keepdim=True) + eps)
    return (rho * out_in + (1 - rho) * out_ln) * gamma + beta


def test_adalin_and_lin_equal_the_official_formula_values_and_gradients():
    torch.manual_seed(0)
    x = torch.randn(3, 5, 6, 7, requires_grad=True)
    ada = AdaLIN(5)
    with torch.no_grad():
        ada.rho.uniform_(0, 1)
    gamma = torch.randn(3, 5, requires_grad=True)
    beta = torch.randn(3, 5, requires_grad=True)
    out = ada(x, gamma, beta)
    ref = literal_lin(x, ada.rho, gamma[:, :, None, None], beta[:, :, None, None])
    assert torch.allclose(out, ref, atol=1e-5)
    ga = torch.autograd.grad((out * ref.detach().sin()).sum(), [x, gamma, beta, ada.rho])
    gb = torch.autograd.grad((ref * ref.detach().sin()).sum(), [x, gamma, beta, ada.rho])
    for a, b in zip(ga, gb):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-4)
    lin = LIN(5)
    with torch.no_grad():
        for p in (lin.rho, lin.gamma, lin.beta):
            p.uniform_(0, 1)
    assert torch.allclose(lin(x), literal_lin(x, lin.rho, lin.gamma, lin.beta), atol=1e-5)


def test_initial_values_and_shapes_follow_the_official_code():
    ada, lin = AdaLIN(4), ILN(4)
    assert ILN is LIN
    assert ada.rho.shape == (1, 4, 1, 1) and torch.all(ada.rho == 0.9)
    assert [n for n, _ in lin.named_parameters()] == ["rho", "gamma", "beta"]
    assert torch.all(lin.rho == 0) and torch.all(lin.gamma == 1) and torch.all(lin.beta == 0)


def test_rho_one_is_instance_norm_and_zero_is_layer_norm():
    x = torch.randn(2, 3, 4, 4)
    n = 16
    ones, zeros = torch.ones(1, 3, 1, 1), torch.zeros(1, 3, 1, 1)
    inorm = torch.nn.functional.instance_norm(x, eps=1e-5 * (n - 1) / n) * ((n - 1) / n) ** 0.5
    # unbiased variance: IN with the biased one, rescaled by sqrt((n-1)/n)
    assert torch.allclose(layer_instance_norm(x, ones), inorm, atol=1e-5)
    ln = layer_instance_norm(x, zeros)
    assert torch.allclose(ln.mean((1, 2, 3)), torch.zeros(2), atol=1e-6)
    assert torch.allclose(ln.var((1, 2, 3)), torch.ones(2), atol=1e-4)


def test_bf16_autocast_keeps_dtype_and_statistics_in_float32():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 16, 16) * 30 + 100  # a large mean: bf16 statistics would be poor
    lin = LIN(8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = lin(x.bfloat16())
    assert y.dtype == torch.bfloat16
    ref = lin(x.bfloat16().float())
    assert (y.float() - ref).abs().max() < 0.05


def test_clip_rho_clamps_every_rho_under_a_module():
    net = torch.nn.Sequential(LIN(3), torch.nn.Conv2d(3, 3, 1), AdaLIN(3))
    with torch.no_grad():
        net[0].rho.copy_(torch.tensor([-0.5, 0.3, 1.7]).view(1, 3, 1, 1))
        net[2].rho.fill_(2.0)
        w = net[1].weight.clone()
    clip_rho_(net)
    assert net[0].rho.flatten().tolist() == [0.0, 0.30000001192092896, 1.0]
    assert torch.all(net[2].rho == 1.0) and torch.equal(net[1].weight, w)
