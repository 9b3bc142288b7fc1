"""``GET /api/gateways`` for a large fleet: pages by id that a client follows through the
``X-Next-Cursor`` header, a state filter, clear errors for bad paging parameters, and staff
still see only their own organisation's gateways on every page."""

from __future__ import annotations

from homecall.wire import StatusMessage
from tests.central.conftest import T0, World

FLEET = [f"gw-page-{n:02d}" for n in range(1, 12)]
OFFLINE = {"gw-page-03", "gw-page-04", "gw-page-10"}


def _fleet(world: World) -> None:
    store = world.app.state.store
    for gateway_id in FLEET:
        state = "offline" if gateway_id in OFFLINE else "online"
        status = StatusMessage(gateway_id=gateway_id, state=state, time=T0, last_seq=0)
        store.record_status(gateway_id, status.model_dump_json(), state, T0)


def _follow(world: World, url: str, headers: dict[str, str]) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        response = world.client.get(url if cursor is None else f"{url}&cursor={cursor}",
                                    headers=headers)
        assert response.status_code == 200, response.text
        pages.append([g["id"] for g in response.json()])
        cursor = response.headers.get("x-next-cursor")
        if cursor is None:
            return pages
        assert len(pages) < 50, "the cursor never ran out"


def test_pages_cover_every_gateway_once_in_id_order(world: World) -> None:
    _fleet(world)
    admin = world.headers["admin"]
    everyone = [g["id"] for g in world.client.get("/api/gateways", headers=admin).json()]
    assert set(FLEET) <= set(everyone) and everyone == sorted(everyone)

    pages = _follow(world, "/api/gateways?limit=4", admin)
    assert [len(p) for p in pages[:-1]] == [4] * (len(pages) - 1)
    assert 1 <= len(pages[-1]) <= 4
    assert [g for page in pages for g in page] == everyone


def test_state_filter_pages_only_that_state(world: World) -> None:
    _fleet(world)
    admin = world.headers["admin"]
    pages = _follow(world, "/api/gateways?limit=2&state=offline", admin)
    assert [g for page in pages for g in page] == sorted(OFFLINE)
    listed = world.client.get("/api/gateways?state=offline", headers=admin).json()
    assert {g["state"] for g in listed} == {"offline"}
    # a page carries the same counts as the whole list does
    whole = {g["id"]: g for g in world.client.get("/api/gateways", headers=admin).json()}
    assert all(g == whole[g["id"]] for g in listed)


def test_bad_paging_parameters_say_what_is_wrong(world: World) -> None:
    admin = world.headers["admin"]
    for query, field in (("limit=0", "limit"), ("limit=1001", "limit"),
                         ("state=asleep", "state"), ("cursor=" + "x" * 65, "cursor")):
        response = world.client.get(f"/api/gateways?{query}", headers=admin)
        assert response.status_code == 422, query
        assert any(field in err["loc"] for err in response.json()["detail"]), response.text


def test_every_page_is_scoped_to_the_callers_organisation(world: World) -> None:
    _fleet(world)  # gateways with no household belong to no organisation
    monitor = world.headers["monitor"]
    pages = _follow(world, "/api/gateways?limit=1", monitor)
    assert [g for page in pages for g in page] == [world.a.gateway]
    assert world.b.gateway not in {g["id"] for g in world.client.get(
        f"/api/gateways?limit=5&cursor={world.a.gateway}", headers=monitor).json()}
