"""The text of a content, for full-text search: PDF pages through pypdf, text files decoded
(UTF-8, else Latin-1); other media types have none."""

from __future__ import annotations

import io
import logging
import mimetypes

__all__ = ["MAX_TEXT", "extract", "media_type"]

log = logging.getLogger(__name__)

#: The most characters kept of a content's text.
MAX_TEXT = 1_000_000
_TEXTUAL = ("application/json", "application/xml", "application/csv")


def media_type(filename: str | None, data: bytes) -> str:
    """The media type of a content: from its first bytes for PDF, else from *filename*, else
    ``text/plain`` for UTF-8 text without control characters."""
    if data[:5] == b"%PDF-":
        return "application/pdf"
    guessed = mimetypes.guess_type(filename or "")[0]
    if guessed:
        return guessed
    try:
        decoded = data[:65536].decode("utf-8")
    except UnicodeDecodeError:
        return "application/octet-stream"
    if any(ord(ch) < 32 and ch not in "\t\n\r\f" for ch in decoded):
        return "application/octet-stream"
    return "text/plain"


def extract(data: bytes, media: str) -> str | None:
    """The text of *data* of media type *media*, or ``None`` when it has none to offer (or
    a PDF cannot be read, which is logged)."""
    if media == "application/pdf":
        from pypdf import PdfReader
        from pypdf.errors import PyPdfError

        try:
            reader = PdfReader(io.BytesIO(data))
            text = "\n".join(page.extract_text() or "" for page in reader.pages)
        except (PyPdfError, ValueError, KeyError) as exc:
            log.warning("no text from a PDF of %d bytes: %s", len(data), type(exc).__name__)
            return None
        return text[:MAX_TEXT] or None
    if media.startswith("text/") or media in _TEXTUAL:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
        return text[:MAX_TEXT] or None
    return None
