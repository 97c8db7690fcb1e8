"""FUNIT: Liu, Huang, Mallya, Karras, Aila, Lehtinen, Kautz, "Few-Shot Unsupervised Image-to-Image
Translation", ICCV 2019; networks, keys and training loop as the authors' code (NVlabs/FUNIT
``networks.py``, ``blocks.py``, ``funit_model.py``, ``trainer.py``, ``configs/funit_animals.yaml``).

Paper symbol -> code name (Sec. 3; architecture in the appendix):
  x (content image), class label c_x          ``batch["image"]``, ``batch["label"]`` (xa, la)
  {y_1..y_K} (K images of class c_y)          ``batch["class_image"]``/``class_label`` (xb, lb);
                                              at inference the ``class_images`` input (K×3×s×s)
  E_x content encoder, z_x = E_x(x)           ``gen.enc_content`` (in: instance norm, 3 downs +
                                              2 residual blocks: N×512×H/8×W/8 at nf = 64)
  E_y class encoder, z_y = mean_k E_y(y_k)    ``gen.enc_class_model`` (no norm, 4 downs, global
                                              average pool, 1×1 conv to latent_dim = 64)
  F_x decoder with AdaIN residual blocks      ``gen.dec``; its AdaIN (gamma, beta) come from
                                              ``gen.mlp(z_y)`` (3 linear layers, 256 wide)
  x_bar = G(x, {y_k}) (Eq. 1)                 :meth:`FUNIT.translate`
  D, multi-task: one output map per source    ``dis``: pre-activation residual blocks, 1×1 conv
  class, only the output of class c is read   to ``num_classes`` maps, ``out[i, label[i]]``
  L_GAN (hinge), weight 1                     ``gan_w``; D: relu(1 - D(y)) + relu(1 + D(x_bar))
  L_R content reconstruction G(x, {x}) ~ x    ``r_w`` = 0.1 (L1)
  L_F feature matching (Eq. 5): D's features  ``fm_w`` = 1: L1 between spatially averaged features
  before the class maps, of x_bar vs y and of  of the translation and the class image, and of the
  the reconstruction vs x                     reconstruction and the content image
  gradient penalty on real images (Mescheder  ``gp_w`` = 10: sum of squared gradients of
  et al. 2018)                                mean D(y) w.r.t. y, divided by the batch size
  G's moving average for evaluation           ``gen_test`` (EMA 0.999 of ``gen``: the trainer's
                                              ``train.ema_decay``; ``ema_modules``)

Training as the authors' loop: per step first D (real class images with the penalty, then the
translations made without gradient), then G; RMSprop, lr 1e-4 for both, weight decay 1e-4;
Kaiming-normal init (fan-in) of every conv/linear weight, zero biases, then ``gen_test`` is a
copy of ``gen``. During training K = 1: each content image is translated with the code of one
class image (the authors' two independently shuffled loaders; :class:`ClassFolderDataset` with
``pairs=True`` gives such a partner; without it the batch rolled by one sample is the partner).

Checkpoints of the authors (``gen_XXXXXXXX.pt`` = ``{'gen': ..., 'gen_test': ...}``) import with
``styleforge import funit FILE OUT`` (their AdaIN running statistics, never read, are dropped).
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import load_state_dict_strict, read_pth
from ..errors import CheckpointError, ConfigError
from ..nn.munit_blocks import MLP, ContentEncoder, ConvBlock, ResBlocks, StyleEncoder, drop_norm_buffers
from ..nn.norms import AdaIN
from ..registry import register_importer, register_method
from .base import Input, Method, Phase


class Decoder(nn.Module):
    """F_x: AdaIN residual blocks, ``ups`` × (nearest ×2, 5×5 conv halving the width, instance
    norm: FUNIT's decoder, where MUNIT's has layer norm), 7×7 conv to RGB, tanh."""

    def __init__(self, ups, n_res, dim, out_dim, activ="relu", pad="reflect"):
        super().__init__()
        layers: list[nn.Module] = [ResBlocks(n_res, dim, "adain", activ, pad)]
        for _ in range(ups):
            layers += [nn.Upsample(scale_factor=2), ConvBlock(dim, dim // 2, 5, 1, 2, "in", activ, pad)]
            dim //= 2
        layers.append(ConvBlock(dim, out_dim, 7, 1, 3, "none", "tanh", pad))
        self.model = nn.Sequential(*layers)

    def num_adain_params(self) -> int:
        return sum(2 * m.num_features for m in self.modules() if isinstance(m, AdaIN))

    def forward(self, x, adain_params):
        x = self.model[0](x, adain_params)
        for layer in self.model[1:]:
            x = layer(x)
        return x


class FewShotGen(nn.Module):
    """G = (E_x, E_y, F_x, MLP); submodule names are the authors'."""

    def __init__(self, nf=64, nf_mlp=256, latent_dim=64, n_mlp_blks=3, n_res_blks=2,
                 n_downs_content=3, n_downs_class=4):
        super().__init__()
        self.enc_class_model = StyleEncoder(n_downs_class, 3, nf, latent_dim, norm="none", pad="reflect")
        self.enc_content = ContentEncoder(n_downs_content, n_res_blks, 3, nf, norm="in", pad="reflect")
        self.dec = Decoder(n_downs_content, n_res_blks, self.enc_content.output_dim, 3)
        self.mlp = MLP(latent_dim, self.dec.num_adain_params(), nf_mlp, n_mlp_blks)

    def class_code(self, images: torch.Tensor) -> torch.Tensor:
        """K×3×s×s -> K×latent_dim: one code per image (the paper's E_y(y_k))."""
        return self.enc_class_model(images).flatten(1)

    def decode(self, content: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        """content N×C×h×w, code N×latent_dim (or 1×latent_dim for all) -> N×3×H×W."""
        params = self.mlp(code)
        if params.size(0) != content.size(0):
            params = params.expand(content.size(0), -1)
        return self.dec(content, params)

    def forward(self, x, class_images):
        return self.decode(self.enc_content(x), self.class_code(class_images).mean(0, keepdim=True))


class ActFirstConv(nn.Module):
    """leaky ReLU -> pad -> conv (the authors' ``Conv2dBlock(..., activation_first=True)``)."""

    def __init__(self, fin, fout, k, padding=0, act=True, bias=True):
        super().__init__()
        self.act = act
        self.pad = nn.ReflectionPad2d(padding)
        self.conv = nn.Conv2d(fin, fout, k, 1, bias=bias)

    def forward(self, x):
        return self.conv(self.pad(F.leaky_relu(x, 0.2) if self.act else x))


class ActFirstResBlock(nn.Module):
    """Pre-activation residual block without normalisation: two (leaky ReLU, 3×3 conv) layers; a
    1×1 conv without bias (``conv_s``) on the shortcut when the width changes, else lrelu(x).
    The latter is the authors' arithmetic: their in-place activation of the block's input also
    rewrites the identity shortcut, so their block computes lrelu(x) + F(x)."""

    def __init__(self, fin, fout):
        super().__init__()
        self.learned_shortcut = fin != fout
        fhid = min(fin, fout)
        self.conv_0 = ActFirstConv(fin, fhid, 3, 1)
        self.conv_1 = ActFirstConv(fhid, fout, 3, 1)
        if self.learned_shortcut:
            self.conv_s = ActFirstConv(fin, fout, 1, act=False, bias=False)

    def forward(self, x):
        shortcut = self.conv_s(x) if self.learned_shortcut else F.leaky_relu(x, 0.2)
        return shortcut + self.conv_1(self.conv_0(x))


class GPPatchMcResDis(nn.Module):
    """D: 7×7 conv, then ``n_res_blks/2 - 1`` stages of two residual blocks (the second doubling
    the width, at most 1024) + reflect pad 1 + 3×3 average pool stride 2, two more residual
    blocks, then (leaky ReLU, 1×1 conv) to ``num_classes`` maps. ``forward(x, y)`` returns
    the map of each sample's class (N×h×w) and the features (N×C×h×w, after that leaky ReLU:
    the authors' in-place activation rewrites the features they return)."""

    def __init__(self, nf=64, n_res_blks=10, num_classes=119):
        super().__init__()
        if n_res_blks % 2 or n_res_blks < 2:
            raise ConfigError(f"funit: dis_n_res_blks must be an even number >= 2, got {n_res_blks}")
        layers: list[nn.Module] = [ActFirstConv(3, nf, 7, 3, act=False)]
        for _ in range(n_res_blks // 2 - 1):
            nf_out = min(nf * 2, 1024)
            layers += [ActFirstResBlock(nf, nf), ActFirstResBlock(nf, nf_out),
                       nn.ReflectionPad2d(1), nn.AvgPool2d(kernel_size=3, stride=2)]
            nf = nf_out
        nf_out = min(nf * 2, 1024)
        layers += [ActFirstResBlock(nf, nf), ActFirstResBlock(nf, nf_out)]
        self.cnn_f = nn.Sequential(*layers)
        self.cnn_c = nn.Sequential(ActFirstConv(nf_out, num_classes, 1, act=False))
        self.num_classes = num_classes

    def forward(self, x, y):
        feat = F.leaky_relu(self.cnn_f(x), 0.2)
        out = self.cnn_c(feat)
        return out[torch.arange(out.size(0), device=out.device), y], feat


def kaiming_init(net: nn.Module) -> None:
    """The authors' ``weights_init('kaiming')``: N(0, 2/fan_in) weights, zero biases."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _freeze(net: nn.Module, frozen: bool) -> None:
    for p in net.parameters():
        p.requires_grad_(not frozen)


@register_method("funit")
class FUNIT(Method):
    data_kind = "class_folders"
    data_options = ("pairs",)  # the partner of each content image drawn from the whole folder
    # feature matching, not G_rec: at the authors' rates (G and D 1e-4) the adversarial term
    # pulls the reconstruction (weighted 0.1) up over the first ~20 steps (measured on the tiny
    # preset: 0.0517 -> 0.0564, back below its start only after 60); G_fm falls only when both
    # G and D train (with either frozen it rises). tests/methods/test_funit.py checks G_rec
    fit_terms = ("G_fm",)
    inference_modules = ("gen_test",)
    ema_modules = {"gen_test": "gen"}

    def __init__(self, nf=64, nf_mlp=256, latent_dim=64, n_mlp_blks=3, n_res_blks=2,
                 n_downs_content=3, n_downs_class=4, dis_nf=64, dis_n_res_blks=10,
                 num_classes=119, gan_w=1.0, r_w=0.1, fm_w=1.0, gp_w=10.0, init="kaiming",
                 class_image_size=128, max_shots=None):
        super().__init__()
        if init not in ("kaiming", "default"):
            raise ConfigError(f"funit: unknown init {init!r}; choose kaiming or default")
        if num_classes < 1:
            raise ConfigError(f"funit: num_classes must be >= 1, got {num_classes}")
        if n_downs_class < 2:
            raise ConfigError(f"funit: n_downs_class must be >= 2, got {n_downs_class}")
        gen_kw = dict(nf=nf, nf_mlp=nf_mlp, latent_dim=latent_dim, n_mlp_blks=n_mlp_blks,
                      n_res_blks=n_res_blks, n_downs_content=n_downs_content, n_downs_class=n_downs_class)
        self.gen = FewShotGen(**gen_kw)
        self.dis = GPPatchMcResDis(dis_nf, dis_n_res_blks, num_classes)
        if init == "kaiming":
            kaiming_init(self.gen)
            kaiming_init(self.dis)
        self.gen_test = copy.deepcopy(self.gen)
        _freeze(self.gen_test, True)
        self.size_multiple = 2 ** n_downs_content
        self.gan_w, self.r_w, self.fm_w, self.gp_w = gan_w, r_w, fm_w, gp_w
        self.num_classes = num_classes
        self.class_image_size = class_image_size
        self.max_shots = max_shots
        self.latent_dim = latent_dim

    # ---- training --------------------------------------------------------------------
    def optimizer_groups(self):
        return {"G": list(self.gen.parameters()), "D": list(self.dis.parameters())}

    def _pairs(self, batch):
        xa, la = batch["image"], torch.as_tensor(batch["label"], device=batch["image"].device)
        if "class_image" in batch:
            xb = batch["class_image"]
            lb = torch.as_tensor(batch["class_label"], device=xb.device)
        else:
            xb, lb = xa.roll(1, 0), la.roll(1, 0)
        bad = [int(v) for v in torch.cat([la, lb]) if not 0 <= int(v) < self.num_classes]
        if bad:
            raise ConfigError(f"funit: class label {bad[0]} out of range for num_classes={self.num_classes} "
                              f"(set model.num_classes to the number of class folders)")
        return xa, la.long(), xb, lb.long()

    def training_step(self, batch):
        xa, la, xb, lb = self._pairs(batch)
        gen, dis = self.gen, self.dis
        # D (the authors update D first): real class images with the gradient penalty ...
        xb_r = xb.detach().requires_grad_(self.gp_w > 0)
        resp_r, _ = dis(xb_r, lb)
        d_losses = {"D_real": self.gan_w * F.relu(1.0 - resp_r).mean()}
        if self.gp_w > 0:
            grad, = torch.autograd.grad(resp_r.mean(), xb_r, create_graph=True)
            d_losses["D_gp"] = self.gp_w * grad.pow(2).sum() / xb.size(0)
        # ... and translations made without gradient
        with torch.no_grad():
            xt = gen.decode(gen.enc_content(xa), gen.class_code(xb))
        resp_f, _ = dis(xt, lb)
        d_losses["D_fake"] = self.gan_w * F.relu(1.0 + resp_f).mean()
        acc = 0.5 * ((resp_r >= 0).float().mean() + (resp_f < 0).float().mean())
        yield Phase("D", d_losses, extra={"acc_D": float(acc)})
        del resp_r, resp_f, xt, d_losses

        # G against the updated D (its parameters get no gradient from G's losses)
        _freeze(dis, True)
        try:
            c_xa = gen.enc_content(xa)
            s_xa, s_xb = gen.class_code(xa), gen.class_code(xb)
            xt = gen.decode(c_xa, s_xb)  # translation
            xr = gen.decode(c_xa, s_xa)  # reconstruction
            resp_t, feat_t = dis(xt, lb)
            resp_r, feat_r = dis(xr, la)
            losses = {}
            if self.gan_w:
                losses["G_adv"] = self.gan_w * 0.5 * (-resp_t.mean() - resp_r.mean())
            if self.r_w:
                losses["G_rec"] = self.r_w * F.l1_loss(xr, xa)
            if self.fm_w:
                with torch.no_grad():
                    feat_b = dis(xb, lb)[1].mean((2, 3))
                    feat_a = dis(xa, la)[1].mean((2, 3))
                losses["G_fm"] = self.fm_w * (F.l1_loss(feat_r.mean((2, 3)), feat_a)
                                              + F.l1_loss(feat_t.mean((2, 3)), feat_b))
            acc = 0.5 * ((resp_t >= 0).float().mean() + (resp_r >= 0).float().mean())
            yield Phase("G", losses, extra={"acc_G": float(acc)})
        finally:
            _freeze(dis, False)

    # ---- inference --------------------------------------------------------------------
    def inference_options(self):
        return [Input("class_images", "images", required=True, size=self.class_image_size, min=1,
                      max=self.max_shots,
                      help="K images of the target class (their class codes are averaged)"),
                Input("class_code", "code", size=self.latent_dim, encoder=True, replaces="class_images",
                      help=f"the target class's code ({self.latent_dim} numbers, e.g. one written by "
                           "styleforge codes) instead of its images, or one image whose code is used")]

    def encode(self, name, x, direction=None):
        """``class_code`` of each image of ``x`` (N×3×s×s): N×latent_dim (``gen_test``)."""
        if name != "class_code":
            return super().encode(name, x)
        return self.class_codes(x)

    def class_codes(self, images: torch.Tensor, net: str = "gen_test") -> torch.Tensor:
        """K×3×s×s in [-1, 1] -> K×latent_dim class codes (one per image)."""
        return getattr(self, net).class_code(images)

    def decode_code(self, x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        """The content image(s) x (N×3×H×W) decoded with class code(s) ``code`` (1 or N × latent)."""
        g = self.gen_test
        return g.decode(g.enc_content(x), code)

    def translate(self, x, direction=None, class_images=None, class_code=None, **kw):
        self.check_direction(direction)
        if class_code is not None:
            return self.decode_code(x, class_code.to(x.dtype))
        if class_images is None:
            raise ConfigError("funit needs class_images: K images of the target class (or its class_code)")
        if class_images.dim() == 3:
            class_images = class_images.unsqueeze(0)
        code = self.class_codes(class_images).mean(0, keepdim=True)  # z_y, averaged over K shots
        return self.decode_code(x, code)

    @torch.no_grad()
    def visuals(self, batch):
        xa, _, xb, _ = self._pairs(batch)
        g = self.gen_test
        c = g.enc_content(xa)
        return {"content": xa, "class_image": xb, "translated": g.decode(c, g.class_code(xb)),
                "reconstructed": g.decode(c, g.class_code(xa))}


# ---- the authors' checkpoints ----------------------------------------------------------
def _gen_config(sd: dict) -> dict:
    """FewShotGen arguments read off a generator state dict (shapes of the official keys)."""
    try:
        nf = sd["enc_content.model.0.conv.weight"].shape[0]
        content_downs = sum(1 for k in sd if k.startswith("enc_content.model.") and k.endswith(".conv.weight")
                            and k.count(".") == 4)
        class_convs = sum(1 for k in sd if k.startswith("enc_class_model.model.") and k.endswith(".conv.weight"))
        n_res = len({k.split(".")[4] for k in sd if k.startswith(f"enc_content.model.{content_downs}.model.")})
        latent = sd[f"enc_class_model.model.{class_convs + 1}.weight"].shape[0]
        mlp_keys = sorted({int(k.split(".")[2]) for k in sd if k.startswith("mlp.model.")})
        nf_mlp = sd["mlp.model.0.fc.weight"].shape[0]
    except (KeyError, IndexError) as e:
        raise CheckpointError(f"not a FUNIT generator state dict (missing or odd key {e})") from None
    return dict(nf=nf, nf_mlp=nf_mlp, latent_dim=latent, n_mlp_blks=len(mlp_keys), n_res_blks=n_res,
                n_downs_content=content_downs - 1, n_downs_class=class_convs - 1)


def _clean(sd: dict) -> dict:
    """Their AdaIN running statistics (updated, never read) dropped; a DataParallel ``module.``
    prefix removed."""
    return drop_norm_buffers({k[len("module."):] if k.startswith("module.") else k: v for k, v in sd.items()})


@register_importer("funit", options={"num_classes": "classes of the checkpoint's discriminator (animal149: 119)",
                                   "class_image_size": "side of the class images the model was trained on"})
def import_funit(path, num_classes=119, class_image_size=128, **options) -> FUNIT:
    """``gen_XXXXXXXX.pt`` of NVlabs/FUNIT (``{'gen': ..., 'gen_test': ...}``; a bare generator
    state dict is read as both) -> a FUNIT model; its discriminator stays freshly initialised."""
    data = read_pth(path)
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a dict with 'gen' and 'gen_test', found {type(data).__name__}")
    if "gen" in data or "gen_test" in data:
        gen_sd = _clean(data.get("gen") or data["gen_test"])
        test_sd = _clean(data.get("gen_test") or data["gen"])
    elif any(k.startswith(("enc_content.", "module.enc_content.")) for k in data):
        gen_sd = test_sd = _clean(data)
    else:
        raise CheckpointError(f"{path}: expected 'gen'/'gen_test' generator state dicts, found keys "
                              f"{', '.join(sorted(map(str, data))[:5])}")
    cfg = _gen_config(test_sd)
    model = FUNIT(**cfg, num_classes=num_classes, class_image_size=class_image_size, init="default", **options)
    for name, sd in (("gen", gen_sd), ("gen_test", test_sd)):
        load_state_dict_strict(getattr(model, name), sd, f"{path}: '{name}'", "a FUNIT generator")
    return model


__all__ = ["FUNIT", "FewShotGen", "GPPatchMcResDis", "import_funit"]
