"""Real browser: the "your images" step in the tour (issue 24), the whole classroom path in one test. Three small
classes of real photos (scikit-image's, cropped and mirrored: 10 a class) go in through the file uploader; a class
with 2 photos is refused with how many more it needs; the class guesses before Learn, and Learn gives the three
accuracies with their 95 % intervals, McNemar's sentences, three maps and the reveal of the guess; a new photo is
classified by each of the three; "Download this lesson" gives one HTML file with what the page showed; and the
explorer, one page switch away, shows the same numbers (the photos and result are this session's).

The server computes in fp32 (PTM_NATIVE_BF16=0) on the tour's small plan, like tests/test_browser_questions.py."""
import base64
import html
import re

import pytest

from browser_support import screenshot, serve, settled, sync_api
from own_photos import class_bytes, crops, jpeg, picture

pytestmark = [pytest.mark.browser, pytest.mark.slow]
expect = sync_api.expect
KINDS = ("Raw pixels", "Random-init backbone", "Pretrained backbone")


@pytest.fixture(scope="module")
def server(data_dir, user_dir, server_log):
    yield from serve(data_dir, server_log, PTM_NATIVE_BF16="0", PTM_TOUR_SMALL="1", PTM_ALLOWED_ROOTS=str(user_dir))


def _files(photos):
    return [{"name": name, "mimeType": "image/jpeg", "buffer": data} for data, name in photos]


def _metric(page, label: str) -> tuple[str, str]:
    metric = page.get_by_test_id("stMetric").filter(has=page.get_by_test_id("stMetricLabel").get_by_text(label, exact=True))
    metric.first.wait_for(timeout=120_000)
    return (metric.first.get_by_test_id("stMetricValue").inner_text(),
            metric.first.get_by_test_id("stMetricDelta").inner_text())


def _upload(page, number: int, photos) -> None:
    """Photos into class `number`'s uploader (1-based); the card then counts them."""
    settled(page)
    uploader = page.locator(f".st-key-own-tour-class-{number}").get_by_test_id("stFileUploader").last
    uploader.locator("input[type=file]").set_input_files(_files(photos))


def _lesson(page) -> str:
    with page.expect_download(timeout=120_000) as download:
        page.get_by_role("button", name="Download this lesson").click()
    assert download.value.suggested_filename == "pretraining-lesson-en.html"
    return open(download.value.path(), encoding="utf-8").read()


def test_own_photos_guess_learn_try_and_take_the_lesson_home(page, server):
    photos = class_bytes(10, side=256)
    page.goto(server)
    page.get_by_role("heading", name="Your photos: the same three on your own classes").wait_for(timeout=90_000)
    page.get_by_text("they are not saved on the server").wait_for(timeout=60_000)
    page.locator(".st-key-ask-own_images").get_by_role("radio", name="Pretrained backbone").click()
    page.get_by_text("Your guess: Pretrained backbone. You can change it until the step runs.").wait_for(timeout=30_000)
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
    _upload(page, 3, [(b"not a photo", "notes.txt")])  # bad input: named in one line, the class keeps its photos
    page.get_by_text(re.compile(r"^notes\.txt is not a usable image: ")).wait_for(timeout=60_000)
    page.get_by_text("2 photos · add 3 more").wait_for(timeout=30_000)

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
    reveal = page.get_by_test_id("stAlertContentInfo").filter(has_text="You chose pretrained features").inner_text()
    assert re.search(r"(McNemar's test|your guess)", reveal), reveal

    lesson = _lesson(page)
    section = lesson[lesson.index("<h2>Your photos: the same three on your own classes</h2>"):]
    section = section[:section.index("</section>")]
    for label, (value, delta) in shown.items():  # the numbers the page showed, with their intervals
        assert re.search(rf'<div class="label">{label}</div><div class="value">{re.escape(value)}</div>'
                         rf'<div class="interval">{re.escape(delta)}</div>', section), label
    words = html.unescape(re.sub(r"<[^>]+>", "", section))
    assert reveal.splitlines()[-1].strip() in words  # the reveal, word for word (the icon's name left out)
    assert re.search(r"A new photo, classified by each probe:\s+Raw pixels: \w+ \(\d+%\)", words)
    pictures = re.findall(r'src="data:image/png;base64,([^"]+)"', section)
    assert len(pictures) == 3 and all(base64.b64decode(p).startswith(b"\x89PNG") for p in pictures)  # the maps
    assert "new-cat" not in lesson and "<script" not in lesson  # the photos themselves stay in the session

    page.get_by_test_id("stSidebarNav").get_by_text("Features & probe").click()  # a page switch keeps them
    expander = page.get_by_text("Your own photos: pixels vs random init vs pretrained")
    expander.wait_for(timeout=60_000)
    settled(page)
    assert page.locator(".st-key-own-explore-class-1").count() == 0  # closed, its widgets are not even drawn
    expander.click()
    page.locator(".st-key-own-explore-class-1").wait_for(timeout=60_000)
    for label, shown_value in shown.items():
        assert _metric(page, label) == shown_value
    assert "Traceback" not in page.content()
