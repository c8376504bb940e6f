"""A lesson to take home: one self-contained HTML file with every tour step that has run.

The page gathers, as it draws each step, the step's text, its numbers with their intervals, its captions and its
figures (as PNG images), in the page's language; `lesson_html` writes them out with the styles inline and the
images as data URIs, so the file opens offline, prints, and needs nothing beside it. Text arrives as the page's
markdown (bold, italics, code, "- " lists, backslash escapes from pages.ui.text.md); everything else in it is
escaped, so a class name cannot inject markup into the file.
"""
from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field

# `\x` (an escaped character), `**bold**`, `*italic*`, `` `code` ``, `[a link](https://…)`: the markdown the page's
# text uses (a link is a reference to read, not a resource the file loads).
_INLINE = re.compile(r"\\(.)|\*\*(.+?)\*\*|(?<![\\*])\*(?!\s)(.+?)(?<!\s)\*|`([^`]+)`"
                     r"|\[([^\]]+)\]\((https?://[^\s)]+)\)", re.DOTALL)

STYLE = """
body{font-family:"Source Sans Pro","Noto Sans CJK SC","WenQuanYi Micro Hei",system-ui,sans-serif;max-width:60rem;
margin:2rem auto;padding:0 1rem;color:#262730;line-height:1.5}
h1{font-size:1.9rem;margin-bottom:.2rem} h2{font-size:1.35rem;margin-top:2.2rem;border-bottom:1px solid #ddd}
.metrics{display:flex;flex-wrap:wrap;gap:1rem;margin:.8rem 0}
.metric{border:1px solid #e3e3e8;border-radius:.5rem;padding:.5rem .8rem;flex:1 1 13rem;max-width:22rem}
.metric .label{font-size:.85rem;color:#555} .metric .value{font-size:1.6rem;font-weight:600}
.metric .interval,.metric .note,.caption,.meta{font-size:.85rem;color:#666}
figure{margin:.8rem 0} figure img{max-width:100%;height:auto;border:1px solid #eee}
.row{display:flex;flex-wrap:wrap;gap:.5rem} .row figure{flex:1 1 15rem}
.row figure.thumb{flex:0 0 auto;margin:0;font-size:.8rem;color:#555;text-align:center} .thumb img{border:none}
@media print{h2{break-before:auto} figure,.metric{break-inside:avoid}}
"""


@dataclass(frozen=True)
class LessonMetric:
    label: str
    value: str
    interval: str = ""  # e.g. "95 % CI 88.1–94.0%"
    note: str = ""  # how it was computed


@dataclass(frozen=True)
class LessonFigure:
    png: bytes
    alt: str = ""


@dataclass
class LessonSection:
    """One step: its title, then its blocks in the order the page showed them."""

    title: str
    blocks: list[tuple[str, object]] = field(default_factory=list)  # ("text"|"caption", str), ("metrics", [...]),
    # ("figures", [LessonFigure, ...]): figures shown side by side on the page stay side by side; ("images", [...]):
    # a gallery, each LessonFigure's `alt` its caption


@dataclass
class Lesson:
    title: str
    lang: str  # the page's language, an HTML lang tag ("en", "zh-CN")
    meta: list[str] = field(default_factory=list)  # when, where and from what it was computed
    intro: str = ""
    sections: list[LessonSection] = field(default_factory=list)


def inline_html(text: str) -> str:
    """The page's inline markdown as HTML: escapes resolved, emphasis and code kept, anything else escaped."""
    out, last = [], 0
    for match in _INLINE.finditer(text):
        out.append(html.escape(text[last:match.start()]))
        escaped, bold, italic, code, link_text, url = match.groups()
        if link_text is not None:
            out.append(f'<a href="{html.escape(url, quote=True)}">{inline_html(link_text)}</a>')
        elif escaped is not None:
            out.append(html.escape(escaped))
        elif bold is not None:
            out.append(f"<strong>{inline_html(bold)}</strong>")
        elif italic is not None:
            out.append(f"<em>{inline_html(italic)}</em>")
        else:
            out.append(f"<code>{html.escape(code)}</code>")
        last = match.end()
    out.append(html.escape(text[last:]))
    return "".join(out)


def block_html(text: str, css: str = "") -> str:
    """Paragraphs (split on blank lines) and "- " bullet lists of the page's markdown."""
    attribute = f' class="{css}"' if css else ""
    parts = []
    for chunk in re.split(r"\n\s*\n", text.strip()):
        lines = [line for line in chunk.splitlines() if line.strip()]
        if lines and all(line.lstrip().startswith("- ") for line in lines):
            items = "".join(f"<li>{inline_html(line.lstrip()[2:])}</li>" for line in lines)
            parts.append(f"<ul{attribute}>{items}</ul>")
        elif lines:
            parts.append(f"<p{attribute}>{inline_html(' '.join(line.strip() for line in lines))}</p>")
    return "\n".join(parts)


def metric_html(metric: LessonMetric) -> str:
    rows = [f'<div class="label">{inline_html(metric.label)}</div>',
            f'<div class="value">{html.escape(metric.value)}</div>']
    rows += [f'<div class="{css}">{inline_html(text)}</div>'
             for css, text in (("interval", metric.interval), ("note", metric.note)) if text]
    return f'<div class="metric">{"".join(rows)}</div>'


def image_html(figure: LessonFigure) -> str:
    data = base64.b64encode(figure.png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(figure.alt, quote=True)}">'


def figure_html(figure: LessonFigure) -> str:
    return f"<figure>{image_html(figure)}</figure>"


def section_html(section: LessonSection) -> str:
    parts = [f"<section><h2>{inline_html(section.title)}</h2>"]
    for kind, value in section.blocks:
        if kind == "text":
            parts.append(block_html(value))
        elif kind == "caption":
            parts.append(block_html(value, "caption"))
        elif kind == "metrics":
            parts.append(f'<div class="metrics">{"".join(metric_html(m) for m in value)}</div>')
        elif kind == "images":  # a gallery: small pictures, each with its caption under it
            pictures = "".join(f'<figure class="thumb">{image_html(f)}<figcaption>{inline_html(f.alt)}'
                               f'</figcaption></figure>' for f in value)
            parts.append(f'<div class="row">{pictures}</div>')
        elif kind == "figures":
            figures = "".join(figure_html(f) for f in value)
            parts.append(f'<div class="row">{figures}</div>' if len(value) > 1 else figures)
        else:
            raise ValueError(f"unknown lesson block {kind!r}")
    parts.append("</section>")
    return "\n".join(parts)


def lesson_html(lesson: Lesson) -> str:
    """The whole lesson as one HTML document: inline styles, images as data URIs, no script, nothing loaded from
    elsewhere (a link in the text is only a reference to click)."""
    meta = "".join(f'<p class="meta">{inline_html(line)}</p>' for line in lesson.meta)
    body = "\n".join(section_html(section) for section in lesson.sections)
    return (f'<!DOCTYPE html>\n<html lang="{html.escape(lesson.lang, quote=True)}">\n<head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(lesson.title)}</title><style>{STYLE}</style></head>\n<body>\n"
            f"<h1>{inline_html(lesson.title)}</h1>\n{meta}\n{block_html(lesson.intro)}\n{body}\n</body>\n</html>\n")
