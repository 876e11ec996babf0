"""Unsupervised segmentation of spectral datacubes by deep spectral clustering.

The package is importable without Qt or napari: the computation lives in
:mod:`napari_deepcube.core`, the napari adapters in private modules that napari
loads on demand through ``napari.yaml``.
"""

__version__ = "0.1.0"
