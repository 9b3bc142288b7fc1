"""A plan's references to people: every service user and carer a plan names must be a
registered record of the household's organisation (service users: living in the household
the gateway belongs to), and every tag a plan lists for a carer must be registered to that
carer. A carer listed without tags gets the tags registered to them, so coordinators need not
copy fob numbers into plans. The gateway still receives only pseudonymous ids and salted tag
digests (``PlanDocument.for_gateway``).
"""

from __future__ import annotations

from dataclasses import dataclass

from central.people.repository import People, Scope
from homecall.plan import DocumentCarer, PlanDocument


@dataclass(frozen=True)
class PlanProblem:
    """One wrong reference; ``loc`` is the path of the field in the uploaded plan."""

    loc: tuple[str | int, ...]
    msg: str

    def as_detail(self) -> dict[str, object]:
        return {"loc": ["body", *self.loc], "msg": self.msg, "type": "plan_reference"}


def check_references(document: PlanDocument, people: People,
                     scope: Scope) -> tuple[PlanDocument, list[PlanProblem]]:
    """``document`` with registered tags filled in, and every reference problem found."""
    household = people.household_for_gateway(document.gateway, scope)
    if household is None:
        return document, [PlanProblem(("gateway",), f"no household has gateway "
                                      f"{document.gateway!r}; register the household first")]
    residents, carers = people.plan_people(household)
    problems: list[PlanProblem] = []
    for i, su in enumerate(document.service_users):
        if su not in residents:
            problems.append(PlanProblem(("service_users", i),
                                        f"service user {su!r} is not registered in household "
                                        f"{household.id!r} (gateway {document.gateway!r})"))
    filled: list[DocumentCarer] = []
    for i, carer in enumerate(document.carers):
        registered = carers.get(carer.id)
        if registered is None:
            problems.append(PlanProblem(("carers", i, "id"), f"no carer {carer.id!r} in the "
                                        "household's organisation"))
            filled.append(carer)
            continue
        for j, tag in enumerate(carer.tags):
            if tag not in registered:
                problems.append(PlanProblem(("carers", i, "tags", j), f"tag {j + 1} of carer "
                                            f"{carer.id!r} is not registered to that carer"))
        filled.append(carer if carer.tags else
                      DocumentCarer(id=carer.id, tags=tuple(sorted(registered))))
    for i, visit in enumerate(document.visits):
        if visit.service_user not in residents:
            problems.append(PlanProblem(("visits", i, "service_user"),
                                        f"visit {visit.id!r}: service user "
                                        f"{visit.service_user!r} is not registered in household "
                                        f"{household.id!r}"))
        for carer_id in visit.carers:
            if carer_id not in carers:
                problems.append(PlanProblem(("visits", i, "carers"),
                                            f"visit {visit.id!r}: no carer {carer_id!r} in the "
                                            "household's organisation"))
    return document.model_copy(update={"carers": tuple(filled)}), problems
