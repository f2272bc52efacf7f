"""READMEs and Markdown referrers as safe HTML: CommonMark (``markdown-it-py``), then ``nh3``.

A README is written by whoever may configure a repository and read by everyone who may pull
it, so it is untrusted input rendered into the registry's own origin. CommonMark admits raw
HTML; rather than forbid it, the rendered HTML goes through an allow-list sanitiser: no
scripts, styles, iframes or forms, no event-handler attributes, links only to ``http``,
``https`` and ``mailto`` (never ``javascript:``), and images only from the registry itself
(a path on this origin) or ``data:image/...`` URIs, so a README can't make readers' browsers
fetch from elsewhere (tracking pixels, leaking who reads what).
"""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt

_MARKDOWN = MarkdownIt("commonmark", {"html": True, "linkify": False, "typographer": False}).enable("table")

_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "div", "dl", "dt", "em",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "ol", "p", "pre", "q",
    "s", "samp", "small", "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot",
    "th", "thead", "tr", "tt", "u", "ul", "var",
}  # fmt: skip
_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"align", "colspan", "rowspan"},
    "th": {"align", "colspan", "rowspan", "scope"},
    "ol": {"start"},
    "code": {"class"},
    "*": {"id"},
}
_IMAGE_DATA = ("data:image/png", "data:image/jpeg", "data:image/gif", "data:image/webp")


def _registry_image(src: str) -> bool:
    """A path on this origin, or an inline raster image (an SVG may carry script: not admitted)."""
    lowered = src.strip().lower()
    if lowered.startswith(_IMAGE_DATA):
        return True
    return lowered.startswith("/") and not lowered.startswith("//") and "\\" not in lowered


def _filter(tag: str, attribute: str, value: str) -> str | None:
    if tag == "img" and attribute == "src":
        return value if _registry_image(value) else None
    if tag == "a" and attribute == "href" and value.strip().lower().startswith("data:"):
        return None
    return value


def sanitize(html: str) -> str:
    """``html`` reduced to the allow-list above."""
    return nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto", "data"},  # data: only survives on <img> (_filter)
        attribute_filter=_filter,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def render_markdown(text: str) -> str:
    """CommonMark ``text`` as sanitised HTML."""
    return sanitize(_MARKDOWN.render(text))
