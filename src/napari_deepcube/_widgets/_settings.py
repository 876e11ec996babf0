"""The segmentation settings form (magicgui), turned into plain settings values.

Every default, range and choice list comes from
:class:`~napari_deepcube.core.config.SegmentConfig`: :meth:`SettingsForm.values`
gives a dict that :func:`~napari_deepcube._widgets._jobs.make_config` validates
into a ``SegmentConfig``.
"""

from __future__ import annotations

from typing import Any

from magicgui.widgets import CheckBox, ComboBox, LineEdit, SpinBox
from qtpy.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QWidget

from ..core.config import SegmentConfig, settings

#: The one source of every default shown in the form.
_DEFAULTS = SegmentConfig()

#: The form's words for each value of ``SegmentConfig.rest_frame``.
_FRAMES: dict[str, bool | None] = {"auto": None, "at rest": True, "observed": False}


def _frame_word(rest_frame: bool | None) -> str:
    """The form's word for a ``rest_frame`` value (any truth value, or None)."""
    wanted = None if rest_frame is None else bool(rest_frame)
    return next(word for word, value in _FRAMES.items() if value is wanted)


#: What the user calls each kind of data (the form's choices, the widget's read-outs).
KIND_NAMES = {"counts": "photon counts", "flux": "line fluxes", "reflectance": "reflectance"}


def _spin(
    name: str, label: str, *, top: int | None = None, value: int | None = None, **options: Any
) -> SpinBox:
    """A SpinBox for the integer setting ``name``: its default, its range (capped at ``top``)."""
    setting = settings()[name]
    high = setting.high if top is None else min(setting.high or top, top)
    return SpinBox(
        label=label,
        value=setting.default if value is None else value,
        min=int(setting.low or 0),
        max=int(high if high is not None else 2**31 - 1),
        **options,
    )


class SettingsForm:
    """Model, training and clustering settings of a run.

    The magicgui widgets sit two to a row in a grid, so that the whole form
    fits a laptop screen beside the results.

    Attributes
    ----------
    widget
        The QWidget holding the form.
    """

    def __init__(self) -> None:
        self.model = ComboBox(
            label="Model", choices=[("AE", "ae"), ("VAE", "vae")], value=_DEFAULTS.model,
            tooltip="AE: plain autoencoder. VAE: MMD-VAE, latents pulled towards N(0, I)",
        )
        self.preset = ComboBox(
            label="Preset", choices=[("noise-aware", "default"), ("paper", "paper")],
            value=_DEFAULTS.preset,
            tooltip="paper: the reference method of Bombini et al. (log1p/max, MSE, SELU MLP, VAE)",
        )
        self.latent_dim = _spin(
            "latent_dim", "Latent size", tooltip="Dimensions of the embedding each spectrum is reduced to"
        )
        self.epochs = _spin(
            "epochs", "Epochs", top=1000,
            tooltip="Most passes over the pixel sample (training stops early when it stalls)",
        )
        self.k_mode = ComboBox(
            label="Clusters", choices=[("k from", "auto"), ("fixed k", "fixed")], value="auto",
            tooltip="k from: choose k in the range by silhouette and likelihood; fixed k: as given",
        )
        self.k = _spin("k", "k", top=255, value=6, tooltip="Number of clusters")
        self.k_min = _spin("k_min", "k from", top=255, tooltip="Smallest k tried")
        self.k_max = _spin("k_max", "k to", top=255, tooltip="Largest k tried")
        self.n_train = _spin(
            "n_train", "Pixel sample", top=2_000_000, step=1000,
            tooltip="Pixels drawn at random to train on (all pixels when fewer)",
        )
        self.seed = _spin(
            "seed", "Seed", top=2**31 - 1, tooltip="Same cube, settings and seed give the same clusters"
        )
        self.kind = ComboBox(
            label="Data",
            choices=[("detect", "auto"), *((name, kind) for kind, name in KIND_NAMES.items())],
            value=_DEFAULTS.kind,
            tooltip=(
                "photon counts (XRF, EDS): Poisson noise; line fluxes (MUSE): continuum and sky "
                "residuals removed; reflectance (hyperspectral): continuum kept. detect: from the data"
            ),
        )
        self.device = ComboBox(
            label="Device", choices=list(settings()["device"].choices), value=_DEFAULTS.device,
            tooltip="auto: the GPU when there is one",
        )
        self.spectral_range = LineEdit(
            label="Range", value=_DEFAULTS.spectral_range,
            tooltip=(
                "Learn only from these spectral ranges, in the cube's unit: START:END[,START:END]. "
                "Drag across the Cluster spectra plot to choose one; empty: every channel. "
                "The cluster spectra are still shown whole"
            ),
        )
        self.spectral_range.native.setPlaceholderText("all channels")
        self.latent_layers = CheckBox(
            text="latent layers", value=False,
            tooltip="One image layer per latent dimension (hidden at first)",
        )
        self.variance = CheckBox(
            text="file's variances", value=_DEFAULTS.variance,
            tooltip=(
                "Divide line fluxes by each pixel's own noise, from the per-voxel variances the "
                "file keeps beside the cube (a FITS STAT extension), when it has them; off: by "
                "the noise estimated per channel from neighbouring pixels"
            ),
        )
        self.rest_frame = ComboBox(
            label="Frame", choices=list(_FRAMES), value=_frame_word(_DEFAULTS.rest_frame),
            tooltip=(
                "at rest: move every pixel's spectrum to one rest frame first, measuring each "
                "pixel's line-of-sight velocity against the cube's own lines, so that a rotating "
                "galaxy's gas is clustered by its lines, not its velocity (emission lines on a "
                "wavelength axis); the velocities are shown as a layer. auto: at rest where a "
                "sample's velocities spread over more than one feature bin. observed: as read"
            ),
        )
        self._to_label = QLabel("to")
        k_range = QWidget()
        k_row = QHBoxLayout(k_range)
        k_row.setContentsMargins(0, 0, 0, 0)
        for part in (self.k_min.native, self._to_label, self.k_max.native, self.k.native):
            k_row.addWidget(part)
        rows: list[list[tuple[str, QWidget]]] = [
            [("Model", self.model.native), ("Preset", self.preset.native)],
            [("Latent size", self.latent_dim.native), ("Epochs", self.epochs.native)],
            [("Clusters", self.k_mode.native), ("", k_range)],
            [("Pixel sample", self.n_train.native), ("Seed", self.seed.native)],
            [("Data", self.kind.native), ("Device", self.device.native)],
            [("Range", self.spectral_range.native), ("", self.latent_layers.native)],
            [("", self.variance.native), ("Frame", self.rest_frame.native)],
        ]
        self.widget = QWidget()
        grid = QGridLayout(self.widget)
        grid.setContentsMargins(0, 0, 0, 0)
        for row, cells in enumerate(rows):
            for column, (text, field) in enumerate(cells):
                if text:
                    grid.addWidget(QLabel(text), row, 2 * column)
                    grid.addWidget(field, row, 2 * column + 1)
                else:  # no label: the field takes the label's cell too
                    grid.addWidget(field, row, 2 * column, 1, 2)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)
        self.k_mode.changed.connect(self._show_k_widgets)
        self.preset.changed.connect(self._apply_preset)
        self._show_k_widgets()

    def _show_k_widgets(self, *args: Any) -> None:
        fixed = self.k_mode.value == "fixed"
        self.k.visible = fixed
        self.k_min.visible = not fixed
        self.k_max.visible = not fixed
        self._to_label.setVisible(not fixed)

    def _apply_preset(self, preset: str) -> None:
        # The reference method is a VAE with a 3-D latent space; the user may still change them.
        chosen = SegmentConfig.paper() if preset == "paper" else _DEFAULTS
        self.model.value = chosen.model
        self.latent_dim.value = chosen.latent_dim

    def values(self) -> dict[str, Any]:
        """The settings as ``SegmentConfig`` keyword arguments plus ``preset``."""
        # The preview cadence is the config's, as for `deepcube segment`: the same work.
        fixed = self.k_mode.value == "fixed"
        return {
            "preset": self.preset.value,
            "model": self.model.value,
            "latent_dim": int(self.latent_dim.value),
            "epochs": int(self.epochs.value),
            "k": int(self.k.value) if fixed else None,
            "k_min": min(int(self.k_min.value), int(self.k_max.value)),
            "k_max": max(int(self.k_min.value), int(self.k_max.value)),
            "n_train": int(self.n_train.value),
            "seed": int(self.seed.value),
            "device": self.device.value,
            "kind": self.kind.value,
            "spectral_range": self.spectral_range.value.strip(),
            "variance": bool(self.variance.value),
            "rest_frame": _FRAMES[self.rest_frame.value],
        }

    def set_values(self, **values: Any) -> None:
        """Set some settings by name (``k=None`` switches to an automatic k)."""
        if "k" in values:
            k = values.pop("k")
            self.k_mode.value = "auto" if k is None else "fixed"
            if k is not None:
                self.k.value = k
        if "rest_frame" in values:
            values["rest_frame"] = _frame_word(values["rest_frame"])
        for name, value in values.items():
            getattr(self, name).value = value

    @property
    def enabled(self) -> bool:
        """Whether the form can be edited."""
        return self.widget.isEnabled()

    @enabled.setter
    def enabled(self, value: bool) -> None:
        self.widget.setEnabled(value)
