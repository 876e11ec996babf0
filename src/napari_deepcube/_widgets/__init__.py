"""Qt dock widgets of the napari plugin (private; napari loads them through ``napari.yaml``).

- :mod:`._segment`: the "Deep spectral segmentation" dock widget.
- :mod:`._spectrum_plot`: the "Cluster spectra" dock widget.

Every computation lives in :mod:`napari_deepcube.core`; these modules only
configure, launch and display.
"""
