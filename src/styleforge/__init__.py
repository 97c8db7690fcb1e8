"""styleforge: train, apply, evaluate and ship image style-transfer and translation models."""
__version__ = "0.1.0"


def load(path, device=None, runtime: str = "auto"):
    """A :class:`styleforge.pipeline.Pipeline` ready to call: a model directory (or a run folder),
    a model's name (``cyclegan/horse2zebra`` after ``styleforge pull``; ``hf:org/name`` from the
    Hugging Face Hub), or a file made by ``styleforge export`` (``runtime``: auto, torch, onnx,
    torchscript)."""
    from .pipeline import load as _load

    return _load(path, device=device, runtime=runtime)
