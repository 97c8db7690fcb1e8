"""MobileFaceNet: the key layout of the model_mobilefacenet.pth that minivision-ai distribute,
loading such a file, and the face-ID distance of Photo2Cartoon."""
import pytest
import torch
import torch.nn.functional as F

from styleforge.errors import CheckpointError
from styleforge.nn.mobilefacenet import (MobileFaceNet, face_crop_box, face_embedding,
                                         face_id_distance, load_mobilefacenet)

# Obtained by building MobileFaceNet(512) from minivision-ai/photo2cartoon models/mobilefacenet.py
# (commit 6204e27, the InsightFace_Pytorch network) and summing p.numel() over .parameters();
# its state dict has 333 entries.
OFFICIAL_PARAMS = 1_200_512
OFFICIAL_KEYS = 333


def official_shapes(emb=512):
    """Key -> shape of their state dict, written out from their layer list (Conv_block: conv,
    bn, prelu; Linear_block: conv, bn; Depth_Wise: conv, conv_dw, project; Residual: model.N)."""
    s = {}

    def bn(p, c):
        s.update({f"{p}.weight": (c,), f"{p}.bias": (c,), f"{p}.running_mean": (c,),
                  f"{p}.running_var": (c,), f"{p}.num_batches_tracked": ()})

    def conv_block(p, cin, cout, k, groups=1, prelu=True):
        s[f"{p}.conv.weight"] = (cout, cin // groups, k, k)
        bn(f"{p}.bn", cout)
        if prelu:
            s[f"{p}.prelu.weight"] = (cout,)

    def depth_wise(p, cin, cout, mid):
        conv_block(f"{p}.conv", cin, mid, 1)
        conv_block(f"{p}.conv_dw", mid, mid, 3, groups=mid)
        conv_block(f"{p}.project", mid, cout, 1, prelu=False)

    conv_block("conv1", 3, 64, 3)
    conv_block("conv2_dw", 64, 64, 3, groups=64)
    depth_wise("conv_23", 64, 64, 128)
    for i in range(4):
        depth_wise(f"conv_3.model.{i}", 64, 64, 128)
    depth_wise("conv_34", 64, 128, 256)
    for i in range(6):
        depth_wise(f"conv_4.model.{i}", 128, 128, 256)
    depth_wise("conv_45", 128, 128, 512)
    for i in range(2):
        depth_wise(f"conv_5.model.{i}", 128, 128, 256)
    conv_block("conv_6_sep", 128, 512, 1)
    conv_block("conv_6_dw", 512, 512, 7, groups=512, prelu=False)
    s["linear.weight"] = (emb, 512)
    bn("bn", emb)
    return s


def test_layout_and_parameter_count_equal_the_official_network():
    net = MobileFaceNet()
    got = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert got == official_shapes() and len(got) == OFFICIAL_KEYS
    assert sum(p.numel() for p in net.parameters()) == OFFICIAL_PARAMS
    trainable = {k: v for k, v in official_shapes().items()
                 if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))}
    assert sum(int(torch.tensor(v).prod()) for v in trainable.values()) == OFFICIAL_PARAMS
    out = net.eval()(torch.rand(3, 3, 112, 112) * 2 - 1)
    assert out.shape == (3, 512) and torch.allclose(out.norm(dim=1), torch.ones(3), atol=1e-5)


def random_facenet_file(path, seed=0, prefix="", drop_counters=False):
    """A randomly initialised MobileFaceNet saved as the authors' file is: torch.save(state_dict)."""
    torch.manual_seed(seed)
    net = MobileFaceNet()
    # BN statistics of one batch of noise (momentum 1), as a trained network has statistics of
    # its own activations: loading them matters, and the embeddings depend on the input
    for m in net.modules():
        if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d)):
            m.momentum = 1.0
    with torch.no_grad():
        net(torch.rand(8, 3, 112, 112) * 2 - 1)
    net.eval()
    sd = {prefix + k: v for k, v in net.state_dict().items()
          if not (drop_counters and k.endswith("num_batches_tracked"))}
    torch.save(sd, path)
    return net


@pytest.mark.parametrize("prefix,drop", [("", False), ("module.", True)])
def test_load_gives_the_saved_network_frozen(tmp_path, prefix, drop):
    ref = random_facenet_file(tmp_path / "model_mobilefacenet.pth", 1, prefix, drop)
    net = load_mobilefacenet(tmp_path / "model_mobilefacenet.pth")
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    x = torch.rand(2, 3, 112, 112) * 2 - 1
    with torch.no_grad():
        assert torch.equal(net(x), ref(x))


def test_load_rejects_wrong_files(tmp_path):
    with pytest.raises(CheckpointError, match="face-recognition weights not found"):
        load_mobilefacenet(tmp_path / "missing.pth")
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_mobilefacenet(tmp_path / "junk.pth")
    torch.save({"genA2B": {"x": torch.zeros(1)}}, tmp_path / "p2c.pt")
    with pytest.raises(CheckpointError, match="not a MobileFaceNet state dict"):
        load_mobilefacenet(tmp_path / "p2c.pt")
    sd = MobileFaceNet().state_dict()
    sd.pop("conv_6_sep.prelu.weight")
    torch.save(sd, tmp_path / "cut.pth")
    with pytest.raises(CheckpointError, match=r"missing \['conv_6_sep.prelu.weight'\]"):
        load_mobilefacenet(tmp_path / "cut.pth")


def test_face_crop_and_id_distance_follow_the_authors(tmp_path):
    # their FaceFeatures.infer at 256 px: rows int(256/2.1*0.47) = 57 to int(256 - 256/2.1*0.3)
    # = 219, a 162 px square centred horizontally
    assert face_crop_box(256, 256) == (57, 219, 47, 209)
    assert face_crop_box(96, 96) == (21, 82, 17, 78)
    net = random_facenet_file(tmp_path / "f.pth", 2)
    torch.manual_seed(3)
    a, b = torch.rand(2, 3, 96, 96) * 2 - 1, torch.rand(2, 3, 96, 96) * 2 - 1
    with torch.no_grad():
        def emb(x):
            face = F.interpolate(x[:, :, 21:82, 17:78], size=(112, 112), mode="bilinear", align_corners=True)
            return net(face)

        ref = (1 - F.cosine_similarity(emb(a), emb(b))).mean()
        assert torch.allclose(face_id_distance(net, a, b), ref, atol=1e-6) and ref > 0.01
        assert torch.equal(face_embedding(net, a), emb(a))
        assert face_id_distance(net, a, a).abs() < 1e-6
    # gradient reaches the translated image, not the photo
    a.requires_grad_(True)
    b.requires_grad_(True)
    face_id_distance(net, a, b).backward()
    assert a.grad is None and b.grad.abs().sum() > 0
