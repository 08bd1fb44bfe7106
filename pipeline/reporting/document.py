"""A tiny document model rendered to both Markdown and standalone HTML, so the two reports hold the same content.

Every string that comes from inputs (variant names, failure reasons) passes through the renderers' escaping:
Markdown escapes its special characters, HTML goes through :func:`html.escape`.

The HTML page is one self-contained file: :func:`render_html` embeds every image it is given the bytes of as a
``data:`` URI, so the page still works when copied on its own; the Markdown links the images by relative path.
A :class:`Details` block is a collapsed ``<details>`` section in both: Markdown has no syntax for one, and GitHub
(where report.md is read) renders raw ``<details>`` as collapsible, with the Markdown inside it rendered as usual;
a plain-text reader sees the content in full between two tag lines.
"""

from __future__ import annotations

import base64
import html
import mimetypes
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Union

Style = Literal["plain", "strong", "code"]


@dataclass(frozen=True)
class Span:
    """A run of inline text with one style."""

    text: str
    style: Style = "plain"


Inline = Union[str, Span, Sequence[Union[str, Span]]]


@dataclass(frozen=True)
class Heading:
    """A section title (level 1 = document title)."""

    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    """A paragraph of inline content; ``id`` names it in the HTML (``#headline``)."""

    content: Inline
    id: str = ""


@dataclass(frozen=True)
class Alert:
    """A paragraph the reader must not miss; rendered with a ⚠ marker."""

    content: Inline


@dataclass(frozen=True)
class BulletList:
    """An unordered list, one inline content per item."""

    items: Sequence[Inline]


@dataclass(frozen=True)
class Table:
    """A table of plain strings; ``align`` holds 'l' or 'r' per column (default left); ``id`` names it in the HTML."""

    header: Sequence[str]
    rows: Sequence[Sequence[str]]
    align: Sequence[str] = field(default_factory=tuple)
    id: str = ""


@dataclass(frozen=True)
class Image:
    """An image by path relative to the report, with alt text and an optional caption."""

    path: str
    alt: str
    caption: str = ""


@dataclass(frozen=True)
class Gallery:
    """Images side by side, each with its caption (a grid in HTML, one table row in Markdown)."""

    images: Sequence[Image]


@dataclass(frozen=True)
class Details:
    """A collapsed section: ``summary`` is always shown, ``blocks`` when the reader opens it."""

    summary: str
    blocks: Sequence["Block"]
    id: str = ""


Block = Union[Heading, Paragraph, Alert, BulletList, Table, Image, Gallery, Details]

WARNING_MARK = "⚠"
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#~&])")


def _spans(content: Inline) -> list[Span]:
    if isinstance(content, (str, Span)):
        content = [content]
    return [item if isinstance(item, Span) else Span(item) for item in content]


def _md_escape(text: str) -> str:
    """Escape Markdown syntax and keep the text on one line (tables and list items break on newlines)."""
    return _MD_SPECIAL.sub(r"\\\1", re.sub(r"\s+", " ", text))


def _md_inline(content: Inline) -> str:
    parts = []
    for span in _spans(content):
        if span.style == "code":
            code = re.sub(r"\s+", " ", span.text.replace("`", "'"))
            parts.append(f"`{code}`")
        elif span.style == "strong":
            parts.append(f"**{_md_escape(span.text)}**")
        else:
            parts.append(_md_escape(span.text))
    return "".join(parts)


def _md_block(block: Block) -> str:
    if isinstance(block, Heading):
        return f"{'#' * block.level} {_md_escape(block.text)}"
    if isinstance(block, Paragraph):
        return _md_inline(block.content)
    if isinstance(block, Alert):
        return f"> **{WARNING_MARK} Warning:** {_md_inline(block.content)}"
    if isinstance(block, BulletList):
        return "\n".join(f"- {_md_inline(item)}" for item in block.items)
    if isinstance(block, Table):
        align = list(block.align) + ["l"] * (len(block.header) - len(block.align))
        rule = ["---:" if a == "r" else "---" for a in align]
        lines = [block.header, rule, *block.rows]
        return "\n".join(
            "| " + " | ".join(cell if line is rule else _md_escape(cell) for cell in line) + " |" for line in lines
        )
    if isinstance(block, Image):
        image = _md_image(block)
        return f"{image}\n\n*{_md_escape(block.caption)}*" if block.caption else image
    if isinstance(block, Gallery):
        return _md_gallery(block)
    if isinstance(block, Details):
        inner = render_markdown(block.blocks).rstrip("\n")
        return f"<details>\n<summary>{html.escape(block.summary, quote=False)}</summary>\n\n{inner}\n\n</details>"
    raise TypeError(f"unknown block type {type(block).__name__}")


def _md_image(image: Image) -> str:
    return f"![{_md_escape(image.alt)}]({image.path})"


def _md_gallery(gallery: Gallery) -> str:
    """One table: the captions as its header, the images side by side in its row."""
    captions = [_md_escape(image.caption or image.alt) for image in gallery.images]
    rule = ["---"] * len(captions)
    images = [_md_image(image) for image in gallery.images]
    return "\n".join("| " + " | ".join(line) + " |" for line in (captions, rule, images))


def render_markdown(blocks: Sequence[Block]) -> str:
    """The document as GitHub-flavoured Markdown."""
    return "\n\n".join(_md_block(block) for block in blocks) + "\n"


def _html_inline(content: Inline) -> str:
    tags = {"strong": "strong", "code": "code"}
    parts = []
    for span in _spans(content):
        text = html.escape(span.text)
        tag = tags.get(span.style)
        parts.append(f"<{tag}>{text}</{tag}>" if tag else text)
    return "".join(parts)


def _id(name: str) -> str:
    return f' id="{html.escape(name, quote=True)}"' if name else ""


def _html_table(table: Table) -> str:
    """The table inside a box that scrolls sideways when the table is wider than the page."""
    align = list(table.align) + ["l"] * (len(table.header) - len(table.align))

    def cells(row: Sequence[str], tag: str) -> str:
        return "".join(
            f'<{tag} class="num">{html.escape(c)}</{tag}>' if a == "r" else f"<{tag}>{html.escape(c)}</{tag}>"
            for c, a in zip(row, align)
        )

    body = "".join(f"<tr>{cells(row, 'td')}</tr>" for row in table.rows)
    return (f'<div class="scroll"><table{_id(table.id)}><thead><tr>{cells(table.header, "th")}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def data_uri(content: bytes, path: str) -> str:
    """``content`` as a ``data:`` URI, its media type guessed from ``path``'s suffix."""
    kind = mimetypes.guess_type(path)[0] or "application/octet-stream"
    return f"data:{kind};base64,{base64.b64encode(content).decode('ascii')}"


def _html_image(image: Image, images: Mapping[str, bytes]) -> str:
    """A figure whose image is embedded when ``images`` holds its bytes, else linked by its relative path."""
    caption = f"<figcaption>{html.escape(image.caption)}</figcaption>" if image.caption else ""
    content = images.get(image.path)
    src = data_uri(content, image.path) if content is not None else html.escape(image.path, quote=True)
    return f'<figure><img src="{src}" alt="{html.escape(image.alt, quote=True)}">{caption}</figure>'


def _html_block(block: Block, images: Mapping[str, bytes]) -> str:
    if isinstance(block, Heading):
        return f"<h{block.level}>{html.escape(block.text)}</h{block.level}>"
    if isinstance(block, Paragraph):
        return f"<p{_id(block.id)}>{_html_inline(block.content)}</p>"
    if isinstance(block, Alert):
        return f'<p class="warning"><strong>{WARNING_MARK} Warning:</strong> {_html_inline(block.content)}</p>'
    if isinstance(block, BulletList):
        items = "".join(f"<li>{_html_inline(item)}</li>" for item in block.items)
        return f"<ul>{items}</ul>"
    if isinstance(block, Table):
        return _html_table(block)
    if isinstance(block, Image):
        return _html_image(block, images)
    if isinstance(block, Gallery):
        return f'<div class="gallery">{"".join(_html_image(image, images) for image in block.images)}</div>'
    if isinstance(block, Details):
        inner = "\n".join(_html_block(child, images) for child in block.blocks)
        summary = html.escape(block.summary, quote=False)
        return f"<details{_id(block.id)}><summary>{summary}</summary>\n{inner}\n</details>"
    raise TypeError(f"unknown block type {type(block).__name__}")


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.6rem; }
th { background: #f3f3f3; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td { white-space: nowrap; }  /* numbers and names stay whole; a wide table scrolls in its box */
.warning { background: #fff4e0; border-left: 4px solid #e69500; padding: 0.5rem 0.8rem; }
figure { margin: 1rem 0; }
img { max-width: 100%; height: auto; }
figcaption { color: #555; font-style: italic; }
p, li, figcaption { overflow-wrap: break-word; }
#headline { font-size: 1.15rem; line-height: 1.5; }
.scroll { max-width: 100%; overflow-x: auto; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(12rem, 1fr)); gap: 1rem; }
.gallery figure { margin: 0; }
.gallery img { width: 100%; border: 1px solid #ddd; }
details { margin: 1rem 0; border: 1px solid #ddd; border-radius: 4px; padding: 0.4rem 0.8rem; }
details[open] > summary { margin-bottom: 0.5rem; }
summary { cursor: pointer; font-weight: 600; }
"""


def render_html(blocks: Sequence[Block], *, title: str, images: Mapping[str, bytes] | None = None) -> str:
    """The document as one HTML page; ``images`` maps an image path to its bytes, embedded as a ``data:`` URI.

    An image whose bytes are not given is linked by its relative path (then the page needs the folder beside it).
    """
    body = "\n".join(_html_block(block, images or {}) for block in blocks)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )
