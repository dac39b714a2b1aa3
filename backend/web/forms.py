"""The registration form, validated by the API's own schemas.

The form's fields carry the API's names (``mrn``, ``kind``, ``baseline-pain_walking``), so the
posted form becomes the API's request bodies and ``PatientCreateSchema`` and
``ProcedureCreateSchema`` validate it exactly as they validate JSON: the pages cannot accept
what the API refuses, or the reverse. Each error comes back as a JSON pointer (``/baseline/
pain_walking``) and is shown next to the field of the same name, in the nurse's language.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from marshmallow import Schema, ValidationError
from werkzeug.datastructures import MultiDict

from backend import fields
from backend.errors import flatten_messages
from backend.patients.schemas import PatientCreateSchema, ProcedureCreateSchema

# The label of each field: beside it, and in the summary of errors at the top of the form.
FIELD_LABELS = {
    "mrn": _l("MRN (hospital number)"),
    "given_name": _l("Given name"),
    "family_name": _l("Family name"),
    "birth_date": _l("Birth date"),
    "sex": _l("Sex"),
    "phone": _l("Mobile phone"),
    "email": _l("E-mail"),
    "locale": _l("Language of the questionnaires"),
    "timezone": _l("Time zone"),
    "consent_given_on": _l("Care consent given on"),
    "consent_method": _l("Consent collected"),
    "consent_witness": _l("Witness of a verbal consent"),
    "status": _l("New status"),
    "reason": _l("Reason"),
    "paused_until": _l("Paused until"),
    "purpose": _l("Consent to"),
    "decision": _l("Decision"),
    "decided_on": _l("Date of the decision"),
    "method": _l("Collected"),
    "witness": _l("Witness of a verbal consent"),
    "note": _l("Note"),
    "kind": _l("Procedure"),
    "location": _l("Location"),
    "side": _l("Side"),
    "vertebral_level": _l("Vertebral level"),
    "etiology": _l("Etiology"),
    "bone_quality": _l("Bone quality"),
    "anaesthesia": _l("Anaesthesia"),
    "screw_count": _l("Number of screws"),
    "cement_volume_ml": _l("Cement volume (mL)"),
    "performed_on": _l("Performed on"),
    "discharged_on": _l("Discharged on"),
    "study_arm": _l("Study arm"),
    "baseline-pain_walking": _l("Walking pain (0-10)"),
    "baseline-pain_rest": _l("Rest pain (0-10)"),
    "baseline-mobility_score": _l("Mobility score before the fracture (Parker, 0-9)"),
    "baseline-analgesics": _l("Analgesics"),
    "baseline-walking_aid": _l("Walking aid"),
    "baseline-living_situation": _l("Lives"),
    "contact_channels": _l("Reminders by"),
    "caregiver_answers": _l("A caregiver answers for the patient"),
}

PATIENT_FIELDS = tuple(PatientCreateSchema().fields)
PROCEDURE_FIELDS = tuple(name for name in ProcedureCreateSchema().fields if name != "baseline")
BASELINE_FIELDS = tuple(ProcedureCreateSchema().fields["baseline"].schema.fields)  # type: ignore[attr-defined]
# Numbers typed in a form arrive as text; the API's schemas take JSON numbers only.
NUMBER_FIELDS: dict[str, type[int] | type[float]] = {
    **{
        name: int if isinstance(field, fields.Integer) else float
        for schema in (PatientCreateSchema(), ProcedureCreateSchema())
        for name, field in schema.fields.items()
        if isinstance(field, fields.Integer | fields.Float)
    },
    **{
        f"baseline-{name}": int if isinstance(field, fields.Integer) else float
        for name, field in ProcedureCreateSchema().fields["baseline"].schema.fields.items()  # type: ignore[attr-defined]
        if isinstance(field, fields.Integer | fields.Float)
    },
}
LIST_FIELDS = {"contact_channels"}
CHECKBOX_FIELDS = {"caregiver_answers"}


def field_id(pointer: str) -> str:
    """The form field (and HTML id) of a JSON pointer: ``/baseline/pain_rest`` ->
    ``baseline-pain_rest``."""
    return pointer.strip("/").replace("/", "-")


def _collect(form: MultiDict[str, str], names: tuple[str, ...], prefix: str = "") -> dict[str, Any]:
    """The fields the nurse filled, as the API would receive them. An empty field is absent
    (not an empty string), so "required" and "optional" mean what they mean in the API."""
    body: dict[str, Any] = {}
    for name in names:
        key = f"{prefix}{name}"
        if name in LIST_FIELDS:
            body[name] = [value for value in form.getlist(key) if value]
        elif name in CHECKBOX_FIELDS:
            body[name] = key in form
        else:
            value = form.get(key, "").strip()
            if value:
                body[name] = _number(value, NUMBER_FIELDS[key]) if key in NUMBER_FIELDS else value
    return body


def _number(text: str, kind: type[int] | type[float]) -> Any:
    """The number typed, or the text itself for the schema to refuse ("Not a valid ...")."""
    try:
        return kind(text.replace(",", ".")) if kind is float else kind(text)
    except ValueError:
        return text


def bodies(form: MultiDict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The patient body and the procedure body (with its nested baseline) of the form."""
    patient = _collect(form, PATIENT_FIELDS)
    procedure = _collect(form, PROCEDURE_FIELDS)
    procedure["baseline"] = _collect(form, BASELINE_FIELDS, prefix="baseline-")
    return patient, procedure


def validate(schema: Schema, body: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The loaded data, or the errors by field id."""
    try:
        return dict(schema.load(body)), {}
    except ValidationError as error:
        return {}, errors_by_field(flatten_messages(error.messages))


def errors_by_field(errors: list[dict[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for error in errors:
        key = field_id(error.get("pointer", "/"))
        message = translate(error["detail"])
        out[key] = f"{out[key]} {message}" if key in out else message
    return out


# Messages of marshmallow and of our schemas and services, in the nurse's language. A message
# not listed here is shown as it is (English) rather than hidden.
_PATTERNS: list[tuple[re.Pattern[str], Any]] = [
    (re.compile(r"Missing data for required field\."), lambda m: _("Required.")),
    (re.compile(r"Field may not be null\."), lambda m: _("Required.")),
    (re.compile(r"Not a valid integer\."), lambda m: _("Enter a whole number.")),
    (re.compile(r"Not a valid number\."), lambda m: _("Enter a number.")),
    (re.compile(r"Not a valid date\."), lambda m: _("Enter a date.")),
    (re.compile(r"Not a valid email address\."), lambda m: _("Enter an e-mail address.")),
    (re.compile(r"Must be one of: .*"), lambda m: _("Choose one of the options.")),
    (
        re.compile(r"Must be greater than or equal to (\S+) and less than or equal to (\S+)\."),
        lambda m: _("Enter a value from %(low)s to %(high)s.", low=m[1], high=m[2]),
    ),
    (
        re.compile(r"Length must be between (\d+) and (\d+)\."),
        lambda m: _("Enter %(low)s to %(high)s characters.", low=m[1], high=m[2]),
    ),
    (
        re.compile(r"Longer than maximum length (\d+)\."),
        lambda m: _("Enter at most %(high)s characters.", high=m[1]),
    ),
    (
        re.compile(r"must be an international number.*"),
        lambda m: _("Enter an international number, e.g. +33612345678."),
    ),
    (
        re.compile(r"is not an IANA time zone.*"),
        lambda m: _("Enter a time zone such as Europe/Paris."),
    ),
    (re.compile(r"is not a plausible birth date"), lambda m: _("Enter a plausible birth date.")),
    (
        re.compile(r"must be on or after performed_on"),
        lambda m: _("Must be on or after the day of the procedure."),
    ),
    (
        re.compile(r"is required when contact_channels includes sms"),
        lambda m: _("Required to send SMS."),
    ),
    (
        re.compile(r"is required when contact_channels includes email"),
        lambda m: _("Required to send e-mail."),
    ),
    (re.compile(r"lists a channel twice"), lambda m: _("A channel is ticked twice.")),
    (re.compile(r"is in the future"), lambda m: _("Must not be in the future.")),
    (re.compile(r"is required: say why.*"), lambda m: _("Say why the status changes.")),
    (re.compile(r"is only for the status paused"), lambda m: _("Only for a pause.")),
    (re.compile(r"must be a date after today"), lambda m: _("Must be after today.")),
    (
        re.compile(r"is required for a verbal consent"),
        lambda m: _("Required for a verbal consent."),
    ),
    (re.compile(r"is required with consent_given_on"), lambda m: _("Say how it was collected.")),
    (
        re.compile(r"is before the (\w+) consent (\w+) on (\S+)"),
        lambda m: _("Must not be before the previous decision (%(date)s).", date=m[3]),
    ),
    (re.compile(r"no \w+ consent is given to withdraw"), lambda m: _("No consent to withdraw.")),
    (re.compile(r"the \w+ consent is already given"), lambda m: _("Already given.")),
    (re.compile(r"is before the patient's birth"), lambda m: _("Before the birth date.")),
    # The answers' validation (backend.questionnaires.services.validate_answers).
    (re.compile(r"is required"), lambda m: _("Required.")),
    (re.compile(r"must be a whole number"), lambda m: _("Enter a whole number.")),
    (
        re.compile(r"must be between (\S+) and (\S+)"),
        lambda m: _("Enter a value from %(low)s to %(high)s.", low=m[1], high=m[2]),
    ),
    (re.compile(r"must be one of .*"), lambda m: _("Choose one of the options.")),
    (
        re.compile(r"has unknown values: .*|lists a value twice|must be a list.*"),
        lambda m: _("Tick among the options."),
    ),
    (re.compile(r"must be true or false"), lambda m: _("Answer yes or no.")),
    (
        re.compile(r"must have at most (\d+) characters"),
        lambda m: _("Enter at most %(high)s characters.", high=m[1]),
    ),
    (
        re.compile(r"is before the questionnaire opened"),
        lambda m: _("The questionnaire was not open yet at this time."),
    ),
    (re.compile(r"is before the discharge"), lambda m: _("This time is before the discharge.")),
    (
        re.compile(r"This questionnaire has already been answered\."),
        lambda m: _("This questionnaire has already been answered."),
    ),
    (
        re.compile(r"This questionnaire was cancelled\."),
        lambda m: _("This questionnaire was cancelled."),
    ),
    (
        re.compile(r"This questionnaire closed before it was answered\."),
        lambda m: _("This questionnaire closed before the time of these answers."),
    ),
    (
        re.compile(r"No procedure is recorded for this patient yet\."),
        lambda m: _("No procedure is recorded for this patient yet."),
    ),
]


def translate(message: str) -> str:
    for pattern, text in _PATTERNS:
        match = pattern.fullmatch(message.strip())
        if match:
            return str(text(match))
    return message


# --- a questionnaire answered over the phone ---------------------------------------------------


def answer_field(item_id: str) -> str:
    """The form field of an item: the id of the JSON pointer ``/answers/<item>``."""
    return field_id(f"/answers/{item_id}")


def answers_from_form(definition: Mapping[str, Any], form: MultiDict[str, str]) -> dict[str, Any]:
    """The answers as the API would receive them, typed by the instrument's definition. An
    unanswered item is absent, and a value that is not of its type is passed on as typed, so
    the service's validation (``validate_answers``) names it, exactly as for the API."""
    answers: dict[str, Any] = {}
    for item in definition["items"]:
        name = answer_field(item["id"])
        kind = item["type"]
        if kind == "multi_choice":
            answers[item["id"]] = [v for v in form.getlist(name) if v]  # none ticked: none
            continue
        raw = form.get(name, "").strip()
        if not raw:
            continue
        if kind in {"integer", "choice_integer"}:
            answers[item["id"]] = int(raw) if re.fullmatch(r"-?\d{1,6}", raw) else raw
        elif kind == "boolean":
            answers[item["id"]] = {"true": True, "false": False}.get(raw, raw)
        else:
            answers[item["id"]] = raw
    return answers
