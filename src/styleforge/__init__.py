"""styleforge: train, apply, evaluate and ship image style-transfer and translation models."""
__version__ = "0.1.0"


def load(path, device=None):
    """Load a model directory; returns a :class:`styleforge.pipeline.Pipeline` ready to call."""
    from .pipeline import Pipeline

    return Pipeline.from_dir(path, device=device)
