"""The people and homes repository: every read and write of organisations, households,
service users and carers, each scoped to an organisation (``scope=None`` means every
organisation: an all-organisation admin). A row outside the scope is treated exactly like a
missing row, so callers cannot learn what exists elsewhere. Every change is audited with who
made it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from central import CentralError
from central.db.engine import Database
from central.db.tables import audit
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
from central.people.tables import carer_tags, carers, households, organisations, service_users
from homecall.clock import Clock, format_utc

#: Scope: an organisation id, or None for every organisation.
Scope = str | None


class PeopleError(CentralError):
    """Root of the people errors; ``field`` names the request field at fault, if any."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFound(PeopleError):
    """No such record (or not in the caller's organisation)."""


class Conflict(PeopleError):
    """The change clashes with existing data (a gateway already used, a tag held, …)."""


class Invalid(PeopleError):
    """A field refers to something that does not exist (in the caller's organisation)."""


def _new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class People:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def _now(self) -> str:
        return format_utc(self.clock.now())

    def _audit(self, conn: Connection, who: str, action: str, target: str,
               detail: dict[str, Any] | None = None) -> None:
        conn.execute(audit.insert().values(at=self._now(), who=who, action=action,
                                           target=target, detail=json.dumps(detail or {})))

    # -- organisations ---------------------------------------------------------------------
    def create_organisation(self, data: OrganisationIn, who: str,
                            org_id: str | None = None) -> Organisation:
        row = {"id": org_id or _new_id("org"), "name": data.name, "created_at": self._now()}
        with self.db.write() as conn:
            if conn.execute(sa.select(organisations.c.id).where(
                    sa.or_(organisations.c.name == data.name,
                           organisations.c.id == row["id"]))).first():
                raise Conflict(f"organisation {data.name!r} already exists", "name")
            conn.execute(organisations.insert().values(**row))
            self._audit(conn, who, "organisation.create", f"organisation:{row['id']}")
        return Organisation(**row)

    def list_organisations(self, scope: Scope) -> list[Organisation]:
        query = sa.select(organisations).order_by(organisations.c.name)
        if scope is not None:
            query = query.where(organisations.c.id == scope)
        with self.db.read() as conn:
            return [Organisation(**r._mapping) for r in conn.execute(query)]

    def get_organisation(self, org_id: str, scope: Scope) -> Organisation:
        if scope is not None and org_id != scope:
            raise NotFound(f"no organisation {org_id!r}")
        with self.db.read() as conn:
            row = conn.execute(sa.select(organisations)
                               .where(organisations.c.id == org_id)).first()
        if row is None:
            raise NotFound(f"no organisation {org_id!r}")
        return Organisation(**row._mapping)

    def _check_org(self, conn: Connection, org_id: str) -> None:
        if conn.execute(sa.select(organisations.c.id)
                        .where(organisations.c.id == org_id)).first() is None:
            raise Invalid(f"no organisation {org_id!r}", "organisation_id")

    # -- households ------------------------------------------------------------------------
    def gateway_ids(self, scope: Scope) -> frozenset[str]:
        query = sa.select(households.c.gateway_id)
        if scope is not None:
            query = query.where(households.c.organisation_id == scope)
        with self.db.read() as conn:
            return frozenset(conn.execute(query).scalars())

    def create_household(self, data: HouseholdIn, org_id: str, who: str) -> Household:
        row = {**data.model_dump(), "organisation_id": org_id, "id": _new_id("hh"),
               "created_at": self._now()}
        with self.db.write() as conn:
            self._check_org(conn, org_id)
            self._check_gateway_free(conn, data.gateway_id, None)
            conn.execute(households.insert().values(**row))
            self._audit(conn, who, "household.create", f"household:{row['id']}",
                        {"gateway": data.gateway_id})
        return Household(**row)

    def _check_gateway_free(self, conn: Connection, gateway_id: str, own: str | None) -> None:
        holder = conn.execute(sa.select(households.c.id)
                              .where(households.c.gateway_id == gateway_id)).scalar()
        if holder is not None and holder != own:
            raise Conflict(f"gateway {gateway_id!r} already belongs to a household",
                           "gateway_id")

    def _household_row(self, conn: Connection, household_id: str, scope: Scope) -> Any:
        query = sa.select(households).where(households.c.id == household_id)
        if scope is not None:
            query = query.where(households.c.organisation_id == scope)
        return conn.execute(query).first()

    def list_households(self, scope: Scope) -> list[Household]:
        query = sa.select(households).order_by(households.c.address)
        if scope is not None:
            query = query.where(households.c.organisation_id == scope)
        with self.db.read() as conn:
            return [Household(**r._mapping) for r in conn.execute(query)]

    def get_household(self, household_id: str, scope: Scope) -> Household:
        with self.db.read() as conn:
            row = self._household_row(conn, household_id, scope)
        if row is None:
            raise NotFound(f"no household {household_id!r}")
        return Household(**row._mapping)

    def household_for_gateway(self, gateway_id: str, scope: Scope) -> Household | None:
        query = sa.select(households).where(households.c.gateway_id == gateway_id)
        if scope is not None:
            query = query.where(households.c.organisation_id == scope)
        with self.db.read() as conn:
            row = conn.execute(query).first()
        return Household(**row._mapping) if row else None

    def update_household(self, household_id: str, patch: HouseholdPatch, scope: Scope,
                         who: str) -> Household:
        changes = patch.model_dump(exclude_unset=True, exclude_none=True)
        with self.db.write() as conn:
            if self._household_row(conn, household_id, scope) is None:
                raise NotFound(f"no household {household_id!r}")
            if "gateway_id" in changes:
                self._check_gateway_free(conn, changes["gateway_id"], household_id)
            if changes:
                conn.execute(households.update().where(households.c.id == household_id)
                             .values(**changes))
                self._audit(conn, who, "household.update", f"household:{household_id}",
                            {"fields": sorted(changes)})
            row = self._household_row(conn, household_id, None)
        return Household(**row._mapping)

    def delete_household(self, household_id: str, scope: Scope, who: str) -> None:
        with self.db.write() as conn:
            if self._household_row(conn, household_id, scope) is None:
                raise NotFound(f"no household {household_id!r}")
            if conn.execute(sa.select(service_users.c.id)
                            .where(service_users.c.household_id == household_id)).first():
                raise Conflict("the household still has service users; move or remove "
                               "them first")
            conn.execute(households.delete().where(households.c.id == household_id))
            self._audit(conn, who, "household.delete", f"household:{household_id}")

    # -- service users ---------------------------------------------------------------------
    _SU_COLUMNS = (*service_users.c, households.c.organisation_id)

    def _su_query(self, scope: Scope) -> sa.Select[Any]:
        query = sa.select(*self._SU_COLUMNS).join(
            households, households.c.id == service_users.c.household_id)
        if scope is not None:
            query = query.where(households.c.organisation_id == scope)
        return query

    @staticmethod
    def _service_user(row: Any) -> ServiceUser:
        data = dict(row._mapping)
        data["next_of_kin"] = json.loads(data["next_of_kin"])
        data["lives_alone"] = bool(data["lives_alone"])
        return ServiceUser(**data)

    def create_service_user(self, data: ServiceUserIn, scope: Scope, who: str) -> ServiceUser:
        su_id = data.id or _new_id("su")
        values = data.model_dump(mode="json", exclude={"id"})
        values["next_of_kin"] = json.dumps(values["next_of_kin"])
        with self.db.write() as conn:
            if self._household_row(conn, data.household_id, scope) is None:
                raise Invalid(f"no household {data.household_id!r}", "household_id")
            if conn.execute(sa.select(service_users.c.id)
                            .where(service_users.c.id == su_id)).first():
                raise Conflict(f"service user id {su_id!r} is already used", "id")
            conn.execute(service_users.insert().values(id=su_id, created_at=self._now(),
                                                       **values))
            self._audit(conn, who, "service_user.create", f"service_user:{su_id}")
            row = conn.execute(self._su_query(None).where(service_users.c.id == su_id)).one()
        return self._service_user(row)

    def list_service_users(self, scope: Scope,
                           household_id: str | None = None) -> list[ServiceUser]:
        query = self._su_query(scope).order_by(service_users.c.name)
        if household_id is not None:
            query = query.where(service_users.c.household_id == household_id)
        with self.db.read() as conn:
            return [self._service_user(r) for r in conn.execute(query)]

    def get_service_user(self, su_id: str, scope: Scope) -> ServiceUser:
        with self.db.read() as conn:
            row = conn.execute(self._su_query(scope).where(service_users.c.id == su_id)).first()
        if row is None:
            raise NotFound(f"no service user {su_id!r}")
        return self._service_user(row)

    def update_service_user(self, su_id: str, patch: ServiceUserPatch, scope: Scope,
                            who: str) -> ServiceUser:
        changes = patch.model_dump(mode="json", exclude_unset=True, exclude_none=True)
        if "next_of_kin" in changes:
            changes["next_of_kin"] = json.dumps(changes["next_of_kin"])
        with self.db.write() as conn:
            if conn.execute(self._su_query(scope)
                            .where(service_users.c.id == su_id)).first() is None:
                raise NotFound(f"no service user {su_id!r}")
            if changes:
                conn.execute(service_users.update().where(service_users.c.id == su_id)
                             .values(**changes))
                self._audit(conn, who, "service_user.update", f"service_user:{su_id}",
                            {"fields": sorted(changes)})
            row = conn.execute(self._su_query(None).where(service_users.c.id == su_id)).one()
        return self._service_user(row)

    def delete_service_user(self, su_id: str, scope: Scope, who: str) -> None:
        with self.db.write() as conn:
            if conn.execute(self._su_query(scope)
                            .where(service_users.c.id == su_id)).first() is None:
                raise NotFound(f"no service user {su_id!r}")
            conn.execute(service_users.delete().where(service_users.c.id == su_id))
            self._audit(conn, who, "service_user.delete", f"service_user:{su_id}")

    # -- carers ----------------------------------------------------------------------------
    def _carer_rows(self, conn: Connection, query: sa.Select[Any]) -> list[Carer]:
        rows = conn.execute(query).all()
        tags: dict[str, list[str]] = {r.id: [] for r in rows}
        if rows:
            for tag_row in conn.execute(sa.select(carer_tags)
                                        .where(carer_tags.c.carer_id.in_(list(tags)))
                                        .order_by(carer_tags.c.tag)):
                tags[tag_row.carer_id].append(tag_row.tag)
        return [Carer(**r._mapping, tags=tags[r.id]) for r in rows]

    def _carer_query(self, scope: Scope) -> sa.Select[Any]:
        query = sa.select(carers)
        if scope is not None:
            query = query.where(carers.c.organisation_id == scope)
        return query

    def _set_tags(self, conn: Connection, carer_id: str, tags: Iterable[str]) -> None:
        tags = list(tags)
        if tags:
            held = conn.execute(sa.select(carer_tags.c.tag).where(
                carer_tags.c.tag.in_(tags), carer_tags.c.carer_id != carer_id)).scalars().all()
            if held:
                # says only that the tag is taken, not by whom (it may be another organisation)
                raise Conflict(f"tag {held[0]!r} is already registered to a carer", "tags")
        conn.execute(carer_tags.delete().where(carer_tags.c.carer_id == carer_id))
        if tags:
            conn.execute(carer_tags.insert(), [{"tag": t, "carer_id": carer_id} for t in tags])

    def create_carer(self, data: CarerIn, org_id: str, who: str) -> Carer:
        carer_id = data.id or _new_id("c")
        with self.db.write() as conn:
            self._check_org(conn, org_id)
            if conn.execute(sa.select(carers.c.id).where(carers.c.id == carer_id)).first():
                raise Conflict(f"carer id {carer_id!r} is already used", "id")
            conn.execute(carers.insert().values(id=carer_id, organisation_id=org_id,
                                                name=data.name, phone=data.phone,
                                                created_at=self._now()))
            self._set_tags(conn, carer_id, data.tags)
            self._audit(conn, who, "carer.create", f"carer:{carer_id}")
            return self._carer_rows(conn, self._carer_query(None)
                                    .where(carers.c.id == carer_id))[0]

    def list_carers(self, scope: Scope) -> list[Carer]:
        with self.db.read() as conn:
            return self._carer_rows(conn, self._carer_query(scope).order_by(carers.c.name))

    def get_carer(self, carer_id: str, scope: Scope) -> Carer:
        with self.db.read() as conn:
            found = self._carer_rows(conn, self._carer_query(scope)
                                     .where(carers.c.id == carer_id))
        if not found:
            raise NotFound(f"no carer {carer_id!r}")
        return found[0]

    def update_carer(self, carer_id: str, patch: CarerPatch, scope: Scope, who: str) -> Carer:
        changes = patch.model_dump(exclude_unset=True, exclude_none=True)
        tags = changes.pop("tags", None)
        with self.db.write() as conn:
            if conn.execute(self._carer_query(scope)
                            .where(carers.c.id == carer_id)).first() is None:
                raise NotFound(f"no carer {carer_id!r}")
            if changes:
                conn.execute(carers.update().where(carers.c.id == carer_id).values(**changes))
            if tags is not None:
                self._set_tags(conn, carer_id, tags)
            self._audit(conn, who, "carer.update", f"carer:{carer_id}",
                        {"fields": sorted([*changes, *(["tags"] if tags is not None else [])])})
            return self._carer_rows(conn, self._carer_query(None)
                                    .where(carers.c.id == carer_id))[0]

    def delete_carer(self, carer_id: str, scope: Scope, who: str) -> None:
        with self.db.write() as conn:
            if conn.execute(self._carer_query(scope)
                            .where(carers.c.id == carer_id)).first() is None:
                raise NotFound(f"no carer {carer_id!r}")
            conn.execute(carer_tags.delete().where(carer_tags.c.carer_id == carer_id))
            conn.execute(carers.delete().where(carers.c.id == carer_id))
            self._audit(conn, who, "carer.delete", f"carer:{carer_id}")

    # -- for plans -------------------------------------------------------------------------
    def plan_people(self, household: Household) -> tuple[set[str], dict[str, set[str]]]:
        """The household's service-user ids, and its organisation's carers with their tags."""
        with self.db.read() as conn:
            su_ids = set(conn.execute(sa.select(service_users.c.id).where(
                service_users.c.household_id == household.id)).scalars())
            carer_list = self._carer_rows(conn, self._carer_query(household.organisation_id))
        return su_ids, {c.id: set(c.tags) for c in carer_list}
