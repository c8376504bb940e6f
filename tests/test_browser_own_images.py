"""Real browser: the "your images" step on the explorer (issue 24, item 1). Three small classes of real photos
(scikit-image's, cropped and mirrored: 10 a class) go in through the file uploader; a class with 2 photos is refused
with how many more it needs; Learn gives the three accuracies with their 95 % intervals and McNemar's sentences;
a new photo is classified by each of the three."""
import re

import pytest

from browser_support import screenshot, sync_api
from own_photos import class_bytes, crops, jpeg, picture

pytestmark = [pytest.mark.browser, pytest.mark.slow]
expect = sync_api.expect


def _files(photos):
    return [{"name": name, "mimeType": "image/jpeg", "buffer": data} for data, name in photos]


def _metric(page, label: str) -> tuple[str, str]:
    metric = page.get_by_test_id("stMetric").filter(has=page.get_by_test_id("stMetricLabel").get_by_text(label, exact=True))
    metric.first.wait_for(timeout=120_000)
    return (metric.first.get_by_test_id("stMetricValue").inner_text(),
            metric.first.get_by_test_id("stMetricDelta").inner_text())


def _upload(page, number: int, photos) -> None:
    """Photos into class `number`'s uploader (1-based); the card then counts them."""
    uploader = page.get_by_test_id("stFileUploader").filter(has_text="Photos or a zip of them").nth(number - 1)
    uploader.locator("input[type=file]").set_input_files(_files(photos))


def test_own_photos_learn_three_numbers_and_classify_a_new_one(page, server):
    photos = class_bytes(10, side=256)
    page.goto(f"{server}/explore")
    page.get_by_text("Your own photos: pixels vs random init vs pretrained").click()
    page.get_by_text("they are not saved on the server").wait_for(timeout=60_000)
    page.get_by_role("button", name="Add a class").click()
    page.get_by_label("Class 3").wait_for(timeout=30_000)
    for number, name in enumerate(photos, 1):
        page.get_by_label(f"Class {number}").fill(name)
        page.get_by_label(f"Class {number}").press("Enter")
    full = page.get_by_text("10 photos", exact=True)
    for number, name in enumerate(photos, 1):  # each upload once the page has counted the one before
        _upload(page, number, photos[name][:2] if name == "rocket" else photos[name])
        if name != "rocket":
            expect(full).to_have_count(number, timeout=60_000)
    page.get_by_text("2 photos · add 3 more").wait_for(timeout=60_000)

    page.get_by_role("button", name="Learn").click()  # bad input: one class short of photos
    page.get_by_text("“rocket” has 2 of the 5 photos each class needs: add 3 more.").wait_for(timeout=30_000)
    _upload(page, 3, photos["rocket"][2:])
    expect(full).to_have_count(3, timeout=60_000)

    page.get_by_role("button", name="Learn").click()
    shown = {label: _metric(page, label) for label in ("Raw pixels", "Random-init backbone", "Pretrained backbone")}
    for value, delta in shown.values():
        assert re.fullmatch(r"\d+\.\d%", value), value
        assert re.fullmatch(r"95 % CI \d+\.\d–\d+\.\d%", delta), delta
    assert float(shown["Pretrained backbone"][0][:-1]) >= 90  # three different pictures, ImageNet features
    sentences = page.get_by_text(re.compile(r"on (the same )?30 test images \(.*McNemar's test, (p = [\d.e-]+|p < "
                                            r"0\.001)\)"))
    assert sentences.count() == 2
    page.locator(".js-plotly-plot").nth(2).wait_for(timeout=60_000)  # the three maps
    # The page scrolls inside its main block (a full-page screenshot does not reach below): the numbers to the top.
    page.get_by_test_id("stMetric").first.evaluate("e => e.scrollIntoView({block: 'start'})")
    screenshot(page, "own-images-learned.png")

    new_cat = jpeg(crops(picture("chelsea"), 1, 256, seed=99)[0])
    uploader = page.get_by_test_id("stFileUploader").filter(has_text="A photo to classify")
    uploader.locator("input[type=file]").set_input_files(_files([(new_cat, "new-cat.jpg")]))
    page.get_by_text(re.compile(r"^Pretrained backbone: cat \(\d+%\)$")).wait_for(timeout=60_000)
    page.get_by_text(re.compile(r"^Raw pixels: (cat|coffee|rocket) \(\d+%\)$")).wait_for(timeout=10_000)
    page.get_by_text("Try it", exact=True).evaluate("e => e.scrollIntoView({block: 'start'})")
    screenshot(page, "own-images-tried.png")
    assert "Traceback" not in page.content()
