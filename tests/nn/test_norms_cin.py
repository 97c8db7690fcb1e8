"""ConditionalInstanceNorm: one affine pair per style, selected or mixed by a weight row."""
import torch
import torch.nn.functional as F

from styleforge.nn.norms import ConditionalInstanceNorm


def test_one_hot_rows_select_each_samples_style_and_convex_rows_mix_parameters():
    torch.manual_seed(0)
    norm = ConditionalInstanceNorm(5, num_styles=3)
    assert norm.gamma.shape == norm.beta.shape == (3, 5)
    assert torch.equal(norm.gamma, torch.ones(3, 5)) and torch.equal(norm.beta, torch.zeros(3, 5))
    with torch.no_grad():
        norm.gamma.normal_(1, 0.5)
        norm.beta.normal_(0, 0.5)
    x = torch.randn(2, 5, 6, 7) * 3 + 1
    # sample 0 in style 2, sample 1 in style 0
    out = norm(x, torch.tensor([[0.0, 0, 1], [1, 0, 0]]))
    for i, k in enumerate((2, 0)):
        ref = F.instance_norm(x[i:i + 1], weight=norm.gamma[k], bias=norm.beta[k], eps=1e-5)
        assert torch.allclose(out[i:i + 1], ref, atol=1e-6)
    w = torch.tensor([[0.25, 0.75, 0.0]])
    ref = F.instance_norm(x[:1], weight=w[0] @ norm.gamma, bias=w[0] @ norm.beta, eps=1e-5)
    assert torch.allclose(norm(x[:1], w), ref, atol=1e-6)
