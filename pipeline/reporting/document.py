"""A tiny document model rendered to both Markdown and standalone HTML, so the two reports hold the same content.

Every string that comes from inputs (variant names, failure reasons) passes through the renderers' escaping:
Markdown escapes its special characters, HTML goes through :func:`html.escape`.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
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
    """A paragraph of inline content."""

    content: Inline


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
    """A table of plain strings; ``align`` holds 'l' or 'r' per column (default left)."""

    header: Sequence[str]
    rows: Sequence[Sequence[str]]
    align: Sequence[str] = field(default_factory=tuple)


@dataclass(frozen=True)
class Image:
    """An image by path relative to the report, with alt text and an optional caption."""

    path: str
    alt: str
    caption: str = ""


Block = Union[Heading, Paragraph, Alert, BulletList, Table, Image]

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
        image = f"![{_md_escape(block.alt)}]({block.path})"
        return f"{image}\n\n*{_md_escape(block.caption)}*" if block.caption else image
    raise TypeError(f"unknown block type {type(block).__name__}")


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


def _html_block(block: Block) -> str:
    if isinstance(block, Heading):
        return f"<h{block.level}>{html.escape(block.text)}</h{block.level}>"
    if isinstance(block, Paragraph):
        return f"<p>{_html_inline(block.content)}</p>"
    if isinstance(block, Alert):
        return f'<p class="warning"><strong>{WARNING_MARK} Warning:</strong> {_html_inline(block.content)}</p>'
    if isinstance(block, BulletList):
        items = "".join(f"<li>{_html_inline(item)}</li>" for item in block.items)
        return f"<ul>{items}</ul>"
    if isinstance(block, Table):
        align = list(block.align) + ["l"] * (len(block.header) - len(block.align))

        def cells(row: Sequence[str], tag: str) -> str:
            return "".join(
                f'<{tag} class="num">{html.escape(c)}</{tag}>' if a == "r" else f"<{tag}>{html.escape(c)}</{tag}>"
                for c, a in zip(row, align)
            )

        body = "".join(f"<tr>{cells(row, 'td')}</tr>" for row in block.rows)
        return f"<table><thead><tr>{cells(block.header, 'th')}</tr></thead><tbody>{body}</tbody></table>"
    if isinstance(block, Image):
        caption = f"<figcaption>{html.escape(block.caption)}</figcaption>" if block.caption else ""
        src = html.escape(block.path, quote=True)
        return f'<figure><img src="{src}" alt="{html.escape(block.alt, quote=True)}">{caption}</figure>'
    raise TypeError(f"unknown block type {type(block).__name__}")


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.6rem; }
th { background: #f3f3f3; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.warning { background: #fff4e0; border-left: 4px solid #e69500; padding: 0.5rem 0.8rem; }
figure { margin: 1rem 0; }
img { max-width: 100%; }
figcaption { color: #555; font-style: italic; }
"""


def render_html(blocks: Sequence[Block], *, title: str) -> str:
    """The document as a standalone HTML page (images referenced by relative path)."""
    body = "\n".join(_html_block(block) for block in blocks)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )
