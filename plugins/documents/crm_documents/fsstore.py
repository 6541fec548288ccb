"""The content store on any fsspec-compatible file system (``[plugins.documents] storage_url``:
``memory://docs``, ``file:///srv/crm-documents``, ``s3://bucket/prefix``, ...): the same
contents by SHA-256, two levels deep, as the local folder of :mod:`crm_documents.store`, and
the same checks. Needs ``fsspec`` (the plugin's ``fsspec`` extra) and the package of the
protocol named (``s3fs`` for ``s3://``...)."""

from __future__ import annotations

import hashlib
from typing import Any

import attrs
from crmcore.errors import ConfigError, NotFoundError

from crm_documents.store import check_content, check_digest

__all__ = ["FsspecContentStore"]


def _filesystem(url: str) -> tuple[Any, str]:
    try:
        import fsspec
    except ImportError:
        raise ConfigError(
            f"plugins.documents.storage_url {url!r} needs fsspec; install crm-documents[fsspec]",
            key="plugins.documents.storage_url",
        ) from None
    try:
        fs, root = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise ConfigError(
            f"plugins.documents.storage_url {url!r} cannot be opened: {exc}; install the package "
            "of its protocol or fix the URL",
            key="plugins.documents.storage_url",
        ) from exc
    return fs, root.rstrip("/")


@attrs.define(eq=False)
class FsspecContentStore:
    """Contents by hash under the fsspec *url*."""

    url: str
    max_size: int = 100 * 1024 * 1024
    _fs: Any = attrs.field(init=False, default=None, repr=False)
    _root: str = attrs.field(init=False, default="", repr=False)

    def __attrs_post_init__(self) -> None:
        self._fs, self._root = _filesystem(self.url)

    def _key(self, digest: str) -> str:
        check_digest(digest)
        return f"{self._root}/{digest[:2]}/{digest}"

    def path(self, digest: str) -> str:
        """The URL of the content of *digest* (as stored on the document version).

        :raises ValidationError: for text that is not a SHA-256 in hex.
        """
        key = self._key(digest)
        return self._fs.unstrip_protocol(key)  # type: ignore[no-any-return]

    def put(self, data: bytes) -> tuple[str, int, bool]:
        """Store *data*; returns its hash, its size and whether it was new.

        :raises ValidationError: for an empty content or one over the size limit.
        """
        check_content(data, self.max_size)
        digest = hashlib.sha256(data).hexdigest()
        key = self._key(digest)
        if self._fs.exists(key):
            return digest, len(data), False
        self._fs.makedirs(key.rpartition("/")[0], exist_ok=True)
        self._fs.pipe_file(key, data)
        return digest, len(data), True

    def get(self, digest: str) -> bytes:
        """The content of *digest*.

        :raises NotFoundError: when the store lacks it (or it no longer matches its hash).
        """
        key = self._key(digest)
        try:
            data: bytes = self._fs.cat_file(key)
        except FileNotFoundError:
            raise NotFoundError(
                f"the content {digest} is missing from the document store {self.url!r}",
                entity="document_version",
            ) from None
        if hashlib.sha256(data).hexdigest() != digest:
            raise NotFoundError(
                f"the content {digest} in {self.url!r} no longer matches its hash",
                entity="document_version",
            )
        return data
