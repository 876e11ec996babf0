"""Sample datacubes with ground truth: an MA-XRF painting and a MUSE-like nebula.

Both generators are seeded (same seed, same cube), vectorised (a few spectral
templates times per-pixel amplitude maps, never a loop over pixels) and keep
what is needed to compute the attainable segmentation, :func:`attainable_labels`:
each pixel assigned to the most likely noise-free class spectrum under the
generator's own noise model. That limit, not 1.0, is what a method's adjusted
Rand index should be compared with.

Only numpy and scipy are used, so the module imports on a headless server.
"""

from ._common import SyntheticCube
from .nebula import make_nebula
from .painting import make_painting
from .scoring import attainable_labels

__all__ = ["SyntheticCube", "attainable_labels", "make_nebula", "make_painting"]
