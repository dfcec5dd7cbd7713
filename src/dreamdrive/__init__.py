"""dreamdrive: a driving world model as a synthetic-data generator for camera perception."""

from dreamdrive.core.errors import DreamdriveError

__version__ = "0.1.0"
__all__ = ["DreamdriveError", "__version__"]
