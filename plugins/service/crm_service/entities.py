"""The entity types of the service plugin (tables ``service_<entity>``).

The installed base: ``location`` (a tree of sites and rooms of an account) and
``installed_unit`` (a piece of equipment with its serial number, product, place and parent
unit). A unit's product is its own fields (``product_code``, ``product_name``,
``product_group``), so the plugin runs without a catalog; a catalog plugin may fill them.
"""

from __future__ import annotations

from crmcore import EntityType, Field
from crmcore.fields import Choice, Date, Reference, String, Text

__all__ = ["ENTITIES", "INSTALLED_UNIT", "LOCATION", "UNIT_STATUSES"]

#: The states of an installed unit.
UNIT_STATUSES = ("active", "in_repair", "inactive", "scrapped")

LOCATION = EntityType(
    "location",
    fields=(
        Field("name", String(200), required=True),
        Field("account_id", Reference("account", on_delete="cascade"), label="Account"),
        Field(
            "parent_id",
            Reference("location", on_delete="cascade"),
            label="Inside",
            help="The location this one is part of (a building's floor, a floor's room).",
        ),
        Field("street", String(200)),
        Field("postal_code", String(20)),
        Field("city", String(100)),
        Field("country", String(100)),
    ),
    help="A customer site or a place inside one; locations form a tree.",
)

INSTALLED_UNIT = EntityType(
    "installed_unit",
    fields=(
        Field("serial_number", String(100), required=True, unique=True, aliases=("Serial",)),
        Field("product_code", String(64), required=True, index=True, aliases=("SKU",)),
        Field("product_name", String(200)),
        Field("product_group", String(64), index=True),
        Field("account_id", Reference("account", on_delete="restrict"), label="Account",
              index=True),
        Field("location_id", Reference("location", on_delete="set_null"), label="Location"),
        Field("site_address", Text(), help="Where the unit stands, when no location is kept."),
        Field(
            "parent_id",
            Reference("installed_unit", on_delete="set_null"),
            label="Part of",
            help="The unit this one is a component of.",
        ),
        Field("delivery_date", Date()),
        Field("install_date", Date()),
        Field("status", Choice(*UNIT_STATUSES), default="active", index=True),
    ),
    label="Unit",
    title_field="serial_number",
    help="A piece of equipment at a customer's site (an asset of the installed base).",
)

ENTITIES = (LOCATION, INSTALLED_UNIT)
