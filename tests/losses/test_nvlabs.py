"""The losses UNIT and MUNIT share (``losses.nvlabs``)."""
import torch

from styleforge.losses.adversarial import GANLoss
from styleforge.losses.nvlabs import two_domain_g_adv_vgg
from styleforge.nn.vgg import VGGEncoder, random_vgg_


def test_g_terms_judge_each_translation_in_its_domain_and_compare_it_to_its_source():
    """adv_a: dis_a on x_ba, adv_b: dis_b on x_ab (LSGAN, target real); vgg_a: x_ba against its
    source x_b, vgg_b: x_ab against x_a; a weight of 0 drops its terms and reads no VGG."""
    vgg = random_vgg_(VGGEncoder("vgg16", ("relu5_3",), "caffe", width=8), 1)
    calls = []

    def net(like):
        calls.append(like)
        return vgg

    g = torch.Generator().manual_seed(0)
    x_a, x_b = (torch.rand(1, 3, 32, 32, generator=g) * 2 - 1 for _ in range(2))
    ident = lambda x: x  # noqa: E731  a "discriminator" whose output is the image itself
    twice = lambda x: 2 * x  # noqa: E731
    ones, zeros = torch.ones(1, 3, 32, 32), torch.zeros(1, 3, 32, 32)
    out = two_domain_g_adv_vgg(3.0, 0.0, GANLoss("lsgan"), ident, twice, net, x_a, x_b, ones, zeros)
    assert set(out) == {"adv_a", "adv_b"} and not calls
    assert float(out["adv_a"]) == 0.0 and float(out["adv_b"]) == 3.0  # dis_a(x_ba = 1) is real
    out = two_domain_g_adv_vgg(3.0, 0.0, GANLoss("lsgan"), ident, twice, net, x_a, x_b, zeros, ones)
    assert float(out["adv_a"]) == 3.0 and float(out["adv_b"]) == 3.0  # dis_b(x_ab) = 2: (2 - 1)²

    out = two_domain_g_adv_vgg(0.0, 2.0, GANLoss("lsgan"), ident, twice, net, x_a, x_b, x_b, x_a)
    assert set(out) == {"vgg_a", "vgg_b"} and calls[0] is x_a
    assert float(out["vgg_a"]) == 0.0 and float(out["vgg_b"]) == 0.0  # each equal to its source
    out = two_domain_g_adv_vgg(0.0, 2.0, GANLoss("lsgan"), ident, twice, net, x_a, x_b, x_b, x_b)
    assert float(out["vgg_a"]) == 0.0 and float(out["vgg_b"]) > 0
