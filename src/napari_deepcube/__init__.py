"""Unsupervised segmentation of spectral datacubes by deep spectral clustering.

The package is importable without Qt or napari: the computation lives in
:mod:`napari_deepcube.core`, the napari adapters in private modules that napari
loads on demand through ``napari.yaml``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("napari-deepcube")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0.0.0+unknown"
