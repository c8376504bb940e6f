"""The interface's Chinese catalogue: complete, compiled, placeholders intact, and no text left outside it."""
import ast
import gettext
import io
import re
from pathlib import Path

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
PO = ROOT / "assets" / "locale" / "zh_CN" / "LC_MESSAGES" / "ptm.po"
MO = PO.with_suffix(".mo")
SOURCES = [ROOT / "app.py", *sorted((ROOT / "pages").rglob("*.py"))]
# Files whose every user-facing literal must go through _(): the tour and the chrome around every page.
FULLY_TRANSLATED = ["app.py", "pages/tour.py", "pages/ui/tour_views.py", "pages/ui/sidebar.py", "pages/ui/job_views.py",
                    "pages/ui/gallery.py", "pages/ui/i18n.py", "pages/ui/pitfall_views.py"]
UI_CALLS = {"title", "header", "subheader", "markdown", "caption", "button", "metric", "info", "warning", "error",
            "success", "toast", "expander", "selectbox", "radio", "toggle", "text_input", "number_input", "slider",
            "select_slider", "file_uploader", "download_button", "tabs", "checkbox", "segmented_control", "Page"}


def _catalog():
    with PO.open("rb") as handle:
        return read_po(handle, locale="zh_CN")


def _calls(path: Path, names=("_", "N_", "ngettext")):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names:
            yield node


ENGINE = sorted((ROOT / "ptm_core").rglob("*.py"))  # its M_() templates (ptm_core/base/messages.py)


def _messages() -> dict[str, str]:
    found = {}
    for path, names in [(path, ("_", "N_")) for path in SOURCES] + [(path, ("M_",)) for path in ENGINE]:
        for call in _calls(path, names):
            arg = call.args[0] if call.args else None
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found[arg.value] = f"{path.relative_to(ROOT)}:{call.lineno}"
    return found


def test_every_message_in_the_code_has_a_chinese_translation():
    catalog = _catalog()
    untranslated = [(where, text) for text, where in _messages().items()
                    if catalog.get(text) is None or not catalog.get(text).string]
    assert not untranslated, untranslated


def test_only_literal_text_is_looked_up():
    # _(f"...") or _("a" + b) can never be in the catalogue: it would silently stay English. A name or a
    # lookup holding N_()-marked text, _(LABELS[key]) or _(label), is how marked text is shown.
    bad = [f"{p.relative_to(ROOT)}:{c.lineno}" for p in SOURCES for c in _calls(p, ("_",))
           if not (len(c.args) == 1 and (isinstance(c.args[0], (ast.Subscript, ast.Name, ast.Attribute)) or (
               isinstance(c.args[0], ast.Constant) and isinstance(c.args[0].value, str))))]
    assert not bad, bad


def test_placeholders_and_markup_survive_translation():
    for message in _catalog():
        if not message.id:
            continue
        # A plural entry (ngettext) has a tuple of forms on each side: every form keeps every placeholder.
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings), message.id
        for source in ids:
            for string in strings:
                assert set(re.findall(r"{\w*}", source)) == set(re.findall(r"{\w*}", string)), message.id
                assert source.count("**") == string.count("**"), message.id


def test_the_compiled_catalogue_is_the_po_file():
    """Edit the .po, then `pybabel compile -d assets/locale -D ptm`: a stale .mo fails here."""
    buffer = io.BytesIO()
    write_mo(buffer, _catalog())
    fresh = gettext.GNUTranslations(io.BytesIO(buffer.getvalue()))
    with MO.open("rb") as handle:
        shipped = gettext.GNUTranslations(handle)
    assert shipped._catalog == fresh._catalog  # noqa: SLF001 (no public view of a catalogue's entries)


def test_technical_terms_are_written_as_the_field_writes_them():
    text = " ".join(form for m in _catalog() if m.id
                    for form in (m.string if isinstance(m.string, tuple) else (m.string,)))  # plural: every form
    for term in ("预训练", "线性探测", "微调", "特征", "降维"):
        assert term in text, term


def _literal_ui_text(path: Path) -> list[str]:
    offenders = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in UI_CALLS):
            continue
        for arg in node.args[:1] + [k.value for k in node.keywords if k.arg in ("label", "help", "title")]:
            parts = [arg] if isinstance(arg, ast.Constant) else list(arg.values) if isinstance(arg, ast.JoinedStr) else []
            if any(isinstance(p, ast.Constant) and isinstance(p.value, str) and re.search(r"[A-Za-z]{2}", p.value)
                   and not p.value.startswith(("pages/", ":material")) for p in parts):
                offenders.append(f"{path.name}:{node.lineno}")
    return offenders


@pytest.mark.parametrize("name", FULLY_TRANSLATED)
def test_no_interface_text_bypasses_the_catalogue(name):
    assert not _literal_ui_text(ROOT / name)


def test_the_detector_finds_untranslated_text(tmp_path):
    sample = tmp_path / "page.py"
    sample.write_text('import streamlit as st\nst.button("Run")\nst.caption(f"took {n} s")\nst.title(_("Tour"))\n')
    assert _literal_ui_text(sample) == ["page.py:2", "page.py:3"]


def test_the_language_travels_in_the_url_and_changes_the_chrome():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params["lang"] = "zh"
    at.run()
    assert not at.exception, at.exception
    assert at.title[0].value == "预训练何时有用？"
    assert any(b.label.startswith("运行第 2 步") for b in at.button)
    assert at.toggle(key="w_presenter").label == "演示模式"
    at.switch_page("pages/explore.py").run()
    assert not at.exception, at.exception
    assert any(s.value == "数据" for s in at.sidebar.subheader)
    assert at.query_params["lang"] == ["zh"] or at.query_params["lang"] == "zh"


def test_engine_messages_are_found_in_the_engine():
    engine = {text for text, where in _messages().items() if where.startswith("ptm_core")}
    assert {"training the linear probe", "{done}/{total} images, {rate:.0f} img/s", "download needed",
            "{model} ({weights}) on {data} @ {size}"} <= engine


def test_engine_text_is_english_as_text_and_translated_by_the_interface(monkeypatch):
    from pages.ui import i18n
    from ptm_core.base import BackboneConfig, DatasetConfig, PTMError, ProjectionConfig, describe_map, describe_source
    from ptm_core.data.registry import load_dataset

    source = describe_source(DatasetConfig("digits", limit=120), BackboneConfig(weights="random"), 32)
    mapped = describe_map(ProjectionConfig())
    with pytest.raises(PTMError) as caught:
        load_dataset(DatasetConfig("folder:"))
    # The CLI and the logs read the English line, as before.
    assert source == "tf_efficientnet_lite0 (random init, seed 0) on digits (limit 120) @ 32px"
    assert mapped == "UMAP 2-D (15 neighbours, min dist 0.10, euclidean)"
    assert str(caught.value).startswith("folder needs a path")
    monkeypatch.setattr(i18n, "language", lambda: "zh")
    assert i18n.tr(source) == "tf_efficientnet_lite0（随机初始化，种子 0），数据 digits（上限 120） @ 32px"
    assert i18n.tr(mapped) == "UMAP 2维（15 个近邻, 最小距离 0.10, euclidean）"
    assert i18n.tr(caught.value.for_ui()).startswith("folder 需要一个路径")
    # The same English read back as plain text (a run's title from the store) is matched to its templates.
    assert i18n.tr_stored(str(source)) == i18n.tr(source)
    assert i18n.tr_stored("folder:/data/cats (old)") == "folder:/data/cats (old)"  # not ours: left alone
    monkeypatch.setattr(i18n, "language", lambda: "en")
    assert i18n.tr(source) == source


def test_an_image_refusal_is_worded_whole_in_the_interfaces_language(monkeypatch):
    """The reason inside "x is not a usable image: …" and a zip's skip lines are Messages too, not English tails."""
    from own_photos import zip_bytes
    from pages.ui import i18n
    from PIL import Image
    from ptm_core.base import PTMError
    from ptm_core.data.photos import photo_from_bytes, photos_from_zip

    buffer = io.BytesIO()
    Image.new("RGB", (1200, 1000)).save(buffer, format="JPEG")  # under twice the limit: our check, with its size
    monkeypatch.setenv("PTM_MAX_IMAGE_PIXELS", str(1000 * 1000))
    refused = []
    for data, name in ((b"not an image at all", "notes.txt"), (buffer.getvalue(), "big.jpg")):
        with pytest.raises(PTMError) as caught:
            photo_from_bytes(data, name)
        refused.append(caught.value.for_ui())
    skipped = photos_from_zip(zip_bytes({"set/readme.txt": b"hello", "set/bad.png": b"??"}), "set.zip").skipped
    assert str(refused[1]).startswith("big.jpg is not a usable image: too many pixels (1200x1000, over the")
    monkeypatch.setattr(i18n, "language", lambda: "zh")
    assert i18n.tr(refused[0]) == "notes.txt 不是可用的图像：不是 Pillow 能读取的图像。"
    assert i18n.tr(refused[1]).startswith("big.jpg 不是可用的图像：像素过多（1200x1000，超过 PTM_MAX_IMAGE_PIXELS 设定的 "
                                          "1,000,000 上限）")
    assert sorted(i18n.tr(line) for line in skipped) == ["bad.png 不是可用的图像：不是 Pillow 能读取的图像。",
                                                         "set/readme.txt：不是图像文件"]
    # A folder's skip list read back from a run's record as plain English: matched to its templates.
    assert i18n.tr_stored("not an image file (.txt)") == "不是图像文件（.txt）"
    assert i18n.tr_stored("unreadable in the zip (Bad CRC-32 for file 'a.png')") == \
        "在 zip 中无法读取（Bad CRC-32 for file 'a.png'）"
    assert i18n.tr_stored("too large (3 MB, over the 1 MB limit set by PTM_MAX_FILE_BYTES)") == \
        "过大（3 MB，超过 PTM_MAX_FILE_BYTES 设定的 1 MB 上限）"
