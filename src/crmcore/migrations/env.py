"""The Alembic environment shared by every version branch of a crmcore database.

:mod:`crmcore.storage.migrations` runs Alembic programmatically and hands this script, through
``config.attributes``, the open connection (``"connection"``), the app (``"crm"``) and the
plugin whose branch is being migrated (``"plugin"``). The app's own metadata is the target, the
branch's version table and object filter come from :func:`crmcore.storage.migrations.context_options`.
Scripts render in batch mode so that they run on SQLite as well as PostgreSQL.
"""

from __future__ import annotations

from alembic import context

from crmcore.errors import ConfigError
from crmcore.storage import migrations

config = context.config

if context.is_offline_mode():
    raise ConfigError(
        "crmcore migrations run against a live database only; use 'crm db upgrade' "
        "(or Crm.upgrade()) instead of generating SQL offline"
    )

connection = config.attributes.get("connection")
crm = config.attributes.get("crm")
plugin = config.attributes.get("plugin")
if connection is None or crm is None or plugin is None:
    raise ConfigError(
        "the crmcore Alembic environment needs an app, a plugin and an open connection; "
        "run migrations through 'crm db upgrade' or crmcore.storage.migrations"
    )

context.configure(
    connection=connection,
    target_metadata=crm.metadata,
    **migrations.context_options(crm, plugin, connection),
)

with context.begin_transaction():
    context.run_migrations()
