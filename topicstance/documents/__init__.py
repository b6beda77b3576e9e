"""Documents as users send them: pasted page text, Markdown or HTML, read as articles.

`read_document` detects the format, extracts the article from HTML, and reads the
title, the sections (each with the parts of the text it was read from) and the
boilerplate skipped. No grpc here: the servicer validates and translates.
"""

from __future__ import annotations

import re

from topicstance.documents.html import DocumentError, HtmlLimits, LimitError, extract
from topicstance.documents.reading import Document, DocumentSection, Reader, Skipped
from topicstance.documents.rules import Boilerplate, Language

__all__ = [
    "FORMATS",
    "Boilerplate",
    "Document",
    "DocumentError",
    "DocumentSection",
    "HtmlLimits",
    "Language",
    "LimitError",
    "Reader",
    "Skipped",
    "detect_format",
    "read_document",
]

FORMATS = ("plain_text", "markdown", "html")
_HTML_START = re.compile(
    r"\A\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body|article|main|div|section|p"
    r"|h[1-6]|meta|title|span|table|ul|ol|header|nav)\b",
    re.IGNORECASE | re.DOTALL,
)
_CLOSING_TAG = re.compile(r"</[A-Za-z][\w-]*\s*>")
_MARKDOWN = re.compile(r"^#{1,6}[ \t]+\S|!?\[[^\]\n]+\]\([^)\s]+\)", re.MULTILINE)


def detect_format(text: str) -> str:
    """HTML when the text opens with an HTML document or element and closes a tag;
    Markdown when it has a `#` heading line or a Markdown link; else plain text."""
    if _HTML_START.match(text) and _CLOSING_TAG.search(text):
        return "html"
    if _MARKDOWN.search(text):
        return "markdown"
    return "plain_text"


def read_document(text: str, format: str, reader: Reader, limits: HtmlLimits) -> Document:
    """The document read as an article. `format` is one of FORMATS, or "" to detect it.

    Raises DocumentError (LimitError for a limit) when an HTML page cannot be read.
    """
    format = format or detect_format(text)
    if format == "html":
        title, rendered = extract(text, limits)
        document = reader.read(rendered, "html")
        document.title = title or document.title
        return document
    return reader.read(text, format)
