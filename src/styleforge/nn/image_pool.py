"""History of generated images (Shrivastava et al. 2017), as CycleGAN uses it.

Until the pool holds ``size`` images each new image is stored and returned. After that, each
image is, with probability 1/2, swapped with a random stored one (the stored one is returned and
replaced), or returned as it is. The pool draws from its own ``torch.Generator`` so that its
state can be saved and an interrupted run resumes exactly.
"""
from __future__ import annotations

import torch

from ..utils.seed import seeded_generator


class ImagePool:
    def __init__(self, size: int, seed: int = 0):
        self.size = size
        self.images: list[torch.Tensor] = []
        self.gen = seeded_generator(seed)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for img in images.detach():
            img = img.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(img.clone())
                out.append(img)
            elif torch.rand((), generator=self.gen).item() > 0.5:
                i = int(torch.randint(0, self.size, (), generator=self.gen))
                out.append(self.images[i].clone())
                self.images[i] = img.clone()
            else:
                out.append(img)
        return torch.cat(out, 0)

    def state_dict(self) -> dict:
        return {"images": [t.cpu() for t in self.images], "rng": self.gen.get_state()}

    def load_state_dict(self, state: dict, device=None) -> None:
        self.images = [t.to(device) if device else t for t in state["images"]]
        self.gen.set_state(state["rng"])
