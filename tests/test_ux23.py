"""Issue 23, items 5-8 in the engine: uploads by their own names, the 3-D t-SNE estimate and a bar that keeps moving,
cancelled fine-tunes that say so and keep their own settings, checkpoints named by what they hold."""
import json
import math
import os

import pytest

from ingest_helpers import make_zip, png_bytes
from ptm_core.base import DatasetConfig, FinetuneConfig, ProjectionConfig, Source, describe_data, list_uploads
from ptm_core.base.configs import BackboneConfig
from ptm_core.base.uploads import clean_name, data_name, upload_name
from ptm_core.data.ingest import ingest_upload
from ptm_core.flows import (LabRequest, checkpoint_filename, compare_frame, finetune_settings, lab_spec,
                            stopped_early_text)
from ptm_core.maps import estimate


def _zip_bytes(tmp_path, name="z.zip", classes=("a", "b")) -> bytes:
    entries = {f"{c}/{c}{i}.png": png_bytes(20 * i + 10 + k) for k, c in enumerate(classes) for i in range(3)}
    return make_zip(tmp_path / name, entries).read_bytes()


def test_an_upload_is_named_by_its_file_name_everywhere(tmp_path):
    spec = ingest_upload(_zip_bytes(tmp_path), "shapes3.zip")
    assert spec.startswith("zip:") and "uploads" in spec and spec.endswith(".zip")
    assert data_name(spec) == "shapes3.zip"
    assert describe_data(DatasetConfig(spec, limit=4)) == "shapes3.zip (limit 4)"
    source = Source(DatasetConfig(spec))
    assert "shapes3.zip" in source.describe() and "uploads" not in source.describe()
    # The sidecar is a dot file beside the zip, so the uploads' LRU cap (which skips dot files) never takes it alone.
    sidecars = [p.name for p in os.scandir(os.path.dirname(spec[4:])) if p.name.endswith(".json")]
    assert sidecars and all(n.startswith(".") for n in sidecars)


def test_uploads_are_listed_newest_first_by_name_and_the_same_bytes_are_stored_once(tmp_path):
    first = ingest_upload(_zip_bytes(tmp_path, "a.zip"), "cats.zip")
    os.utime(first[4:], (1, 1))  # older
    second = ingest_upload(_zip_bytes(tmp_path, "b.zip", ("x", "y", "z")), "C:\\Users\\me\\dogs.zip")
    uploads = list_uploads()
    assert [u.name for u in uploads] == ["dogs.zip", "cats.zip"]  # a browser's folders are not part of the name
    assert [u.spec for u in uploads] == [second, first]
    again = ingest_upload(_zip_bytes(tmp_path, "a.zip"), "cats-again.zip")
    assert again == first and len(list_uploads()) == 2 and data_name(first) == "cats-again.zip"


def test_other_specs_and_broken_sidecars_keep_their_spec(tmp_path):
    own = make_zip(tmp_path / "mine.zip", {"a/1.png": png_bytes()})
    assert data_name(f"zip:{own}") == f"zip:{own}" and data_name("mnist5k") == "mnist5k" and data_name("zip:") == "zip:"
    spec = ingest_upload(_zip_bytes(tmp_path), "ok.zip")
    sidecar = next(p for p in os.scandir(os.path.dirname(spec[4:])) if p.name.endswith(".json"))
    with open(sidecar.path, "w") as f:
        f.write("{not json")
    assert upload_name(spec[4:]) is None and data_name(spec) == spec
    with open(sidecar.path, "w") as f:
        json.dump(["a list"], f)
    assert data_name(spec) == spec
    assert clean_name("a\x00b\x1b.zip") == "ab.zip" and clean_name("/") == "upload.zip"
    assert len(clean_name("x" * 500)) == 120


def test_a_checkpoint_downloads_under_model_data_mode_and_size(tmp_path):
    source = Source(DatasetConfig("digits", limit=300), BackboneConfig("tf_efficientnet_lite0"))
    config = FinetuneConfig(mode="lp-ft", image_size=32)
    assert checkpoint_filename(source, config) == "tf_efficientnet_lite0-digits-lpft-32px.safetensors"
    spec = ingest_upload(_zip_bytes(tmp_path), "my pets/../ (2).zip")
    name = checkpoint_filename(Source(DatasetConfig(spec)), FinetuneConfig(mode="last-n", image_size=64))
    assert name == "tf_efficientnet_lite0-2-lastn-64px.safetensors"
    odd = checkpoint_filename(Source(DatasetConfig("shapes:n=300,classes=4")), config)
    assert "/" not in odd and ":" not in odd and "=" not in odd and odd.endswith("-lpft-32px.safetensors")


def test_a_fine_tune_job_records_its_own_settings_and_size():
    source = Source(DatasetConfig("digits"))  # the sidebar's extraction size: the default, 128 px in the app
    request = LabRequest(source, finetune=FinetuneConfig(epochs=6, lr_head=3e-3, batch_size=16, image_size=32))
    config = lab_spec("finetune", request).config
    assert config["extraction"]["image_size"] == 32 and config["source_key"] == source.key()
    assert finetune_settings(config) == {"mode": "lp-ft", "epochs": 6, "lr_head": 3e-3, "lr_backbone": 1e-4,
                                         "batch_size": 16, "image_size": 32}
    probes = lab_spec("probes", request).config
    assert "finetune" not in probes and finetune_settings(probes) == {}


def test_a_cancelled_fine_tune_is_flagged_on_its_compare_bar():
    def run(run_id, **metrics):
        return {"id": run_id, "config": {}, "metrics": {"method": "finetune", "mode": "lp-ft", "test_accuracy": 0.9,
                                                         "method_seconds": 5.0, "image_size": 32, **metrics}}
    stopped = run("r1", stopped_early=True, stopped_epoch=2, epochs=6)
    assert stopped_early_text(stopped["metrics"]) == "stopped early at epoch 2 of 6"
    assert stopped_early_text({"stopped_early": True}) == "stopped early"  # recorded before the epochs were kept
    assert stopped_early_text({"stopped_early": False, "epochs": 6}) == ""
    frame = compare_frame([stopped])
    assert frame["label"][0].endswith("stopped early at epoch 2 of 6")
    assert "stopped early" not in compare_frame([run("r2", stopped_early=False, epochs=6)])["label"][0]


def test_3d_tsne_has_its_own_cost_and_dearer_than_2d():
    two, three = (ProjectionConfig(method="tsne", n_components=d) for d in (2, 3))
    assert estimate.TSNE_3D_SECONDS_PER_POINT_LOG > 2 * estimate.TSNE_SECONDS_PER_POINT_LOG
    for n in (1000, 5000):
        extra = estimate.estimate_seconds(n, 1280, three) - estimate.estimate_seconds(n, 1280, two)
        per_point = estimate.TSNE_3D_SECONDS_PER_POINT_LOG - estimate.TSNE_SECONDS_PER_POINT_LOG
        assert extra == pytest.approx(per_point * n * math.log2(n))
    # UMAP and PCA in 3-D keep their estimates
    for method in ("umap", "pca"):
        assert estimate.estimate_seconds(2000, 64, ProjectionConfig(method=method, n_components=3), False) == \
            estimate.estimate_seconds(2000, 64, ProjectionConfig(method=method), False)


def test_progress_by_estimate_keeps_moving_past_the_estimate():
    e = 30.0
    times = [0, 10, 24, 24.001, 30, 60, 90, 180, 600]
    shares = [estimate.estimate_fraction(t, e) for t in times]
    assert shares[0] == 0 and shares[1] == pytest.approx(1 / 3)
    assert all(b > a for a, b in zip(shares, shares[1:]))  # never stops (issue 23: 60 s at 90 %)
    assert shares[3] == pytest.approx(0.8, abs=1e-4)  # no jump where the linear part ends
    assert shares[-1] < 1.0
    assert estimate.estimate_fraction(90, 30) - estimate.estimate_fraction(60, 30) > 0.02  # visibly, at 3x too
