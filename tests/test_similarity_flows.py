"""CKA in the flows: the lab's layer x layer matrix (cached by the sweep's key, pooled features last), the Compare
job's backbone x backbone value, and per-stage CKA pretrained vs fine-tuned after a fine-tune."""
import numpy as np
import pytest

from ptm_core.base.configs import FinetuneConfig, ProjectionConfig, Source
from ptm_core.evals import layer_similarity
from ptm_core.evals.layer_similarity import finetune_stage_cka
from ptm_core.evals.layer_sweep import FINAL_NAME
from ptm_core.evals.similarity import cka
from ptm_core.finetune.finetuning import finetune
from ptm_core.flows.compare import CompareRequest, run_compare
from ptm_core.flows.lab import run_drift, run_layers
from ptm_core.runs.jobs import DONE, JobManager

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _run(work, wait_until):
    job = JobManager().submit("job", "job", work)
    assert wait_until(lambda: job.finished is not None, 180) and job.status == DONE, job.error
    return job


def test_layers_job_gives_the_sweep_and_a_layer_cka_matrix_read_back_from_cache(tiny, wait_until, monkeypatch):
    source = Source(tiny.data(), tiny.backbone(), tiny.extraction())
    result = _run(lambda ctx: run_layers(source, ctx), wait_until).result
    rows, matrix = result["rows"], result["cka"]
    assert matrix["names"] == [row["name"] for row in rows] and matrix["names"][-1] == FINAL_NAME
    values = np.asarray(matrix["values"])
    assert values.shape == (len(rows),) * 2 and np.allclose(np.diag(values), 1.0) and np.allclose(values, values.T)
    assert matrix["n"] == tiny.limit and matrix["method"] == "exact"
    assert np.all((values > -1e-9) & (values < 1 + 1e-9)) and values.min() < 0.99  # layers differ

    def no_compute(*args, **kwargs):
        raise AssertionError("the matrix should come from the cache")

    monkeypatch.setattr(layer_similarity, "layer_cka_matrix", no_compute)
    again = _run(lambda ctx: run_layers(source, ctx), wait_until).result["cka"]
    assert np.array_equal(np.asarray(again["values"]), values)


def test_compare_job_reports_linear_cka_on_the_shared_images(tiny, wait_until):
    request = CompareRequest(tiny.source(0), tiny.source(1), k=5)
    job = _run(lambda ctx: run_compare(request, ctx), wait_until)
    result = job.result
    assert result.cka.n == tiny.limit and result.cka.kernel == "linear" and result.cka.method == "exact"
    assert result.cka.cka == pytest.approx(cka(result.a.features, result.b.features).cka, abs=1e-12)
    assert 0 < result.cka.cka < 1 and job.metrics["linear_cka"] == result.cka.cka and job.metrics["cka_n"] == tiny.limit


def test_drift_job_gives_per_stage_cka_pretrained_vs_fine_tuned(tiny, wait_until):
    source = tiny.source(limit=120)
    config = FinetuneConfig(mode="full", epochs=1, batch_size=16, image_size=32, lr_backbone=0.05)
    checkpoint = finetune(source.dataset, source.backbone, config).checkpoint
    result = _run(lambda ctx: run_drift(source, checkpoint, 32, ProjectionConfig(method="pca"), ctx), wait_until).result
    rows = result["stage_cka"]
    assert rows == finetune_stage_cka(source.dataset, source.backbone, checkpoint, 32, source.extraction)  # cached
    assert [row["index"] for row in rows] == list(range(len(rows))) and len(rows) >= 3
    assert all(row["n"] == 120 and 0 < row["cka"] <= 1 + 1e-9 for row in rows)
    assert min(row["cka"] for row in rows) < 0.999  # fine-tuning changed something
    assert 0 < result["pooled_cka"] < 0.999
