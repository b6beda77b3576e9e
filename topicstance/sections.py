"""Split a document into sections at its headings, keeping exact offsets.

A heading is a Markdown `#` line, or a short line (at most MAX_HEADING_WORDS
words, no final punctuation, not a list item) that stands between paragraphs.
Text before the first heading is a section with an empty heading.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

MAX_HEADING_WORDS = 12
_MARKDOWN_HEADING = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+(?P<title>.*?)(?:[ \t]+#+)?[ \t]*$")
_LIST_ITEM = re.compile(r"^\s*(?:[-*•–—+]|\d{1,3}[.)])\s")
_FINAL_PUNCTUATION = ".!?…:;,"
_CLOSING_MARKS = "\"'”’»)]"
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n|$)")


@dataclass(frozen=True)
class Line:
    """A non-blank line of the source, trimmed; `text` is source[start:end]."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Section:
    """A heading and the paragraphs under it, as offsets into the source.

    `model_text` is what the model reads: the heading, a line break, the body.
    `source_offset` maps an offset in `model_text` back into the source.
    """

    heading: str
    heading_start: int
    start: int
    body_start: int
    end: int
    body: str

    @property
    def model_text(self) -> str:
        return f"{self.heading}\n{self.body}" if self.heading else self.body

    def source_offset(self, offset: int) -> int:
        if not self.heading:
            return self.body_start + offset
        if offset <= len(self.heading):
            return self.heading_start + offset
        return self.body_start + offset - len(self.heading) - 1

    def in_heading(self, offset: int) -> bool:
        return bool(self.heading) and offset < len(self.heading)


def single_section(body: str, heading: str = "") -> Section:
    """A text taken whole as one section; a separate heading keeps its own offsets."""
    return Section(
        heading=heading.strip(),
        heading_start=len(heading) - len(heading.lstrip()),
        start=0,
        body_start=0,
        end=len(body),
        body=body,
    )


def iter_lines(text: str) -> Iterator[Line]:
    """Non-blank lines, trimmed of surrounding white space, with their offsets.

    Any of \\n, \\r\\n or \\r ends a line.
    """
    for match in _LINE.finditer(text):
        raw = match.group()
        if not raw:
            break
        content = raw.strip()
        if content:
            start = match.start() + len(raw) - len(raw.lstrip())
            yield Line(start, start + len(content), content)


def heading_title(line: str) -> str | None:
    """The heading text if the line looks like a heading, else None."""
    markdown = _MARKDOWN_HEADING.match(line)
    if markdown:
        title = markdown.group("title").strip()
        return title if title else None
    stripped = line.strip()
    if not stripped or _LIST_ITEM.match(line) or not any(ch.isalnum() for ch in stripped):
        return None
    if len(stripped.split()) > MAX_HEADING_WORDS:
        return None
    if stripped.rstrip(_CLOSING_MARKS)[-1:] in _FINAL_PUNCTUATION:
        return None
    return stripped


def _is_markdown(line: str) -> bool:
    return _MARKDOWN_HEADING.match(line) is not None


def split_sections(text: str) -> list[Section]:
    """Sections in document order; blank-only text gives no sections."""
    lines = list(iter_lines(text))
    sections: list[Section] = []
    heading: Line | None = None
    title = ""
    body: list[Line] = []
    for index, line in enumerate(lines):
        candidate = heading_title(line.text)
        follows = lines[index + 1] if index + 1 < len(lines) else None
        if candidate is not None and _stands_as_heading(line, follows):
            _close(sections, text, heading, title, body)
            heading, title, body = line, candidate, []
        else:
            body.append(line)
    _close(sections, text, heading, title, body)
    return sections


def _stands_as_heading(line: Line, follows: Line | None) -> bool:
    """A plain short line is a heading only when a paragraph follows it."""
    if _is_markdown(line.text):
        return True
    return follows is not None and heading_title(follows.text) is None


def _close(
    sections: list[Section], text: str, heading: Line | None, title: str, body: list[Line]
) -> None:
    if heading is None and not body:
        return
    if heading is not None:
        title_start = heading.start + text[heading.start : heading.end].index(title)
        start, body_start = heading.start, (body[0].start if body else heading.end)
    else:
        title_start, start, body_start = 0, body[0].start, body[0].start
    end = body[-1].end if body else heading.end if heading else start
    sections.append(
        Section(
            heading=title,
            heading_start=title_start,
            start=start,
            body_start=body_start,
            end=end,
            body=text[body_start:end],
        )
    )
