"""crm-billing: invoices and credit notes from sales orders or on their own, numbered from a
gap-free sequence per year and totalled by the orders plugin's engine; payment terms and
instalments; payments by hand or from a bank statement; dunning of overdue instalments.

Enable it per deployment with ``plugins = ["billing"]`` (it brings ``orders``). The modules
beside this one hold the logic: entities (:mod:`~crm_billing.entities`), numbering
(:mod:`~crm_billing.numbering`), invoices and credit notes (:mod:`~crm_billing.invoices`),
instalments and payments (:mod:`~crm_billing.payments`), statement import
(:mod:`~crm_billing.statements`), dunning (:mod:`~crm_billing.dunning`), the revenue estimate
(:mod:`~crm_billing.estimate`), the catalog's revenue hook (:mod:`~crm_billing.revenue`) and the
invoices of service work with the service plugin (:mod:`~crm_billing.service_work`).
"""

from __future__ import annotations

from crmcore import PluginInfo, Setting

__all__ = ["PLUGIN"]

PLUGIN = PluginInfo(
    name="billing",
    title="Billing",
    requires=("orders", "catalog"),
    description=(
        "Invoices and credit notes with gap-free numbers, payment terms and instalments, payments "
        "and bank statement import, dunning of overdue instalments."
    ),
    settings={
        "invoice_prefix": Setting(str, default="INV-", help="What an invoice number starts with, before the year."),
        "credit_note_prefix": Setting(str, default="CN-", help="What a credit note number starts with, before the year."),
        "number_digits": Setting(int, default=5, minimum=1, maximum=12, help="Digits of the running number (zero-padded)."),
        "payment_terms": Setting(dict, default={
            "immediate": [{"days": 0, "percent": 100}],
            "net30": [{"days": 30, "percent": 100}],
        }, help="Payment terms by name: instalments as [{days = 30, percent = 50}, ...], percents adding up to 100."),
        "default_terms": Setting(str, default="net30", help="The terms of an invoice that names none."),
        "dunning_procedures": Setting(dict, default={"standard": [
            {"days": 7, "counted_from": "due", "fee": "0", "interest_rate": "0", "channel": "email", "template": "reminder"},
            {"days": 14, "counted_from": "previous", "fee": "5.00", "interest_rate": "5", "channel": "email", "template": "reminder"},
            {"days": 14, "counted_from": "previous", "fee": "10.00", "interest_rate": "5", "channel": "letter", "template": "final"},
            {"days": 7, "counted_from": "previous", "fee": "0", "interest_rate": "5", "channel": "phone", "template": "call"},
        ]}, help="Dunning procedures by name: ordered levels {days, counted_from = 'due' | 'previous', fee, interest_rate, channel = 'email' | 'letter' | 'phone', template}."),
        "default_procedure": Setting(str, default="standard", help="The dunning procedure customers follow."),
        "fee_policy": Setting(str, default="collect", help="Fees and interest: 'collect' (an invoice of their own), 'threat' (shown only) or 'waive'."),
        "templates_dir": Setting(str, default="", help="A folder of Jinja2 templates replacing the built-in ones (<template>.subject, .txt)."),
        "letters_dir": Setting(str, default="", help="Where letter PDFs are written (a 'letters' folder beside the database when empty)."),
        "sender": Setting(str, default="billing@example.com", help="The From address of reminders."),
        "smtp": Setting(dict, default={"host": "127.0.0.1", "port": 25, "tls": "none", "username": "", "password": ""},
                        help="The SMTP server of reminders: host, port, tls ('none', 'starttls', 'ssl'), username, password."),
        "service_invoicing": Setting(str, default="order", help="Billable service work (with the service plugin): 'order' (a draft invoice per service order) or 'account' (collected on the account's open draft of service work)."),
        "service_tax_code": Setting(str, default="", help="The tax category (code) of labour and travel lines invoiced from service work; parts take their product's. Untaxed when empty."),
        "dunning_hour": Setting(int, default=6, minimum=0, maximum=23, help="The hour (deployment time zone) the daily dunning job runs."),
    },
)
