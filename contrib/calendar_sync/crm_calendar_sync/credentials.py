"""Calendar account passwords, stored encrypted.

A password is encrypted with Fernet (AES-128-CBC with an HMAC, from ``cryptography``) under the
key of ``[plugins.calendar_sync] secret_key`` and kept in the account's ``secret`` field; it is
decrypted only to open a connection to the server, and never printed or logged (the account's
``secret`` holds the token, not the password). Without the key, storing or using a password is
refused with a message saying how to make one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
from crmcore.errors import ConfigError

if TYPE_CHECKING:
    from crmcore import Crm, UnitOfWork
    from crmcore.records import Record

__all__ = ["CalendarSettings", "account_password", "set_password"]

_NO_KEY = (
    "[plugins.calendar_sync] secret_key is not set, so calendar passwords cannot be stored or read; "
    "make a key with python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())' "
    "and put it in the settings"
)


@attrs.frozen(repr=False)
class CalendarSettings:
    """The plugin's settings (its state on the app)."""

    secret_key: str = ""
    sync_interval_minutes: int = 15

    @classmethod
    def from_table(cls, table: dict[str, Any]) -> CalendarSettings:
        return cls(secret_key=str(table.get("secret_key") or ""),
                   sync_interval_minutes=int(table.get("sync_interval_minutes") or 15))

    def __repr__(self) -> str:
        return (f"<CalendarSettings secret_key={'set' if self.secret_key else 'unset'} "
                f"sync_interval_minutes={self.sync_interval_minutes}>")


def _fernet(crm: Crm) -> Any:
    from cryptography.fernet import Fernet

    key = crm.state(CalendarSettings).secret_key
    if not key:
        raise ConfigError(_NO_KEY)
    try:
        return Fernet(key.encode())
    except ValueError:
        raise ConfigError("[plugins.calendar_sync] secret_key is not a Fernet key (32 url-safe base64-encoded bytes); "
                          "make one with Fernet.generate_key()") from None


def set_password(uow: UnitOfWork, account: Record | int, password: str) -> Record:
    """Store *password* of calendar *account*, encrypted."""
    token = _fernet(uow.crm).encrypt(password.encode()).decode()
    return uow.update("calendar_account", account if isinstance(account, int) else account.id, secret=token)


def account_password(crm: Crm, account: Record) -> str | None:
    """The password of *account*, decrypted; ``None`` when it has none."""
    from cryptography.fernet import InvalidToken

    token = account.get("secret")
    if not token:
        return None
    try:
        return str(_fernet(crm).decrypt(token.encode()).decode())
    except InvalidToken:
        raise ConfigError(f"the password of calendar account {account.id} was stored with another secret_key; "
                          "set it again with crm calendar account password") from None
