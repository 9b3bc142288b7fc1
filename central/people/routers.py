"""HTTP API for organisations, households, service users and carers: one router per
resource. Each route states who may use it (see ``central.auth.deps``); everything is scoped
to the caller's organisation, and another organisation's records answer 404 as if absent.
"""

from __future__ import annotations

from typing import NoReturn

from fastapi import APIRouter, HTTPException

from central.auth.deps import AdminUser, AnyStaff, CareReader, HomeEditor, PeopleDep, PeopleEditor
from central.auth.service import AuthUser
from central.people.models import (
    Carer,
    CarerIn,
    CarerPatch,
    Household,
    HouseholdIn,
    HouseholdPatch,
    Organisation,
    OrganisationIn,
    ServiceUser,
    ServiceUserIn,
    ServiceUserPatch,
)
from central.people.repository import Conflict, Invalid, NotFound, PeopleError


def http_error(err: PeopleError) -> NoReturn:
    """Translate a repository error: 404 not found, 409 conflict, 422 naming the field."""
    if isinstance(err, NotFound):
        raise HTTPException(status_code=404, detail=str(err)) from err
    status = 409 if isinstance(err, Conflict) else 422
    if err.field is None:
        raise HTTPException(status_code=status, detail=str(err)) from err
    raise HTTPException(status_code=status, detail=[
        {"loc": ["body", err.field], "msg": str(err), "type": type(err).__name__.lower()}
    ]) from err


def organisation_for(user: AuthUser, requested: str | None) -> str:
    """Where a new record goes: the caller's organisation (an all-organisation admin must
    name one)."""
    if user.scope is None:
        if requested is None:
            http_error(Invalid("organisation_id: required for an admin of all organisations",
                               "organisation_id"))
        return requested
    if requested is not None and requested != user.scope:
        http_error(Invalid(f"no organisation {requested!r}", "organisation_id"))
    return user.scope


organisations_router = APIRouter(prefix="/api/organisations", tags=["organisations"])


@organisations_router.get("", response_model=list[Organisation])
def list_organisations(user: AnyStaff, people: PeopleDep) -> list[Organisation]:
    return people.list_organisations(user.scope)


@organisations_router.post("", response_model=Organisation, status_code=201)
def create_organisation(body: OrganisationIn, user: AdminUser,
                        people: PeopleDep) -> Organisation:
    try:
        return people.create_organisation(body, user.username)
    except PeopleError as err:
        http_error(err)


@organisations_router.get("/{organisation_id}", response_model=Organisation)
def get_organisation(organisation_id: str, user: AnyStaff, people: PeopleDep) -> Organisation:
    try:
        return people.get_organisation(organisation_id, user.scope)
    except PeopleError as err:
        http_error(err)


households_router = APIRouter(prefix="/api/households", tags=["households"])


@households_router.get("", response_model=list[Household])
def list_households(user: AnyStaff, people: PeopleDep) -> list[Household]:
    return people.list_households(user.scope)


@households_router.post("", response_model=Household, status_code=201)
def create_household(body: HouseholdIn, user: HomeEditor, people: PeopleDep) -> Household:
    try:
        return people.create_household(body, organisation_for(user, body.organisation_id),
                                       user.username)
    except PeopleError as err:
        http_error(err)


@households_router.get("/{household_id}", response_model=Household)
def get_household(household_id: str, user: AnyStaff, people: PeopleDep) -> Household:
    try:
        return people.get_household(household_id, user.scope)
    except PeopleError as err:
        http_error(err)


@households_router.patch("/{household_id}", response_model=Household)
def update_household(household_id: str, body: HouseholdPatch, user: HomeEditor,
                     people: PeopleDep) -> Household:
    try:
        return people.update_household(household_id, body, user.scope, user.username)
    except PeopleError as err:
        http_error(err)


@households_router.delete("/{household_id}", status_code=204)
def delete_household(household_id: str, user: HomeEditor, people: PeopleDep) -> None:
    try:
        people.delete_household(household_id, user.scope, user.username)
    except PeopleError as err:
        http_error(err)


service_users_router = APIRouter(prefix="/api/service-users", tags=["service users"])


@service_users_router.get("", response_model=list[ServiceUser])
def list_service_users(user: CareReader, people: PeopleDep,
                       household: str | None = None) -> list[ServiceUser]:
    return people.list_service_users(user.scope, household)


@service_users_router.post("", response_model=ServiceUser, status_code=201)
def create_service_user(body: ServiceUserIn, user: PeopleEditor,
                        people: PeopleDep) -> ServiceUser:
    try:
        return people.create_service_user(body, user.scope, user.username)
    except PeopleError as err:
        http_error(err)


@service_users_router.get("/{service_user_id}", response_model=ServiceUser)
def get_service_user(service_user_id: str, user: CareReader, people: PeopleDep) -> ServiceUser:
    try:
        return people.get_service_user(service_user_id, user.scope)
    except PeopleError as err:
        http_error(err)


@service_users_router.patch("/{service_user_id}", response_model=ServiceUser)
def update_service_user(service_user_id: str, body: ServiceUserPatch, user: PeopleEditor,
                        people: PeopleDep) -> ServiceUser:
    try:
        return people.update_service_user(service_user_id, body, user.scope, user.username)
    except PeopleError as err:
        http_error(err)


@service_users_router.delete("/{service_user_id}", status_code=204)
def delete_service_user(service_user_id: str, user: PeopleEditor, people: PeopleDep) -> None:
    try:
        people.delete_service_user(service_user_id, user.scope, user.username)
    except PeopleError as err:
        http_error(err)


carers_router = APIRouter(prefix="/api/carers", tags=["carers"])


@carers_router.get("", response_model=list[Carer])
def list_carers(user: CareReader, people: PeopleDep) -> list[Carer]:
    return people.list_carers(user.scope)


@carers_router.post("", response_model=Carer, status_code=201)
def create_carer(body: CarerIn, user: PeopleEditor, people: PeopleDep) -> Carer:
    try:
        return people.create_carer(body, organisation_for(user, body.organisation_id),
                                   user.username)
    except PeopleError as err:
        http_error(err)


@carers_router.get("/{carer_id}", response_model=Carer)
def get_carer(carer_id: str, user: CareReader, people: PeopleDep) -> Carer:
    try:
        return people.get_carer(carer_id, user.scope)
    except PeopleError as err:
        http_error(err)


@carers_router.patch("/{carer_id}", response_model=Carer)
def update_carer(carer_id: str, body: CarerPatch, user: PeopleEditor,
                 people: PeopleDep) -> Carer:
    try:
        return people.update_carer(carer_id, body, user.scope, user.username)
    except PeopleError as err:
        http_error(err)


@carers_router.delete("/{carer_id}", status_code=204)
def delete_carer(carer_id: str, user: PeopleEditor, people: PeopleDep) -> None:
    try:
        people.delete_carer(carer_id, user.scope, user.username)
    except PeopleError as err:
        http_error(err)


ROUTERS = (organisations_router, households_router, service_users_router, carers_router)
