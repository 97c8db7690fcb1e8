import torch

from styleforge.nn.image_pool import ImagePool


def test_image_pool_history_and_state_roundtrip():
    pool = ImagePool(3, seed=0)
    imgs = [torch.full((1, 1, 2, 2), float(i)) for i in range(20)]
    for i in range(3):  # filling phase returns inputs
        assert torch.equal(pool.query(imgs[i]), imgs[i])
    state = pool.state_dict()
    outs = [pool.query(imgs[i]) for i in range(3, 20)]
    # some outputs are older images from the history, some are the new ones
    assert any(int(o.flatten()[0]) != i for o, i in zip(outs, range(3, 20)))
    assert any(int(o.flatten()[0]) == i for o, i in zip(outs, range(3, 20)))
    pool2 = ImagePool(3, seed=123)
    pool2.load_state_dict(state)
    outs2 = [pool2.query(imgs[i]) for i in range(3, 20)]
    assert all(torch.equal(a, b) for a, b in zip(outs, outs2))
    assert torch.equal(ImagePool(0).query(imgs[5]), imgs[5])
