"""The columns of common contact exports, so an import of such a file needs no ``--map``.

The header rows of Outlook (desktop and Outlook.com) and Google Contacts (Google CSV, its
pre-2020 form, and its Outlook CSV) exports name about 150 columns. Those that mean a field
match it through the field's declared aliases (``Field(..., aliases=("E-mail Address",))``);
the rest (``Pager``, ``Home Fax``, ``Phonetic First Name``...) hold nothing crmcore stores, so an
import leaves them out and lists them in its report instead of refusing the file as it refuses
an unknown column. Numbered groups (``E-mail 2 - Value``) are written with ``#`` for the number.
"""

from __future__ import annotations

import re

__all__ = ["EXPORT_COLUMNS", "is_export_column"]

#: The columns of the contact exports of Outlook and Google Contacts (``#``: any number).
EXPORT_COLUMNS: tuple[str, ...] = (
    "Account", "Additional Name", "Additional Name Yomi", "Address # - City", "Address # - Country",
    "Address # - Extended Address", "Address # - Formatted", "Address # - Label", "Address # - PO Box",
    "Address # - Postal Code", "Address # - Region", "Address # - Street", "Address # - Type", "Anniversary",
    "Assistant's Name", "Assistant's Phone", "Billing Information", "Birthday", "Business Address",
    "Business Address PO Box", "Business City", "Business Country", "Business Country/Region", "Business Fax",
    "Business Phone", "Business Phone #", "Business Postal Code", "Business State", "Business Street",
    "Business Street #", "Callback", "Car Phone", "Categories", "Children", "Company", "Company Main Phone",
    "Company Yomi", "Department", "Directory Server", "E-mail # - Label", "E-mail # - Type",
    "E-mail # - Value", "E-mail # Address", "E-mail # Display Name", "E-mail # Type", "E-mail Address",
    "E-mail Display Name", "E-mail Type", "Event # - Label", "Event # - Value", "Family Name",
    "Family Name Yomi", "File As", "First Name", "Gender", "Given Name", "Given Name Yomi", "Given Yomi",
    "Government ID Number", "Group Membership", "Hobby", "Home Address", "Home Address PO Box", "Home City",
    "Home Country", "Home Country/Region", "Home Fax", "Home Phone", "Home Phone #", "Home Postal Code",
    "Home State", "Home Street", "Home Street #", "IMAddress", "ISDN", "Initials", "Internet Free Busy",
    "Job Title", "Keywords", "Labels", "Language", "Last Name", "Location", "Maiden Name", "Manager's Name",
    "Middle Name", "Mileage", "Mobile Phone", "Name", "Name Prefix", "Name Suffix", "Nickname", "Notes",
    "Occupation", "Office Location", "Organization # - Department", "Organization # - Job Description",
    "Organization # - Location", "Organization # - Name", "Organization # - Symbol", "Organization # - Title",
    "Organization # - Type", "Organization # - Yomi Name", "Organization Department", "Organization Name",
    "Organization Title", "Organizational ID Number", "Other Address", "Other Address PO Box", "Other City",
    "Other Country", "Other Country/Region", "Other Fax", "Other Phone", "Other Postal Code", "Other State",
    "Other Street", "Other Street #", "Pager", "Personal Web Page", "Phone # - Label", "Phone # - Type",
    "Phone # - Value", "Phonetic First Name", "Phonetic Last Name", "Phonetic Middle Name", "Photo",
    "Primary Phone", "Priority", "Private", "Profession", "Radio Phone", "Referred By", "Schools",
    "Sensitivity", "Short Name", "Spouse", "Subject", "Suffix", "Surname Yomi", "TTY/TDD Phone", "Telex",
    "Title", "User #", "Web Page", "Website # - Label", "Website # - Type", "Website # - Value", "Yomi Name",
)


def _key(name: str) -> str:
    """Letters and digits only, lower-cased, each number as ``#``."""
    return re.sub(r"[0-9]+", "#", "".join(ch for ch in name.casefold() if ch.isalnum() or ch == "#"))


_KEYS = frozenset(_key(name) for name in EXPORT_COLUMNS)


def is_export_column(name: str) -> bool:
    """Whether *name* is a column of a common contact export (``"Home Fax"``, ``"E-mail 3 - Label"``),
    ignoring case, spaces and punctuation."""
    return _key(name) in _KEYS
