"""The "your images" step's engine (issue 24, item 1): a few classes of real photos (scikit-image's, cropped and
mirrored) scored by cross-validated probes on three kinds of features, the bad inputs it refuses in one line, "Try
it"'s probabilities, and that nothing of it reaches the disk."""

import numpy as np
import pytest
from PIL import Image

from own_photos import class_bytes, class_photos, jpeg, zip_bytes
from ptm_core.base.configs import BackboneConfig
from ptm_core.base.errors import PTMError
from ptm_core.base.stats import accuracy_interval
from ptm_core.data.photos import ARRIVAL_SIDE, photo_from_bytes, photos_from_zip
from ptm_core.evals.few_shot import LOO_MAX, cross_validated, folds
from ptm_core.flows import own_images
from ptm_core.flows.own_images import KINDS, check_classes, classify, learn, learn_from_bytes


@pytest.fixture(scope="module")
def photos():
    return class_photos(10, side=64)


@pytest.fixture()
def backbone(tiny, one_torch_thread):
    """A tiny timm model stands in for the bundled one: the same path, a fraction of the time."""
    return BackboneConfig(tiny.model, "random", 0)


def _files(root) -> set:
    return {p for p in root.rglob("*")} if root.exists() else set()


def test_three_kinds_scored_out_of_fold_with_intervals_tests_and_maps(photos, backbone, tmp_path):
    before = _files(tmp_path)
    result = learn(list(photos.items()), seed=0, backbone=backbone)
    new_photo = photos["cat"][0].transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    tried = classify(result, new_photo)
    # Privacy: nothing under the data folder (PTM_DATA_DIR is tmp_path/ptm-data) or anywhere else in tmp_path.
    assert _files(tmp_path) == before

    assert result.class_names == ["cat", "coffee", "rocket"]
    assert [row.kind for row in result.rows] == list(KINDS)
    for row in result.rows:
        assert row.n_test == row.n == 30 and str(row.scheme) == "leave-one-out"
        assert row.predictions.shape == (30,) and row.probabilities.shape == (30, 3)
        assert np.allclose(row.probabilities.sum(axis=1), 1)
        assert row.accuracy == pytest.approx(np.mean(row.predictions == result.labels))
        assert row.ci95 == accuracy_interval(row.accuracy, 30) and row.ci95[0] <= row.accuracy <= row.ci95[1]
        assert row.coords.shape == (30, 2)
    assert str(result.row("pixels").produced_by) == "32×32 grey pixels of your photos"
    assert set(result.tests) == {"random", "pixels"}
    for kind, test in result.tests.items():  # pretrained is a, on the same 30 photos
        assert test.n_test == 30
        assert test.a_accuracy == pytest.approx(result.row("pretrained").accuracy)
        assert test.b_accuracy == pytest.approx(result.row(kind).accuracy)
    # The pixels of three different pictures tell them apart (each class is crops of one picture).
    assert result.row("pixels").accuracy >= 0.8
    assert set(tried) == set(KINDS)
    for probabilities in tried.values():
        assert list(probabilities) == result.class_names and sum(probabilities.values()) == pytest.approx(1)
        assert all(0 <= p <= 1 for p in probabilities.values())
    assert max(tried["pixels"], key=tried["pixels"].get) == "cat"


def test_every_image_is_scored_by_a_probe_that_never_saw_it():
    # Constant features: a probe can only predict the majority of what it was trained on. Leave one of two balanced
    # classes out and the other class is the majority, so out-of-fold accuracy is 0 (in-sample it would be 1/2).
    labels = np.repeat([0, 1], 5)
    score = cross_validated(np.zeros((10, 3)), labels)
    assert score.accuracy == 0.0 and str(score.scheme) == "leave-one-out"
    # Features equal to the label: every held-out image is right.
    assert cross_validated(np.eye(2)[labels] + 0.01 * np.arange(10)[:, None], labels).accuracy == 1.0


def test_leave_one_out_for_few_images_stratified_folds_for_more():
    assert str(folds(np.repeat([0, 1], LOO_MAX // 2))[1]) == "leave-one-out"
    splitter, scheme = folds(np.repeat([0, 1, 2], 30), seed=3)
    assert str(scheme) == "stratified 5-fold" and splitter.random_state == 3


@pytest.mark.parametrize("classes, words", [
    ([("cat", 10)], "at least 2 classes; there is 1"),
    ([(f"c{i}", 10) for i in range(6)], "At most 5 classes; there are 6"),
    ([("cat", 10), ("dog", 2)], "“dog” has 2 of the 5 photos each class needs: add 3 more."),
    ([("cat", 10), ("dog", 4)], "add 1 more"),
    ([("cat", 10), ("Cat ", 10)], "Classes 1 and 2 are both named “Cat”"),
    ([("cat", 10), ("  ", 10)], "Class 2 has no name"),
    ([("cat", 10), ("dog", 51)], "over the 50 a class keeps: remove 1"),
])
def test_bad_classes_are_refused_in_one_line(classes, words):
    with pytest.raises(PTMError) as caught:
        check_classes(classes)
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_learn_checks_the_classes_before_any_work(photos, monkeypatch):
    monkeypatch.setattr(own_images, "kind_features", lambda *a, **k: pytest.fail("features computed"))
    with pytest.raises(PTMError, match="add 3 more"):
        learn([("cat", photos["cat"]), ("coffee", photos["coffee"][:2])])


def test_photos_arrive_checked_and_shrunk(monkeypatch):
    with pytest.raises(PTMError) as caught:
        photo_from_bytes(b"not an image at all", "notes.txt")
    assert str(caught.value).startswith("notes.txt is not a usable image") and "\n" not in str(caught.value)
    big = photo_from_bytes(jpeg(Image.new("RGB", (2000, 1200), (200, 10, 10))), "big.jpg")
    assert max(big.size) == ARRIVAL_SIDE and big.size[0] / big.size[1] == pytest.approx(2000 / 1200, rel=0.01)
    assert big.mode == "RGB"
    monkeypatch.setenv("PTM_MAX_IMAGE_PIXELS", str(1000 * 1000))  # a huge photo: bounded like every other image
    with pytest.raises(PTMError, match="big.jpg is not a usable image: too many pixels"):
        photo_from_bytes(jpeg(Image.new("RGB", (2000, 1200))), "big.jpg")
    monkeypatch.setenv("PTM_MAX_FILE_BYTES", "100")
    with pytest.raises(PTMError, match="too large"):
        photo_from_bytes(jpeg(Image.new("RGB", (64, 64))), "small.jpg")


def test_a_zip_of_photos_is_read_in_memory_with_the_upload_checks():
    photo = jpeg(Image.new("RGB", (40, 30), (0, 90, 200)))
    by_class = photos_from_zip(zip_bytes({"set/cats/a.jpg": photo, "set/cats/b.jpg": photo,
                                          "set/dogs/c.jpg": photo, "set/readme.txt": b"hello",
                                          "__MACOSX/._a.jpg": b"x", "set/dogs/bad.png": b"??"}),
                               "set.zip")
    assert {k: len(v) for k, v in by_class.by_folder.items()} == {"cats": 2, "dogs": 1}
    assert by_class.count == 3 and len(by_class.skipped) == 2  # the text file and the broken png, each with why
    assert any("readme.txt: not an image file" in s for s in by_class.skipped)
    assert any(s.startswith("bad.png is not a usable image") for s in by_class.skipped)
    one_class = photos_from_zip(zip_bytes({"holiday/a.jpg": photo, "holiday/b.jpg": photo}), "holiday.zip")
    assert list(one_class.by_folder) == [None] and one_class.count == 2  # one folder: the class it was added to
    capped = photos_from_zip(zip_bytes({f"p{i}.jpg": photo for i in range(5)}), "many.zip", max_photos=3)
    assert capped.count == 3 and capped.skipped == [f"p{i}.jpg: over the 3 photos read from one zip" for i in (3, 4)]
    with pytest.raises(PTMError, match="climbs out"):
        photos_from_zip(zip_bytes({"../evil.jpg": photo}), "evil.zip")
    with pytest.raises(PTMError, match="not a readable zip"):
        photos_from_zip(b"PK\x03\x04 but no zip", "broken.zip")


@pytest.mark.slow
def test_the_bundled_backbone_from_bytes_to_three_numbers(tmp_path):
    """The page's path end to end with the default backbone (the best bundled one): nothing written to disk."""
    before = _files(tmp_path)
    result = learn_from_bytes(list(class_bytes(10, side=320).items()))
    assert _files(tmp_path) == before
    assert result.backbone == own_images.BACKBONE
    assert "best ImageNet top-1" in str(result.row("pretrained").produced_by)
    assert result.row("pretrained").accuracy >= 0.9  # three different pictures, ImageNet features
