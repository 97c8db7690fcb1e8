"""The U-Net's seeded test-time dropout masks, drawn before the network runs."""
import torch

from styleforge.nn.generators import TestTimeDropout, UnetGenerator


def test_unet_dropout_masks_are_each_samples_draws_per_layer_in_the_order_the_layers_run():
    """dropout_masks draws, for each sample from its own generator seeded with the seed, one
    C×h×w uniform per dropout layer in the order the layers run, at each layer's input shape:
    the draws the layers made themselves inside the forward (recorded here by hooks). A wrong
    order of layers, a wrong shape or a generator shared by the samples gives other masks."""
    torch.manual_seed(0)
    g = UnetGenerator(num_downs=8, ngf=2).eval()  # unet_256: three dropout levels, 4, 8, 16 px at 256
    g.set_test_mode(True, True)
    x = torch.rand(2, 3, 256, 512) * 2 - 1  # not square: h and w each follow their own side
    shapes = []
    hooks = [m.register_forward_pre_hook(lambda m, inp: shapes.append(tuple(inp[0].shape[1:])))
             for m in g.modules() if isinstance(m, TestTimeDropout)]
    with torch.no_grad():
        g(x)
    for h in hooks:
        h.remove()
    assert shapes == [(16, 4, 8), (16, 8, 16), (16, 16, 32)]  # the deepest runs first
    gens = [torch.Generator().manual_seed(5) for _ in range(2)]
    want = [torch.stack([torch.rand(s, generator=gen) >= 0.5 for gen in gens]) for s in shapes]
    got = g.dropout_masks(x, 5)
    assert len(got) == len(want) and all(a.dtype == torch.bool and torch.equal(a, b) for a, b in zip(got, want))
    assert torch.equal(got[0][0], got[0][1])  # each sample its own generator, the same seed
    assert not torch.equal(g.dropout_masks(x, 6)[0], got[0])
