"""Request and response models for organisations, households, service users and carers.

Create models (``…In``) are what a client sends, ``…Patch`` models change only the fields
given, and the plain names are what the API answers. Validation names the offending field
(FastAPI's 422 ``loc``)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from homecall.tags import TagError, canonical_tag

GatewayId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]{3,64}$")]
#: Service-user and carer ids travel to the gateway: short opaque ids, no personal data.
PersonId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
Phone = Annotated[str, StringConstraints(pattern=r"^\+?[0-9][0-9 ()-]{5,19}$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Notes = Annotated[str, StringConstraints(max_length=4000)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OrganisationIn(_Model):
    name: Name


class Organisation(OrganisationIn):
    id: str
    created_at: str


class HouseholdIn(_Model):
    #: Defaults to the caller's organisation; only an admin may name another.
    organisation_id: str | None = None
    gateway_id: GatewayId
    address: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                              max_length=500)]
    key_safe_notes: Notes = ""
    access_notes: Notes = ""


class HouseholdPatch(_Model):
    gateway_id: GatewayId | None = None
    address: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                              max_length=500)] | None = None
    key_safe_notes: Notes | None = None
    access_notes: Notes | None = None


class Household(_Model):
    id: str
    organisation_id: str
    gateway_id: str
    address: str
    key_safe_notes: str
    access_notes: str
    created_at: str


class NextOfKin(_Model):
    name: Name
    relationship: Annotated[str, StringConstraints(max_length=100)] = ""
    phones: list[Phone] = Field(min_length=1, max_length=5)


class ServiceUserIn(_Model):
    #: The id plans and the gateway use; generated (``su-…``) when not given.
    id: PersonId | None = None
    household_id: str
    name: Name
    date_of_birth: date
    next_of_kin: list[NextOfKin] = Field(default_factory=list, max_length=10)
    risk_notes: Notes = ""
    medication: Notes = ""
    lives_alone: bool = False
    #: The day the person's care ended: their call-monitoring data is kept for the retention
    #: period from then (two years by default) and then purged.
    care_ended_on: date | None = None

    @field_validator("date_of_birth")
    @classmethod
    def _past(cls, value: date) -> date:
        if value > date.today() or value.year < 1890:
            raise ValueError("date of birth must be a real past date")
        return value


class ServiceUserPatch(_Model):
    name: Name | None = None
    date_of_birth: date | None = None
    next_of_kin: list[NextOfKin] | None = Field(None, max_length=10)
    risk_notes: Notes | None = None
    medication: Notes | None = None
    lives_alone: bool | None = None
    care_ended_on: date | None = None


class ServiceUser(_Model):
    id: str
    household_id: str
    organisation_id: str
    name: str
    date_of_birth: date
    next_of_kin: list[NextOfKin]
    risk_notes: str
    medication: str
    lives_alone: bool
    created_at: str
    care_ended_on: date | None = None
    #: Set when the retention job (or an erasure) removed the person's details and data.
    erased_at: str | None = None


def _canonical_tags(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    try:
        tags = [canonical_tag(t) for t in value]
    except TagError as err:
        raise ValueError(str(err)) from err
    if len(set(tags)) != len(tags):
        raise ValueError("a tag is listed twice")
    return tags


class CarerIn(_Model):
    #: The id plans and the gateway use; generated (``c-…``) when not given.
    id: PersonId | None = None
    organisation_id: str | None = None
    name: Name
    phone: Phone
    #: ``em4100:<10 hex>`` fobs and ``nfc:<uid hex>`` cards/phones.
    tags: list[str] = Field(default_factory=list, max_length=10)

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str] | None:
        return _canonical_tags(value)


class CarerPatch(_Model):
    name: Name | None = None
    phone: Phone | None = None
    tags: list[str] | None = Field(None, max_length=10)

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str] | None) -> list[str] | None:
        return _canonical_tags(value)


class Carer(_Model):
    id: str
    organisation_id: str
    name: str
    phone: str
    tags: list[str]
    created_at: str
