"""Any labels, colours and metadata given to the label-map writer: a faithful file or one InputError."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from napari_deepcube.core.errors import InputError
from napari_deepcube.core.io import read_labels_tiff, write_labels_tiff
from napari_deepcube.core.io.outputs import TEMPORARY_SUFFIX

LABEL_DTYPES = st.sampled_from([np.uint8, np.uint16, np.int8, np.int32, np.int64, np.float32, bool])
# Drawn as int64 and cast, so that every dtype sees wrapped, negative and oversized values.
label_arrays = st.builds(
    lambda values, dtype: values.astype(dtype),
    hnp.arrays(
        np.int64,
        hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6),
        elements=st.integers(-3, 70000) | st.integers(0, 5),
    ),
    LABEL_DTYPES,
)
colour_arrays = st.none() | hnp.arrays(
    st.sampled_from([np.float64, np.int32]),
    hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=6),
    elements=st.integers(-5, 300),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=6,
)
metadata = st.none() | st.dictionaries(st.text(min_size=1, max_size=6), json_values, max_size=4)


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(labels=label_arrays, colors=colour_arrays, record=metadata)
def test_the_label_writer_writes_what_it_was_given_or_refuses(tmp_path_factory, labels, colors, record):
    folder = tmp_path_factory.mktemp("labels")
    path = folder / "labels.tif"
    try:
        write_labels_tiff(path, labels, colors=colors, metadata=record)
    except InputError as error:
        assert "\n" not in str(error)
        assert not path.exists()
    else:
        back, stored = read_labels_tiff(path)
        np.testing.assert_array_equal(back, labels)
        for key, value in (record or {}).items():
            if key != "colors":
                assert stored[key] == value
    assert not [p for p in folder.iterdir() if p.name.endswith(TEMPORARY_SUFFIX)]
