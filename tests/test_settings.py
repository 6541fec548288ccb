"""Deployment settings: every mistake in ``crm.toml`` is one clear error naming file, key and
value; plugin settings are checked against what each plugin declares; the environment
overrides the file."""

from __future__ import annotations

import pytest

from crmcore import ConfigError, DatabaseError, PluginInfo, Setting, create_app, hookimpl
from crmcore.settings import DEFAULT_DATABASE, load_settings


@pytest.fixture(autouse=True)
def _no_environment_overrides(monkeypatch):
    monkeypatch.delenv("CRM_PLUGINS", raising=False)
    monkeypatch.delenv("CRM_DATABASE_URL", raising=False)


def write(tmp_path, text):
    path = tmp_path / "crm.toml"
    path.write_text(text, encoding="utf-8")
    return path


class Helpdesk:
    """A plugin declaring settings."""

    PLUGIN = PluginInfo(
        name="helpdesk",
        settings={
            "sla_hours": Setting(int, default=8),
            "queues": Setting(list, default=["support"]),
            "mailbox": Setting(str, required=True),
        },
        sections=("helpdesk_queues",),
    )

    def __init__(self):
        self.seen = None

    @hookimpl
    def crm_configure(self, settings):
        self.seen = settings


# -- the file -----------------------------------------------------------------------------------


def test_a_valid_file_is_read(tmp_path):
    path = write(tmp_path, """
[crm]
database = "sqlite:///x.db"
plugins = ["helpdesk"]
timezone = "Europe/Paris"
currency = "EUR"

[plugins.helpdesk]
sla_hours = 4

[custom_fields.account]
loyalty = { type = "choice", choices = ["bronze", "gold"] }
""")
    settings = load_settings(path)
    assert (settings.database, settings.plugins, settings.timezone, settings.currency) == (
        "sqlite:///x.db", ("helpdesk",), "Europe/Paris", "EUR")
    assert settings.plugin_settings == {"helpdesk": {"sla_hours": 4}}
    assert settings.custom_fields == {"account": {"loyalty": {"type": "choice", "choices": ["bronze", "gold"]}}}
    assert settings.path == str(path)


def test_defaults_apply_without_a_file():
    settings = load_settings()
    assert (settings.database, settings.plugins, settings.timezone, settings.currency) == (
        DEFAULT_DATABASE, (), "UTC", "USD")


def test_malformed_toml_names_the_file_and_line(tmp_path):
    path = write(tmp_path, '[crm]\ndatabase = "sqlite:///x.db"\nplugins = ["a" "b"]\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(info.value).startswith(f"{path}: malformed TOML: ")
    assert "line 3" in str(info.value)
    assert info.value.path == str(path)


def test_malformed_toml_at_the_end_names_the_last_line(tmp_path):
    path = write(tmp_path, '[crm]\ndatabase = "sqlite:///x.db"\nplugins = ["a", \n')
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(info.value).startswith(f"{path}: malformed TOML: ")
    assert "line 3" in str(info.value)
    assert info.value.path == str(path)


def test_settings_file_that_is_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "crm.toml"
    path.write_bytes(b'[crm]\ncurrency = "\xff"\n')
    with pytest.raises(ConfigError, match=r"malformed TOML: not UTF-8 text \(at line 2\)"):
        load_settings(path)


def test_missing_file_says_how_to_write_one(tmp_path):
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError, match=r"settings file .*absent\.toml not found; run 'crm init' to write one"):
        load_settings(path)


def test_unknown_key_in_crm_names_file_key_and_value(tmp_path):
    path = write(tmp_path, '[crm]\ndatabse = "sqlite:///x.db"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(info.value) == (
        f"{path}: unknown key crm.databse = 'sqlite:///x.db'; "
        "known keys: busy_timeout, currency, database, disabled, echo_sql, plugins, timezone"
    )
    assert (info.value.path, info.value.key) == (str(path), "crm.databse")


def test_wrong_type_in_crm_names_file_key_and_value(tmp_path):
    path = write(tmp_path, '[crm]\nplugins = "helpdesk"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(info.value) == f"{path}: crm.plugins must be a list, got 'helpdesk'"
    assert info.value.key == "crm.plugins"


def test_plugin_name_that_is_not_text_is_refused(tmp_path):
    path = write(tmp_path, "[crm]\nplugins = [1]\n")
    with pytest.raises(ConfigError, match=r"crm\.plugins must be text, got 1"):
        load_settings(path)


def test_boolean_is_not_accepted_for_text(tmp_path):
    path = write(tmp_path, "[crm]\ndatabase = true\n")
    with pytest.raises(ConfigError, match=r"crm\.database must be text, got True"):
        load_settings(path)


def test_crm_that_is_not_a_table_is_refused(tmp_path):
    path = write(tmp_path, 'crm = "sqlite:///x.db"\n')
    with pytest.raises(ConfigError, match=r"\[crm\] must be a table"):
        load_settings(path)


def test_unknown_time_zone_names_key_and_value(tmp_path):
    path = write(tmp_path, '[crm]\ntimezone = "Europe/Pariss"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(info.value) == (
        f"{path}: crm.timezone: unknown time zone 'Europe/Pariss'; use an IANA name such as 'Europe/Paris'"
    )
    assert info.value.key == "crm.timezone"


def test_unknown_currency_names_key_and_value(tmp_path):
    path = write(tmp_path, '[crm]\ncurrency = "EURO"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(info.value) == f"{path}: crm.currency must be an ISO 4217 code such as 'EUR', got 'EURO'"


def test_unknown_custom_field_key_names_file_key_and_value(tmp_path):
    path = write(tmp_path, '[custom_fields.account]\nloyalty = { type = "string", maxlength = 20 }\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(info.value).startswith(f"{path}: unknown key custom_fields.account.loyalty.maxlength = 20; known keys: ")
    assert info.value.key == "custom_fields.account.loyalty.maxlength"


def test_custom_field_key_of_wrong_type_names_key_and_value(tmp_path):
    path = write(tmp_path, '[custom_fields.account]\nloyalty = { type = "string", required = "yes" }\n')
    with pytest.raises(ConfigError, match=r"custom_fields\.account\.loyalty\.required must be true or false, got 'yes'"):
        load_settings(path)


def test_custom_field_without_a_type_is_refused(tmp_path):
    path = write(tmp_path, '[custom_fields.account]\nloyalty = { label = "Loyalty" }\n')
    with pytest.raises(ConfigError, match=r'custom_fields\.account\.loyalty needs a type, such as type = "string"'):
        load_settings(path)


def test_custom_field_that_is_not_a_table_is_refused(tmp_path):
    path = write(tmp_path, '[custom_fields.account]\nloyalty = "string"\n')
    with pytest.raises(ConfigError, match=r"custom_fields\.account\.loyalty must be a table .*, got 'string'"):
        load_settings(path)


def test_custom_field_of_unknown_type_names_file_and_key(crm_factory, tmp_path):
    path = write(tmp_path, '[custom_fields.account]\nloyalty = { type = "colour" }\n')
    with pytest.raises(ConfigError) as info:
        create_app(path, database="sqlite://")
    assert str(info.value).startswith(f"{path}: custom_fields.account.loyalty.type: unknown field type 'colour'")


def test_unknown_top_level_table_names_file_table_and_known_ones(tmp_path):
    path = write(tmp_path, '[crm]\ndatabase = "sqlite://"\n\n[pipelins]\nsales = 1\n')
    with pytest.raises(ConfigError) as info:
        create_app(path)
    assert str(info.value).startswith(
        f"{path}: unknown table [pipelins] = {{'sales': 1}}; known tables: crm, plugins, custom_fields"
    )
    assert info.value.key == "pipelins"


def test_plugin_may_own_a_top_level_table(crm_factory):
    app = crm_factory([Helpdesk()], {"plugins": {"helpdesk": {"mailbox": "x"}}, "helpdesk_queues": {"first": {}}})
    assert app.settings.sections == {"helpdesk_queues": {"first": {}}}


def test_plugins_table_that_is_not_per_plugin_is_refused(tmp_path):
    path = write(tmp_path, '[crm]\nplugins = ["x"]\n\n[plugins]\nx = 1\n')
    with pytest.raises(ConfigError, match=r"\[plugins\.x\] must be a table, got 1"):
        load_settings(path)


# -- plugin settings ------------------------------------------------------------------------------


def test_settings_for_a_plugin_that_is_not_enabled_name_it(crm_factory):
    with pytest.raises(ConfigError) as info:
        crm_factory(settings={"crm": {"disabled": ["sales"]}, "plugins": {"warranty": {"months": 24}}})
    assert str(info.value) == (
        "settings: [plugins.warranty] configures a plugin that is not enabled; enabled: none"
    )
    assert info.value.key == "plugins.warranty"


def test_plugin_settings_get_declared_defaults(crm_factory):
    plugin = Helpdesk()
    crm_factory([plugin], {"plugins": {"helpdesk": {"mailbox": "support@example.com"}}})
    assert plugin.seen == {"mailbox": "support@example.com", "sla_hours": 8, "queues": ["support"]}


def test_plugin_settings_given_values_win_over_defaults(crm_factory):
    plugin = Helpdesk()
    crm_factory([plugin], {"plugins": {"helpdesk": {"mailbox": "m", "sla_hours": 2}}})
    assert plugin.seen["sla_hours"] == 2


def test_unknown_plugin_setting_names_key_value_and_known_keys(crm_factory):
    with pytest.raises(ConfigError) as info:
        crm_factory([Helpdesk()], {"plugins": {"helpdesk": {"mailbox": "m", "sla_hour": 2}}})
    assert str(info.value) == (
        "settings: unknown key plugins.helpdesk.sla_hour = 2; known keys: mailbox, queues, sla_hours"
    )


def test_plugin_setting_of_wrong_type_names_key_and_value(crm_factory):
    with pytest.raises(ConfigError) as info:
        crm_factory([Helpdesk()], {"plugins": {"helpdesk": {"mailbox": "m", "sla_hours": "eight"}}})
    assert str(info.value) == "settings: plugins.helpdesk.sla_hours must be a whole number, got 'eight'"
    assert info.value.key == "plugins.helpdesk.sla_hours"


def test_missing_required_plugin_setting_is_named(crm_factory):
    with pytest.raises(ConfigError, match=r"settings: plugins\.helpdesk\.mailbox is required"):
        crm_factory([Helpdesk()])


def test_plugin_setting_errors_name_the_file(tmp_path):
    path = write(tmp_path, '[crm]\ndatabase = "sqlite://"\n\n[plugins.helpdesk]\nmailbox = 3\n')
    with pytest.raises(ConfigError) as info:
        create_app(path, plugins=[Helpdesk()])
    assert str(info.value) == f"{path}: plugins.helpdesk.mailbox must be text, got 3"


# -- keyword arguments and environment ----------------------------------------------------------


def test_keyword_arguments_override_the_file(tmp_path):
    path = write(tmp_path, '[crm]\ndatabase = "sqlite:///x.db"\ncurrency = "EUR"\n')
    settings = load_settings(path, database="sqlite://", currency="GBP")
    assert (settings.database, settings.currency) == ("sqlite://", "GBP")


def test_unknown_keyword_argument_is_refused():
    with pytest.raises(ConfigError, match=r"unknown key crm\.colour = 'red'"):
        load_settings(colour="red")


def test_crm_plugins_environment_overrides_the_file(tmp_path, monkeypatch):
    path = write(tmp_path, '[crm]\nplugins = ["helpdesk"]\n')
    monkeypatch.setenv("CRM_PLUGINS", "warranty, campaigns ,")
    assert load_settings(path).plugins == ("warranty", "campaigns")


def test_empty_crm_plugins_environment_enables_no_plugin(tmp_path, monkeypatch):
    path = write(tmp_path, '[crm]\nplugins = ["helpdesk"]\n')
    monkeypatch.setenv("CRM_PLUGINS", "")
    assert load_settings(path).plugins == ()


def test_crm_database_url_environment_overrides_the_file(tmp_path, monkeypatch):
    path = write(tmp_path, '[crm]\ndatabase = "sqlite:///x.db"\n')
    monkeypatch.setenv("CRM_DATABASE_URL", "postgresql+psycopg://crm@db/crm")
    assert load_settings(path).database == "postgresql+psycopg://crm@db/crm"


def test_explicit_database_argument_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("CRM_DATABASE_URL", "postgresql+psycopg://crm@db/crm")
    assert load_settings(database="sqlite://").database == "sqlite://"


def test_settings_are_frozen():
    settings = load_settings()
    with pytest.raises(AttributeError):
        settings.database = "sqlite://"


def test_settings_object_passes_through_unchanged():
    settings = load_settings(currency="EUR")
    assert load_settings(settings) is settings
    assert load_settings(settings, timezone="Europe/Paris").currency == "EUR"


def test_app_reads_a_file_end_to_end(tmp_path):
    path = write(tmp_path, """
[crm]
database = "sqlite://"
currency = "CHF"

[custom_fields.contact]
shoe_size = { type = "integer", label = "Shoe size" }
""")
    app = create_app(path)
    try:
        app.create_schema()
        with app.unit_of_work() as uow:
            contact = uow.create("contact", last_name="Lovelace", shoe_size="38")
            uow.commit()
        assert contact.shoe_size == 38
        assert app.registry.entity("account").field("annual_revenue").type.currency == "CHF"
    finally:
        app.close()


# -- the database URL ---------------------------------------------------------------------------


def test_unreachable_database_is_one_line_naming_it_without_the_password():
    app = create_app(database="postgresql+psycopg://crm:secret@127.0.0.1:1/crm")
    try:
        with pytest.raises(DatabaseError) as info:
            app.check_connection()
    finally:
        app.close()
    message = str(info.value)
    assert message.startswith("cannot reach database postgresql+psycopg://crm:***@127.0.0.1:1/crm: ")
    assert message.endswith("check [crm] database (or --db) and that the server is running")
    assert "secret" not in message and "\n" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_unit_of_work_on_an_unreachable_database_is_the_same_clear_error():
    app = create_app(database="postgresql+psycopg://crm@127.0.0.1:1/crm")
    try:
        with pytest.raises(DatabaseError, match=r"^cannot reach database postgresql\+psycopg://crm@127\.0\.0\.1:1/crm: "):
            with app.unit_of_work():
                pass
    finally:
        app.close()


def test_unparsable_database_url_is_named():
    app = create_app(database="not a url")
    try:
        with pytest.raises(ConfigError, match=r"cannot parse database URL 'not a url'; use 'sqlite:///crm.db'"):
            app.check_connection()
    finally:
        app.close()


def test_unsupported_database_is_named():
    app = create_app(database="mysql://crm@localhost/crm")
    try:
        with pytest.raises(ConfigError, match=r"unsupported database 'mysql://crm@localhost/crm'; crmcore runs on SQLite and PostgreSQL"):
            app.check_connection()
    finally:
        app.close()
