"""Find the article in an HTML page and render it as plain, self-describing text.

trafilatura (the field's standard extractor) drops navigation, headers, footers,
asides, figures and their captions, scripts, styles, forms and most ads, and
decodes entities. `<time>` elements are unwrapped first: trafilatura drops them as
metadata, but in a live blog they are what starts each entry.

The text it yields is rendered one block a paragraph, blank lines between:
`# Title` for the headline, `## Heading` for `h2`-`h4`, `- item` for list items,
so that `ClassifyDocumentResponse.text` reads on its own and the plain-text
reader splits it like any Markdown document.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from html import unescape

from lxml import etree

# Elements whose end tag may not be left out: how deep they nest is how deep the page is.
_CONTAINER_TAGS = (
    "div|section|article|main|span|table|ul|ol|dl|blockquote|a|b|i|em|strong|form|nav|header"
    "|footer|aside|figure|small|font|center|label|button|select|sup|sub|u|s|code|pre"
)
_TAG = re.compile(rf"<(/?)(?:{_CONTAINER_TAGS})\b[^>]*?(/?)>", re.IGNORECASE)
# Control characters other than white space, and the replacement character.
_CONTROL = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ufffd]")
_TIME = re.compile(r"</?time\b[^>]*>", re.IGNORECASE)
_HEADINGS = {"h1": "# ", "h2": "## ", "h3": "## ", "h4": "## "}
# The share of control characters above which a text is binary data, not HTML.
MAX_CONTROL_SHARE = 0.01

logging.getLogger("trafilatura").setLevel(logging.CRITICAL)


class DocumentError(Exception):
    """A document that cannot be read; the message says why (without the field name)."""


class LimitError(DocumentError):
    """A document over one of the limits: the message names the limit."""


@dataclass(frozen=True)
class HtmlLimits:
    """How large and how deep a page may be (characters; nested elements)."""

    max_chars: int = 5_000_000
    max_depth: int = 200


def nesting_depth(html: str) -> int:
    """How deep elements that need an end tag nest, by a scan of the tags (a parser
    would stop at its own limit and silently drop what lies deeper)."""
    depth = deepest = 0
    for match in _TAG.finditer(html):
        closing, self_closing = match.group(1), match.group(2)
        if self_closing:
            continue
        depth = max(0, depth - 1) if closing else depth + 1
        deepest = max(deepest, depth)
    return deepest


def check_html(html: str, limits: HtmlLimits) -> None:
    """Size, binary junk and depth, before any parser sees the page."""
    if len(html) > limits.max_chars:
        raise LimitError(
            f"is {len(html)} characters of HTML; the limit is {limits.max_chars} (max_html_chars)"
        )
    control = len(_CONTROL.findall(html))
    if control > MAX_CONTROL_SHARE * len(html):
        raise DocumentError(
            f"is not HTML: {control} of its {len(html)} characters are control characters "
            "or replacement characters (binary data?)"
        )
    depth = nesting_depth(html)
    if depth > limits.max_depth:
        raise LimitError(
            f"nests HTML elements {depth} deep; the limit is {limits.max_depth} (max_html_depth)"
        )


def extract(html: str, limits: HtmlLimits) -> tuple[str, str]:
    """(title, text): the headline and the article rendered as text.

    Raises DocumentError when the page holds no article body.
    """
    import trafilatura

    check_html(html, limits)
    try:
        found = trafilatura.bare_extraction(
            _TIME.sub("", html),
            with_metadata=False,
            include_tables=True,
            include_comments=False,
            include_images=False,
            favor_recall=True,
        )
    except (ValueError, etree.LxmlError) as exc:
        raise DocumentError(f"could not be parsed as HTML: {exc}") from exc
    body = getattr(found, "body", None) if found is not None else None
    blocks = _blocks(body) if body is not None else []
    if not any(kind == "" and any(c.isalnum() for c in text) for kind, text in blocks):
        raise DocumentError(
            "holds no article body: no paragraph of text outside scripts, navigation "
            "and page furniture"
        )
    title = next((text for kind, text in blocks if kind == "# "), "")
    if not title:
        title = page_title(html)
        if title:
            blocks.insert(0, ("# ", title))
    return title, "\n\n".join(kind + text for kind, text in blocks) + "\n"


_BLOCK_TAGS = frozenset({"p", "head", "list", "table", "quote", "row", "cell"})


_OG_TITLE = re.compile(
    r"<meta\s[^>]*property=[\"']og:title[\"'][^>]*content=[\"']([^\"']*)[\"']", re.IGNORECASE
)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_H1 = re.compile(r"<h1\b[^>]*>(.*?)</h1>", re.IGNORECASE | re.DOTALL)
_MARKUP = re.compile(r"<[^>]*>")
# " | Site", " - Site", " — Site" after a page title.
_SITE_SUFFIX = re.compile(r"\s+[|–—-]\s+[^|–—-]{1,60}$")


def page_title(html: str) -> str:
    """The first `h1`, else og:title, else the `title` element without its " | Site"
    suffix (for pages whose headline the extractor did not keep as a heading)."""
    h1 = _H1.search(html)
    if h1:
        text = " ".join(unescape(_MARKUP.sub(" ", h1.group(1))).split())
        if text:
            return text
    og = _OG_TITLE.search(html)
    if og and og.group(1).strip():
        return " ".join(unescape(og.group(1)).split())
    title = _TITLE.search(html)
    if not title:
        return ""
    return _SITE_SUFFIX.sub("", " ".join(unescape(title.group(1)).split()))


def _blocks(body: etree._Element) -> list[tuple[str, str]]:
    """(marker, text) per block of the extracted body, in order."""
    blocks: list[tuple[str, str]] = []
    for element in body:
        _render(element, blocks)
    return blocks


def _render(element: etree._Element, blocks: list[tuple[str, str]]) -> None:
    tag = element.tag
    if tag == "head":
        _add(blocks, _HEADINGS.get(str(element.get("rend", "")), ""), _text(element))
    elif tag == "list":
        for item in element.iter("item"):
            _add(blocks, "- ", _text(item))
    elif tag in ("table", "row", "cell") and any(child.tag in _BLOCK_TAGS for child in element):
        # A layout table (as in e-mails): its cells hold whole paragraphs.
        for child in element:
            _render(child, blocks)
    elif tag == "row":
        _add(blocks, "", " | ".join(_text(cell) for cell in element.iter("cell")))
    else:
        for line in _lines(element):
            _add(blocks, "", line)


def _add(blocks: list[tuple[str, str]], marker: str, text: str) -> None:
    if text:
        blocks.append((marker, text))


def _text(element: etree._Element) -> str:
    return " ".join("".join(element.itertext()).split())


def _lines(element: etree._Element) -> list[str]:
    """A paragraph's text, split where the page had line breaks (`<br>`)."""
    pieces = [element.text or ""]
    for child in element:
        if child.tag == "lb":
            pieces.append("\n")
        else:
            pieces.append("".join(child.itertext()))
        pieces.append(child.tail or "")
    return [" ".join(line.split()) for line in "".join(pieces).split("\n") if line.strip()]
