"""Data in: datasets from specs, user folders and zips ingested safely, images decoded safely.

The public entry points live here; the submodules are types (Dataset), registry (specs),
sources (the built-in datasets), fashion (Fashion-MNIST), tv (torchvision), ingest (allowed roots, zips, uploads),
folders (class-folder and labels-CSV layouts) and imaging (decoding).
"""
from ptm_core.data import sources as _sources  # noqa: F401  (registers the built-in datasets)
from ptm_core.data.folders import IMAGE_SUFFIXES
from ptm_core.data.ingest import allowed_roots, ensure_allowed, ingest_upload
from ptm_core.data.registry import DatasetEntry, list_datasets, load_dataset, parse_spec, stratified_subset
from ptm_core.data.tv import SOURCES as TV_SOURCES
from ptm_core.data.types import Dataset, LazyItems

__all__ = ["IMAGE_SUFFIXES", "TV_SOURCES", "Dataset", "DatasetEntry", "LazyItems", "allowed_roots", "ensure_allowed",
           "ingest_upload", "list_datasets", "load_dataset", "parse_spec", "stratified_subset"]
