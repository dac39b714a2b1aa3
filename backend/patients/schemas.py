"""Schemas of patients, procedures, enrollment and the patient's own profile."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import marshmallow as ma
from marshmallow import ValidationError, validate, validates, validates_schema

from backend import fields
from backend.clock import utcnow
from backend.locales import LOCALES
from backend.pagination import PageArgsSchema
from backend.patients.lifecycle import consent_state
from backend.patients.models import (
    ANAESTHESIAS,
    ANALGESICS,
    BONE_QUALITIES,
    CHANNELS,
    CONSENT_DECISIONS,
    CONSENT_METHODS,
    CONSENT_PURPOSES,
    ETIOLOGIES,
    LIVING_SITUATIONS,
    LOCATIONS,
    PATIENT_STATUSES,
    PROCEDURE_KINDS,
    SEXES,
    SIDES,
    WALKING_AIDS,
)
from backend.schemas import UpdateSchema

E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def validate_timezone(value: str) -> None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError("is not an IANA time zone (e.g. Europe/Paris)") from exc


def validate_phone(value: str) -> None:
    if not E164.match(value):
        raise ValidationError("must be an international number, e.g. +33612345678")


class PatientFieldsMixin(ma.Schema):
    mrn = fields.String(validate=validate.Length(min=1, max=64))
    given_name = fields.String(validate=validate.Length(min=1, max=100))
    family_name = fields.String(validate=validate.Length(min=1, max=100))
    birth_date = fields.Date()
    sex = fields.String(allow_none=True, validate=validate.OneOf(SEXES))
    phone = fields.String(allow_none=True, validate=validate_phone)
    email = fields.Email(allow_none=True, validate=validate.Length(max=254))
    locale = fields.String(validate=validate.OneOf(LOCALES))
    timezone = fields.String(validate=validate_timezone)
    contact_channels = fields.List(
        fields.String(validate=validate.OneOf(CHANNELS), metadata={"x-enum-name": "Channel"}),
        validate=validate.Length(max=3),
    )
    caregiver_answers = fields.Boolean()

    @validates("birth_date")
    def _birth_date_plausible(self, value: date, **_: Any) -> None:
        # Not after today anywhere on Earth (UTC+14 is the furthest ahead), by the one clock.
        if value.year < 1900 or value > (utcnow() + timedelta(hours=14)).date():
            raise ValidationError("is not a plausible birth date")


class PatientCreateSchema(PatientFieldsMixin):
    # Care consent collected at discharge (recorded as a consent decision); without it, no
    # enrollment code can be issued until it is recorded (POST /patients/{id}/consents).
    consent_given_on = fields.Date(allow_none=True, load_only=True)
    consent_method = fields.String(
        allow_none=True, load_only=True, validate=validate.OneOf(CONSENT_METHODS)
    )
    consent_witness = fields.String(
        allow_none=True, load_only=True, validate=validate.Length(max=200)
    )

    @validates_schema
    def _consent_says_how(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("consent_given_on") and not data.get("consent_method"):
            raise ValidationError("is required with consent_given_on", "consent_method")

    @validates_schema(skip_on_field_errors=False, pass_original=True)
    def _channels_have_their_contact(self, data: dict[str, Any], original: Any, **_: Any) -> None:
        """The service's check, here too so that it is named beside the other bad fields (a
        contact point sent but refused above is not also called missing)."""
        from backend.patients.services import contact_channel_errors

        sent = original if isinstance(original, dict) else {}
        given = {**data, **{k: sent[k] for k in ("phone", "email") if sent.get(k) is not None}}
        messages: dict[str, list[str]] = {}
        for error in contact_channel_errors(given):
            messages.setdefault(error["pointer"].lstrip("/"), []).append(error["detail"])
        if messages:
            raise ValidationError(messages)

    class Meta:
        fields_required = ("mrn", "given_name", "family_name", "birth_date", "locale", "timezone")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in self.Meta.fields_required:
            self.fields[name].required = True
        self.fields["contact_channels"].load_default = lambda: ["push"]
        self.fields["caregiver_answers"].load_default = False


class PatientUpdateSchema(PatientFieldsMixin, UpdateSchema):
    status = fields.String(
        validate=validate.OneOf(PATIENT_STATUSES),
        metadata={
            "description": "Changed as POST /patients/{id}/status does (reason required)",
            "x-enum-name": "PatientStatus",
        },
    )
    status_reason = fields.String(validate=validate.Length(min=1, max=500))
    paused_until = fields.Date(allow_none=True)


class ConsentSchema(ma.Schema):
    id = fields.UUID()
    purpose = fields.String()
    decision = fields.String()
    decided_on = fields.Date()
    method = fields.String(
        allow_none=True, metadata={"description": "null for decisions migrated from dates"}
    )
    witness = fields.String(allow_none=True)
    note = fields.String(allow_none=True)
    recorded_at = fields.DateTime()
    recorded_by = fields.Function(lambda c: _staff(c.recorded_by))


def _staff(user: Any) -> dict[str, Any] | None:
    return None if user is None else {"id": str(user.id), "name": user.full_name or user.email}


class ConsentCreateSchema(ma.Schema):
    purpose = fields.String(required=True, validate=validate.OneOf(CONSENT_PURPOSES))
    decision = fields.String(required=True, validate=validate.OneOf(CONSENT_DECISIONS))
    decided_on = fields.Date(required=True)
    method = fields.String(required=True, validate=validate.OneOf(CONSENT_METHODS))
    witness = fields.String(
        allow_none=True,
        validate=validate.Length(max=200),
        metadata={"description": "Required when method is verbal_witnessed"},
    )
    note = fields.String(allow_none=True, validate=validate.Length(max=500))


class ConsentStateSchema(ma.Schema):
    state = fields.String(metadata={"description": "given, withdrawn or none"})
    since = fields.Date(allow_none=True)


class ConsentCurrentSchema(ma.Schema):
    care = fields.Nested(ConsentStateSchema)
    research = fields.Nested(ConsentStateSchema)


class ConsentListSchema(ma.Schema):
    current = fields.Nested(ConsentCurrentSchema)
    items = fields.List(fields.Nested(ConsentSchema))


class StatusChangeCreateSchema(ma.Schema):
    status = fields.String(
        required=True,
        validate=validate.OneOf(PATIENT_STATUSES),
        metadata={"x-enum-name": "PatientStatus"},
    )
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))
    paused_until = fields.Date(
        allow_none=True,
        metadata={"description": "paused only: the follow-up resumes on this date by itself"},
    )


class StatusChangeSchema(ma.Schema):
    id = fields.UUID()
    from_status = fields.String()
    to_status = fields.String()
    reason = fields.String()
    paused_until = fields.Date(allow_none=True)
    cause = fields.String()
    changed_at = fields.DateTime()
    changed_by = fields.Function(lambda c: _staff(c.changed_by))


class StatusHistorySchema(ma.Schema):
    items = fields.List(fields.Nested(StatusChangeSchema))


class PatientSchema(PatientFieldsMixin):
    id = fields.UUID()
    status = fields.String()
    status_changed_at = fields.DateTime()
    paused_until = fields.Date(allow_none=True)
    consent = fields.Function(lambda p: ConsentCurrentSchema().dump(consent_state(p)))
    # Compatibility with the former two dates: the care consent's.
    consent_given_on = fields.Function(lambda p: _care_date(p, "given"))
    consent_withdrawn_on = fields.Function(lambda p: _care_date(p, "withdrawn"))
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


def _care_date(patient: Any, decision: str) -> str | None:
    """The date of the latest care decision of this kind, while it is the current one (a
    withdrawal followed by a new consent no longer shows as withdrawn)."""
    state = consent_state(patient)["care"]
    if decision == "given":
        given = [c for c in patient.consents if c.purpose == "care" and c.decision == "given"]
        return given[-1].decided_on.isoformat() if given else None
    return state["since"].isoformat() if state["state"] == "withdrawn" else None


class PatientListSchema(ma.Schema):
    items = fields.List(fields.Nested(PatientSchema))
    next_cursor = fields.String(allow_none=True)


class PatientQueryArgsSchema(PageArgsSchema):
    q = fields.String(
        validate=validate.Length(min=1, max=100),
        metadata={"description": "Part of the MRN or of a name"},
    )
    status = fields.String(
        validate=validate.OneOf(PATIENT_STATUSES), metadata={"x-enum-name": "PatientStatus"}
    )


class BaselineSchema(ma.Schema):
    pain_rest = fields.Integer(required=True, validate=validate.Range(0, 10))
    pain_walking = fields.Integer(required=True, validate=validate.Range(0, 10))
    mobility_score = fields.Integer(
        allow_none=True,
        validate=validate.Range(0, 9),
        metadata={"description": "Pre-fracture Parker Mobility Score"},
    )
    analgesics = fields.String(allow_none=True, validate=validate.OneOf(ANALGESICS))
    walking_aid = fields.String(allow_none=True, validate=validate.OneOf(WALKING_AIDS))
    living_situation = fields.String(allow_none=True, validate=validate.OneOf(LIVING_SITUATIONS))


class ProcedureFieldsMixin(ma.Schema):
    kind = fields.String(
        validate=validate.OneOf(PROCEDURE_KINDS), metadata={"x-enum-name": "ProcedureKind"}
    )
    location = fields.String(validate=validate.OneOf(LOCATIONS))
    side = fields.String(allow_none=True, validate=validate.OneOf(SIDES))
    vertebral_level = fields.String(allow_none=True, validate=validate.Length(max=32))
    etiology = fields.String(validate=validate.OneOf(ETIOLOGIES))
    bone_quality = fields.String(allow_none=True, validate=validate.OneOf(BONE_QUALITIES))
    anaesthesia = fields.String(allow_none=True, validate=validate.OneOf(ANAESTHESIAS))
    screw_count = fields.Integer(allow_none=True, validate=validate.Range(0, 20))
    cement_volume_ml = fields.Float(allow_none=True, validate=validate.Range(0.0, 100.0))
    performed_on = fields.Date()
    discharged_on = fields.Date()
    study_arm = fields.String(allow_none=True, validate=validate.Length(max=64))

    @validates_schema
    def _discharge_after_procedure(self, data: dict[str, Any], **_: Any) -> None:
        performed, discharged = data.get("performed_on"), data.get("discharged_on")
        if performed and discharged and discharged < performed:
            raise ValidationError("must be on or after performed_on", "discharged_on")


class ProcedureCreateSchema(ProcedureFieldsMixin):
    baseline = fields.Nested(BaselineSchema, required=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("kind", "location", "etiology", "performed_on", "discharged_on"):
            self.fields[name].required = True


class BaselineUpdateSchema(BaselineSchema):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.required = False


class ProcedureUpdateSchema(ProcedureFieldsMixin, UpdateSchema):
    baseline = fields.Nested(BaselineUpdateSchema)


class AssignmentSchema(ma.Schema):
    id = fields.UUID()
    instrument = fields.String(attribute="instrument_key")
    version = fields.Integer(attribute="instrument_version")
    day = fields.Integer()
    opens_at = fields.DateTime()
    closes_at = fields.DateTime()
    status = fields.Method("get_status")
    reason = fields.String()
    status_reason = fields.String(
        allow_none=True, metadata={"description": "Why it was cancelled, when it was"}
    )

    def get_status(self, obj: Any) -> str:
        status: str = obj.effective_status(self.context_now())
        return status

    def context_now(self) -> Any:
        from backend.clock import utcnow

        return utcnow()


class ProcedureSchema(ProcedureFieldsMixin):
    id = fields.UUID()
    patient_id = fields.UUID()
    protocol = fields.Method("get_protocol")
    baseline = fields.Method("get_baseline")
    schedule = fields.List(fields.Nested(AssignmentSchema))
    created_at = fields.DateTime()

    def get_baseline(self, obj: Any) -> dict[str, Any]:
        return {
            key: getattr(obj, f"baseline_{key}")
            for key in (
                "pain_rest",
                "pain_walking",
                "mobility_score",
                "analgesics",
                "walking_aid",
                "living_situation",
            )
        }

    def get_protocol(self, obj: Any) -> dict[str, Any] | None:
        protocol = getattr(obj, "protocol", None)
        return {"key": protocol.key, "version": protocol.version} if protocol else None


class EnrollmentCodeCreateSchema(ma.Schema):
    revoke_devices = fields.Boolean(
        load_default=False,
        metadata={"description": "Also cut off the phones enrolled before (lost or replaced)"},
    )


class EnrollmentCodeSchema(ma.Schema):
    code = fields.String(metadata={"example": "7KQ4M-XR9TD"})
    expires_at = fields.DateTime()


class EnrolledDeviceSchema(ma.Schema):
    """A patient's enrolled phone, as staff see it (no push token: it is a credential)."""

    id = fields.UUID()
    platform = fields.String()
    app_version = fields.String(allow_none=True)
    created_at = fields.DateTime(metadata={"description": "When the phone was enrolled"})
    updated_at = fields.DateTime()
    status = fields.String(metadata={"enum": ["active", "revoked"], "x-enum-name": "DeviceStatus"})
    revoked_at = fields.DateTime(allow_none=True)


class EnrolledDeviceListSchema(ma.Schema):
    items = fields.List(fields.Nested(EnrolledDeviceSchema))


class DeviceSchema(ma.Schema):
    platform = fields.String(required=True, validate=validate.OneOf(("ios", "android")))
    push_token = fields.String(allow_none=True, validate=validate.Length(min=1, max=4096))
    app_version = fields.String(allow_none=True, validate=validate.Length(max=32))
    locale = fields.String(allow_none=True, validate=validate.OneOf(LOCALES))
    timezone = fields.String(allow_none=True, validate=validate_timezone)


class ClaimSchema(ma.Schema):
    code = fields.String(required=True, validate=validate.Length(min=8, max=32))
    device = fields.Nested(DeviceSchema, required=True)


class DeviceUpdateSchema(ma.Schema):
    platform = fields.String(required=True, validate=validate.OneOf(("ios", "android")))
    push_token = fields.String(required=True, validate=validate.Length(min=1, max=4096))


class PatientPublicSchema(ma.Schema):
    """What a patient's phone may know about its patient."""

    id = fields.UUID()
    display_name = fields.String()
    locale = fields.String()
    timezone = fields.String()


class ClaimResultSchema(ma.Schema):
    access_token = fields.String()
    refresh_token = fields.String()
    token_type = fields.String()
    expires_in = fields.Integer()
    patient = fields.Nested(PatientPublicSchema)


class MeSchema(PatientPublicSchema):
    given_name = fields.String()
    family_name = fields.String()
    status = fields.String()
    caregiver_answers = fields.Boolean()
    site = fields.Method("get_site")

    def get_site(self, obj: Any) -> dict[str, str]:
        from backend.patients.services import site_of

        site = site_of(obj)
        return {"name": site.name}
