"""Graph -> Graph passes, each a pure function."""
from snnc.passes.fold import fold_constants
from snnc.passes.schedule import schedule

__all__ = ["fold_constants", "schedule"]
