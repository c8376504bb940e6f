"""Fine-tuning a backbone on the probes' split (full, last-n, LP-FT, scratch): the loop, its precision, its
progress, and checkpoints that survive a cancel.
"""
from ptm_core.finetune.finetuning import FinetuneResult, finetune, finetuned_features, load_finetuned
from ptm_core.finetune.training import training_precision

__all__ = ["FinetuneResult", "finetune", "finetuned_features", "load_finetuned", "training_precision"]
