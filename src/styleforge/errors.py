"""Exceptions with messages meant for people.

Every error the library raises on bad input derives from :class:`StyleforgeError`; the CLI
prints ``error: <message>`` on one line and exits with :attr:`exit_code`.
"""


class StyleforgeError(Exception):
    """Base class: the message names the file/option, what was expected and what was found."""

    exit_code = 2


class ConfigError(StyleforgeError):
    """Unknown preset, unknown or malformed option, value of the wrong type."""


class ImageTooSmallError(ConfigError):
    """An image smaller than a network can take (pooling or padding would fail on it); the
    pipeline adds the name of the input it came from."""


class DataError(StyleforgeError):
    """Missing or empty data folder, a layout that does not match the dataset kind."""


class ImageLoadError(StyleforgeError):
    """A file that is not a readable image (missing, truncated, corrupt, not an image)."""

    def __init__(self, path, reason, what: str = "image", verb: str = "read"):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot {verb} {what} {self.path}: {reason}")


class CheckpointError(StyleforgeError):
    """Missing, corrupt or wrong-kind model directory or weight file."""


class DownloadError(StyleforgeError):
    """A download that failed: an HTTP error, a dropped connection, a short body, a checksum
    that is not the published one. The message says whether the next pull resumes."""


class TrainingError(StyleforgeError):
    """Training stopped: a NaN/inf loss, or an interrupted run that cannot resume."""

    exit_code = 3


class EvaluationError(StyleforgeError):
    """A metric that cannot be computed: no feature network, no logits for IS, missing LPIPS
    weights, too few images, sets of mismatched feature networks."""


class NoFaceError(DataError):
    """Face preprocessing found no face in an image (``styleforge.faces``)."""

    def __init__(self, source, detail: str = ""):
        self.source = str(source)
        super().__init__(f"no face found in {self.source}" + (f" ({detail})" if detail else ""))


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message for a one-line error (its type name when the
    message is empty, as for an empty file's ``EOFError`` or ``IndexError``). A TorchScript
    module's error (a bundled feature network's) starts with "The following operation failed in
    the TorchScript interpreter." and two tracebacks; its reason is the last "RuntimeError: " line."""
    lines = str(exc).strip().splitlines()
    if lines and lines[0].startswith("The following operation failed in the TorchScript interpreter"):
        reasons = [ln.removeprefix("RuntimeError: ") for ln in lines if ln.startswith("RuntimeError: ")]
        lines = reasons[-1:] or lines
    return lines[0][:limit] if lines and lines[0].strip() else type(exc).__name__
