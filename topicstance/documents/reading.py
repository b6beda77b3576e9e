"""Read a document as an article: its title, its sections, and the furniture skipped.

Text pasted from a page (or rendered from its HTML) is a sequence of lines. Each
line is, in this order of precedence:

- nothing (no letter or digit: a rule, an empty bullet);
- boilerplate, by the language patterns (`rules.Boilerplate`): a byline, a time
  stamp, "Advertisement", a share button, a teaser... A line that leads a block
  ("Read more:", "Related content", "Image caption,") takes the line, or the list
  of short lines, after it;
- the title: a Markdown `#` title, or in plain text a short first line;
- page furniture by position: short lines between the title and the first
  paragraph (`header`), short lines that neither head a paragraph nor belong to
  one (`navigation`, or `footer` after the last paragraph);
- a heading: a Markdown `##` line, a live-blog time stamp (with the entry's title
  line after it), or a short line standing before a paragraph;
- a paragraph of the section it follows.

A line that continues the one before it (no blank line between, no sentence end
before, a lower-case start) is one paragraph with it, as in hard-wrapped text.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from topicstance.documents.rules import LIST_KINDS, Boilerplate
from topicstance.sections import iter_lines

MAX_HEADING_WORDS = 12
MAX_TITLE_WORDS = 30
MAX_LISTED_WORDS = 20
# A `#` title is looked for among the first lines only (a masthead may come first).
TITLE_WITHIN = 8
_SENTENCE_END = ".!…:;,"
_CLOSING = "\"'”’»)]*_"
_OPENING_QUOTES = "\"“«„'‘"
_MARKDOWN_HEADING = re.compile(r"^[ \t]{0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_LIST_ITEM = re.compile(r"^\s*(?:[-*•–—+]|\d{1,3}[.)])\s")
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_EMPHASIS = re.compile(r"(\*\*|__|\*|_|`)")
_QUOTE = re.compile(r"^(?:>\s?)+")


@dataclass(frozen=True)
class Skipped:
    """A span of the text that no section includes, and what it is."""

    start: int
    end: int
    kind: str


@dataclass(frozen=True)
class DocumentSection:
    """A heading and its paragraphs, read from pieces (`parts`) of the text.

    `model_text` is what the model reads: the heading, a line break, the
    paragraphs one per line. `segments` map it back: (offset in model_text,
    offset in the text, length), in order.
    """

    heading: str
    parts: tuple[tuple[int, int], ...]
    model_text: str
    segments: tuple[tuple[int, int, int], ...]
    heading_length: int

    @property
    def start(self) -> int:
        return self.parts[0][0]

    @property
    def end(self) -> int:
        return self.parts[-1][1]

    def source_offset(self, offset: int) -> int:
        """Where an offset of `model_text` falls in the text (an end stays in its piece)."""
        index = max(0, bisect.bisect_right([s[0] for s in self.segments], offset) - 1)
        model_start, source_start, length = self.segments[index]
        return source_start + min(max(offset - model_start, 0), length)

    def in_heading(self, offset: int) -> bool:
        return offset < self.heading_length


@dataclass
class Document:
    """A document read as an article; every offset indexes `text`."""

    text: str
    format: str
    title: str = ""
    sections: list[DocumentSection] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


@dataclass
class _Unit:
    """A paragraph-sized piece of the text: one line, or wrapped lines joined."""

    start: int
    end: int
    visible: str
    level: int = 0  # Markdown heading level, 0 for none
    listed: bool = False  # a list item
    kind: str | None = None  # boilerplate kind, once known
    role: str = ""  # title, heading, stamp, entry, body, skip or blank

    @property
    def words(self) -> int:
        return len(self.visible.split())


def visible(line: str) -> str:
    """A line as a reader sees it: Markdown images, links, emphasis and quote marks
    removed, white space collapsed."""
    line = _IMAGE.sub("", line)
    line = _LINK.sub(r"\1", line)
    line = _QUOTE.sub("", line.strip())
    line = _EMPHASIS.sub("", line)
    return " ".join(line.split())


def heading_like(unit: _Unit) -> bool:
    """Short, not a list item, and without the punctuation that ends a sentence
    (a question may be a heading, unless it is a quotation)."""
    text = unit.visible
    if unit.listed or unit.words > MAX_HEADING_WORDS or not any(c.isalnum() for c in text):
        return False
    last = text.rstrip(_CLOSING)[-1:]
    if last == "?":
        return text[:1] not in _OPENING_QUOTES
    return last not in _SENTENCE_END


def _units(text: str) -> list[_Unit]:
    units: list[_Unit] = []
    previous_end = -1
    for line in iter_lines(text):
        shown = visible(line.text)
        heading = _MARKDOWN_HEADING.match(line.text)
        listed = bool(_LIST_ITEM.match(line.text)) and not heading
        last = units[-1] if units else None
        if (
            last is not None
            and not heading
            and not listed
            and not last.level
            and not last.listed
            and text.count("\n", previous_end, line.start)
            + text.count("\r", previous_end, line.start)
            == 1
            and last.visible[-1:] not in ".!?…:;"
            and shown[:1].islower()
        ):
            last.end, last.visible = line.end, f"{last.visible} {shown}"
        else:
            unit = _Unit(line.start, line.end, shown, listed=listed)
            if heading:
                unit.level, unit.visible = len(heading.group(1)), visible(heading.group(2))
            if _IMAGE.fullmatch(line.text.strip()):
                unit.kind = "caption"
            units.append(unit)
        previous_end = line.end
    return units


class Reader:
    """Reads documents with one set of boilerplate rules."""

    def __init__(self, rules: Boilerplate) -> None:
        self.rules = rules

    def read(self, text: str, format: str) -> Document:
        """The document's title, sections and skipped spans (`format`: plain_text,
        markdown or html, the latter already rendered as Markdown-like text)."""
        units = _units(text)
        stamps = {id(u) for u in units if self.rules.live_blog_timestamp(u.visible)}
        for unit in units:
            if len(stamps) >= 2 and id(unit) in stamps:
                unit.role = "stamp"
            elif not any(c.isalnum() for c in unit.visible) and unit.kind is None:
                unit.role = "blank"
            elif unit.kind is None:
                unit.kind = self.rules.kind(unit.visible)
        self._leads(units)
        title = self._title(units, format)
        self._ends(units)
        self._roles(units)
        return _assemble(text, format, title, units)

    def _leads(self, units: list[_Unit]) -> None:
        """A lead line takes the next line; a `related` line (or a `navigation` lead)
        takes the list of short lines after it."""
        for index, unit in enumerate(units):
            lead = None if unit.role in ("blank", "stamp") else self.rules.lead(unit.visible)
            if lead is not None:
                unit.kind = lead
            if lead is not None and lead not in LIST_KINDS:
                _take_next(units, index, lead)
            elif unit.kind == "related" or lead in LIST_KINDS:
                _take_list(units, index, str(unit.kind))

    def _title(self, units: list[_Unit], format: str) -> str:
        """The `#` title (what precedes it is page header), or a short first line."""
        candidates = [u for u in units if u.role != "blank"]
        if format != "plain_text":
            for index, unit in enumerate(candidates[:TITLE_WITHIN]):
                if unit.level == 1 and unit.kind is None:
                    unit.role = "title"
                    for before in candidates[:index]:
                        before.kind = before.kind or "header"
                    return unit.visible
        first = next((u for u in candidates if u.kind is None), None)
        if first is None or first is not candidates[0] or first.role == "stamp":
            return ""
        after = candidates[1] if len(candidates) > 1 else None
        if after is not None and after.kind == "channel":
            first.kind = "channel"
            return ""
        if first.words > MAX_TITLE_WORDS or first.visible.rstrip(_CLOSING).endswith("."):
            return ""
        first.role = "title"
        return first.visible

    def _ends(self, units: list[_Unit]) -> None:
        """Trailers that count only after the article's last paragraph."""
        for unit in reversed(units):
            if unit.role in ("blank", "title") or unit.kind is not None:
                continue
            if not _prose(unit):
                continue
            kind = self.rules.end(unit.visible)
            if kind is None:
                return
            unit.kind = kind

    def _roles(self, units: list[_Unit]) -> None:
        live = [u for u in units if u.kind is None and u.role not in ("blank", "title")]
        first_body = next((i for i, u in enumerate(live) if _starts_content(u)), len(live))
        last_body = max((i for i, u in enumerate(live) if _prose(u)), default=-1)
        for index, unit in enumerate(live):
            if unit.role == "stamp":
                continue
            if unit.level:
                after_stamp = index > 0 and live[index - 1].role == "stamp"
                unit.role = "entry" if after_stamp else "heading"
            elif not heading_like(unit):
                unit.role = "body"
            elif index < first_body:
                unit.kind = "header"
            elif _heads_paragraph(live, index):
                after_stamp = index > 0 and live[index - 1].role == "stamp"
                unit.role = "entry" if after_stamp else "heading"
            else:
                unit.kind = "footer" if index > last_body else "navigation"
        for unit in live[last_body + 1 :]:
            if unit.role in ("heading", "stamp", "entry"):  # heads nothing: furniture
                unit.kind = "footer"
        for unit in units:
            if unit.kind is not None and unit.role not in ("blank", "title"):
                unit.role = "skip"


def _prose(unit: _Unit) -> bool:
    return unit.role not in ("blank", "stamp") and not unit.level and not heading_like(unit)


def _starts_content(unit: _Unit) -> bool:
    return unit.role == "stamp" or unit.level > 1 or _prose(unit)


def _listed_line(unit: _Unit) -> bool:
    """A line of a list of links: a headline, not a paragraph."""
    last = unit.visible.rstrip(_CLOSING)[-1:]
    return unit.words <= MAX_LISTED_WORDS and last not in ".!…;,"


def _take_next(units: Sequence[_Unit], index: int, kind: str) -> None:
    taken = next((units[i] for i in range(index + 1, len(units)) if units[i].role != "blank"), None)
    if taken is not None and taken.kind is None and not taken.level:
        taken.kind = kind


def _take_list(units: Sequence[_Unit], index: int, kind: str) -> None:
    """The short lines after a list title, up to a paragraph or a heading."""
    for position in range(index + 1, len(units)):
        item = units[position]
        if item.role == "blank" or item.kind is not None:
            continue
        if item.level or not _listed_line(item):
            return
        if not item.listed and _heads_paragraph(units, position):
            return
        item.kind = kind


def _heads_paragraph(units: Sequence[_Unit], index: int) -> bool:
    """The next line that is not skipped is a paragraph."""
    for position in range(index + 1, len(units)):
        unit = units[position]
        if unit.role == "blank" or unit.kind is not None:
            continue
        return _prose(unit)
    return False


def _assemble(text: str, format: str, title: str, units: list[_Unit]) -> Document:
    document = Document(text=text, format=format, title=title)
    builder: _SectionBuilder | None = None
    for unit in units:
        if unit.role == "title":
            document.skipped.append(Skipped(unit.start, unit.end, "title"))
        elif unit.role == "skip":
            document.skipped.append(Skipped(unit.start, unit.end, unit.kind or "navigation"))
        elif unit.role == "entry" and builder is not None and builder.heading_only:
            builder.head(unit)
        elif unit.role in ("heading", "stamp", "entry"):
            if builder is not None:
                document.sections.append(builder.build(text))
            builder = _SectionBuilder()
            builder.head(unit)
        elif unit.role == "body":
            if builder is None:
                builder = _SectionBuilder()
            builder.body(unit)
    if builder is not None:
        document.sections.append(builder.build(text))
    return document


class _SectionBuilder:
    def __init__(self) -> None:
        self.heading: list[_Unit] = []
        self.paragraphs: list[_Unit] = []

    @property
    def heading_only(self) -> bool:
        return bool(self.heading) and not self.paragraphs

    def head(self, unit: _Unit) -> None:
        self.heading.append(unit)

    def body(self, unit: _Unit) -> None:
        self.paragraphs.append(unit)

    def build(self, text: str) -> DocumentSection:
        segments: list[tuple[int, int, int]] = []
        pieces: list[str] = []
        position = 0
        for unit in self.heading:
            raw = text[unit.start : unit.end]
            title = unit.visible if unit.visible in raw else raw.lstrip("#").strip()
            at = raw.find(title)
            if pieces:
                pieces.append(" ")
                position += 1
            if at >= 0:
                segments.append((position, unit.start + at, len(title)))
            else:
                segments.append((position, unit.start, 0))
            pieces.append(title)
            position += len(title)
        heading = "".join(pieces)
        heading_length = len(heading)
        model = [heading] if heading else []
        if heading:
            position += 1
        for unit in self.paragraphs:
            segments.append((position, unit.start, unit.end - unit.start))
            model.append(text[unit.start : unit.end])
            position += unit.end - unit.start + 1
        return DocumentSection(
            heading=heading,
            parts=tuple((u.start, u.end) for u in [*self.heading, *self.paragraphs]),
            model_text="\n".join(model),
            segments=tuple(segments),
            heading_length=heading_length,
        )
