"""Ground floor: what every other package may use and nothing here imports from above.

errors (one-line user errors), messages (engine text with a message id, translated by the UI), configs (one frozen
dataclass per step, a stable hash as its key), paths (the
data folder), limits (size bounds from the environment), checks (numeric settings), text (safe text and CSV),
files (atomic writes, checksums, eviction), logs, outputs (output paths checked before work), capabilities
(what this machine computes natively), stats (Wilson intervals, McNemar's exact test), uploads (the names of
uploaded zips), lesson (the tour's take-home HTML file).
"""
from ptm_core.base.errors import Cancelled, PTMError
from ptm_core.base.messages import M_, Message
from ptm_core.base.configs import (BackboneConfig, DatasetConfig, ExtractionConfig, FINETUNE_MODES, FinetuneConfig,
                                   KNNConfig, Keyed, PRECISIONS, ProbeConfig, ProjectionConfig, Source, describe_data,
                                   describe_map, describe_source, describe_weights, stable_hash)
from ptm_core.base.paths import data_dir, set_data_dir
from ptm_core.base.files import atomic_write_bytes, file_sha256, write_atomically
from ptm_core.base.lesson import Lesson, LessonFigure, LessonMetric, LessonSection, lesson_html
from ptm_core.base.stats import PairedTest, accuracy_interval, mcnemar_exact, paired_test, wilson_interval
from ptm_core.base.text import csv_safe_frame, printable
from ptm_core.base.uploads import Upload, data_name, list_uploads

__all__ = ["BackboneConfig", "Cancelled", "DatasetConfig", "ExtractionConfig", "FINETUNE_MODES", "FinetuneConfig",
           "KNNConfig", "Keyed", "Lesson", "LessonFigure", "LessonMetric", "LessonSection", "M_", "Message", "PRECISIONS", "PTMError", "PairedTest", "ProbeConfig",
           "ProjectionConfig", "Source", "Upload",
           "accuracy_interval", "atomic_write_bytes", "csv_safe_frame", "data_dir", "data_name", "describe_data",
           "describe_map", "describe_source", "describe_weights", "file_sha256", "lesson_html", "list_uploads",
           "mcnemar_exact",
           "paired_test", "printable",
           "set_data_dir", "stable_hash", "wilson_interval", "write_atomically"]
