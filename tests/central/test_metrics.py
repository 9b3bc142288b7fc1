"""``/metrics`` in Prometheus text format: counts read from the database (each organisation
has one open critical visit_missed in the fixture), no names or addresses, and a login."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.central.conftest import World


def test_metrics_count_open_alerts_and_gateways_without_personal_data(world: World) -> None:
    client = world.client
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=world.headers["monitor"]).status_code == 403
    reply = client.get("/metrics", headers=world.headers["admin"])
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(reply.text)
               for s in family.samples}
    assert samples[("homecall_alerts_open",
                    (("severity", "critical"), ("type", "visit_missed")))] == 2.0
    assert samples[("homecall_escalations", ())] == 0.0
    for private in ("Person A", "Care Org A Road", "code 1234", "0A00000001"):
        assert private not in reply.text
