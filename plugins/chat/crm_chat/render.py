"""Rendering a message for one reader: Markdown to HTML with markdown-it-py (CommonMark, raw
HTML off), record mentions replaced by the labels the reader may see, then sanitised with nh3
(an allow-list of tags and attributes; links get ``rel="noopener noreferrer"``)."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping

import nh3
from markdown_it import MarkdownIt

__all__ = ["TOMBSTONE", "render"]

#: What a deleted message shows.
TOMBSTONE = "<p><em>message deleted</em></p>"
_TAGS = {
    "p",
    "br",
    "em",
    "strong",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "a",
    "del",
    "h1",
    "h2",
    "h3",
    "h4",
    "hr",
    "span",
}
_ATTRIBUTES = {"a": {"href", "title"}, "span": {"class", "data-entity", "data-id"}}
_MD = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("strikethrough")
_TOKEN = re.compile(r"#([a-z][a-z0-9_]*):(\d+)\b")


def render(
    body: str | None, labels: Mapping[tuple[str, int], str] | None = None, *, deleted: bool = False
) -> str:
    """Safe HTML of *body*; ``#entity:id`` found in *labels* becomes a span with the label
    the reader may see (``{(entity, id): label}``, from :func:`crm_chat.mentions.labels`)."""
    if deleted:
        return TOMBSTONE
    produced = _MD.render(body or "")
    known = labels or {}

    def label(match: re.Match[str]) -> str:
        key = (match.group(1), int(match.group(2)))
        if key not in known:
            return match.group(0)
        return (
            f'<span class="mention" data-entity="{key[0]}" data-id="{key[1]}">'
            f"{html.escape(known[key])}</span>"
        )

    return nh3.clean(
        _TOKEN.sub(label, produced),
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
    )
