"""Data: the embedded synthetic generator, paired-folder datasets and degradations."""
from .degrade import DEGRADATIONS, degrade, degrade_batch, degraded_items
from .paired import PairedFolder, find_pairs, resolve_layout
from .synthetic import SyntheticPairs, make_pair, write_synthetic_folder

__all__ = [
    "DEGRADATIONS", "degrade", "degrade_batch", "degraded_items", "PairedFolder", "find_pairs", "resolve_layout",
    "SyntheticPairs", "make_pair", "write_synthetic_folder",
]
