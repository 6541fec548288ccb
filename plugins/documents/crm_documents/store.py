"""The content store: files named by the SHA-256 of their content in a local folder
(``[plugins.documents] storage_path``; any fsspec file system with ``storage_url``, see
:mod:`crm_documents.fsstore`), two levels deep (``ab/abcdef...``). A content stored
twice is kept once. Contents are written before the unit of work commits (atomically, through
a temporary file and a rename); a unit that rolls back leaves a content nothing refers to,
which costs space but never a wrong answer."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

import attrs
from crmcore.errors import NotFoundError, ValidationError

__all__ = ["ContentStore", "check_content", "check_digest"]

_HASH = re.compile(r"[0-9a-f]{64}")


def check_digest(digest: str) -> None:
    """:raises ValidationError: for text that is not a SHA-256 in hex."""
    if not _HASH.fullmatch(digest):
        raise ValidationError(
            {"content_hash": [f"not a SHA-256 in hex: {digest!r}"]}, entity="document_version"
        )


def check_content(data: bytes, max_size: int) -> None:
    """:raises ValidationError: for an empty content or one over *max_size* bytes."""
    if not data:
        raise ValidationError({"content": ["the content is empty"]}, entity="document_version")
    if len(data) > max_size:
        raise ValidationError(
            {
                "content": [
                    f"the content has {len(data)} bytes, more than the {max_size} "
                    "allowed ([plugins.documents] max_size_mb)"
                ]
            },
            entity="document_version",
        )


@attrs.define(eq=False)
class ContentStore:
    """Contents by hash under *root*."""

    root: Path
    max_size: int = 100 * 1024 * 1024

    def path(self, digest: str) -> Path:
        """Where the content of *digest* lives.

        :raises ValidationError: for text that is not a SHA-256 in hex.
        """
        check_digest(digest)
        return self.root / digest[:2] / digest

    def put(self, data: bytes) -> tuple[str, int, bool]:
        """Store *data*; returns its hash, its size and whether it was new.

        :raises ValidationError: for an empty content or one over the size limit.
        """
        check_content(data, self.max_size)
        digest = hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        if target.exists():
            return digest, len(data), False
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return digest, len(data), True

    def get(self, digest: str) -> bytes:
        """The content of *digest*.

        :raises NotFoundError: when the store lacks it (or it no longer matches its hash).
        """
        target = self.path(digest)
        try:
            data = target.read_bytes()
        except FileNotFoundError:
            raise NotFoundError(
                f"the content {digest} is missing from the document store {str(self.root)!r}",
                entity="document_version",
            ) from None
        if hashlib.sha256(data).hexdigest() != digest:
            raise NotFoundError(
                f"the content {digest} in {str(self.root)!r} no longer matches its hash",
                entity="document_version",
            )
        return data
