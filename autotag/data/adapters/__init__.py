"""Dataset adapters: one ``prepare_<format>`` per source format, each returning a validated manifest.

Every adapter returns a :mod:`pyarrow` table in the schema of :mod:`autotag.data.manifest`,
takes a ``split`` strategy from :mod:`autotag.data.splits`, derives stable track ids from
paths (:func:`~autotag.data.adapters.common.track_id_from_path`) and raises ``ValueError``
naming the file and line, row or entry of malformed input.
"""

from autotag.data.adapters.gtzan import prepare_gtzan
from autotag.data.adapters.jams import prepare_jams
from autotag.data.adapters.lab import prepare_lab, read_lab
from autotag.data.adapters.mtt import prepare_mtt
from autotag.data.adapters.pyjama import prepare_pyjama
from autotag.data.adapters.table import prepare_table

ADAPTERS = {
    "gtzan": prepare_gtzan,
    "mtt": prepare_mtt,
    "pyjama": prepare_pyjama,
    "lab": prepare_lab,
    "jams": prepare_jams,
    "table": prepare_table,
}
"""Adapter by format name, for configs (``dataset.format: gtzan``)."""

__all__ = ["ADAPTERS", "prepare_gtzan", "prepare_jams", "prepare_lab", "prepare_mtt", "prepare_pyjama",
           "prepare_table", "read_lab"]
