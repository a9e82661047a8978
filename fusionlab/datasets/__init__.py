"""The public fusion datasets: a registry of where to get them and how they are laid out
(:mod:`.catalog`), and download / unpack / verify (:mod:`.fetch`, used by
``fusionlab data``). Reading the pairs themselves is :mod:`fusionlab.data`.

Importing this package (and :mod:`.catalog`) does not import torch, so ``fusionlab data
list`` and ``info`` answer at once; :mod:`.fetch` imports the pair reader only to verify.
"""
from .catalog import DATASETS, DatasetInfo, data_home, get_dataset, resolve_data_arg, resolve_dataset

__all__ = ["DATASETS", "DatasetInfo", "data_home", "get_dataset", "resolve_data_arg", "resolve_dataset"]
