"""The run itself on one asyncio loop, phase after phase: connect, steady, stop (a sample
stopped without DISCONNECT, watched until the broker's last will, central's offline view
and its ``gateway_offline`` alert) and flood, with the generator's background work
(heartbeats, events, ack watch, keep-alive, resource sampling) running under them.
:func:`drive` returns each phase's figures, and the totals, as one dict.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

from orchestration.benchmarks.fleet.errors import FleetError
from orchestration.benchmarks.fleet.gateway import KEEPALIVE_S
from orchestration.benchmarks.fleet.generator import Fleet
from orchestration.benchmarks.fleet.monitor import Monitor, Sampler, http_get, offline_alerts
from orchestration.benchmarks.fleet.report import lag_summary, percentile


async def drive(fleet: Fleet, sampler: Sampler) -> dict[str, Any]:
    args = fleet.args
    fleet.loop = asyncio.get_running_loop()
    results: dict[str, Any] = {}
    monitor = Monitor(fleet)
    monitor_error = None
    try:
        # before the gateways: paho's own loop uses select(), which cannot watch a descriptor
        # above 1023, and N gateway sockets come first otherwise
        await monitor.start()
    except FleetError as err:
        monitor_error = str(err)

    async def sample_forever() -> None:
        while True:
            await asyncio.sleep(1.0)
            sampler.sample()

    background = [asyncio.create_task(coro) for coro in (
        fleet.heartbeats(), fleet.events(), fleet.ack_watch(), fleet.keepalive(),
        sample_forever())]
    try:
        # connect
        sampler.begin()
        cpu0 = time.process_time()
        t0 = time.monotonic()
        results["connect"] = await fleet.connect_all(timeout_s=max(60.0, len(fleet.gateways) / 50))
        results["connect"]["generator_cpu_s"] = round(time.process_time() - cpu0, 1)
        results["connect"]["resources"] = sampler.end()
        print(f"connect: {json.dumps(results['connect'])}", file=sys.stderr)

        # steady
        fleet.running = True
        sampler.begin()
        cpu0, t0 = time.process_time(), time.monotonic()
        acked0, lags0 = fleet.counters.acked_events, len(fleet.counters.lags)
        published0, hb0 = fleet.counters.published, fleet.counters.heartbeats
        skipped0, disconnects0 = fleet.counters.heartbeats_skipped, fleet.counters.disconnects
        await asyncio.sleep(args.duration)
        elapsed = time.monotonic() - t0
        results["steady"] = {
            "seconds": round(elapsed, 1),
            "events_published": fleet.counters.published - published0,
            "events_acked_per_s": round((fleet.counters.acked_events - acked0) / elapsed, 1),
            "events_offered_per_s": round(len(fleet.gateways) / args.event_interval, 1),
            "heartbeats_per_s": round((fleet.counters.heartbeats - hb0) / elapsed, 1),
            "heartbeats_offered_per_s": round(len(fleet.gateways) / args.heartbeat, 1),
            "heartbeats_skipped_by_generator": fleet.counters.heartbeats_skipped - skipped0,
            "disconnects": fleet.counters.disconnects - disconnects0,
            "lag": lag_summary(fleet.counters.lags[lags0:]),
            "unacked_at_end": sum(len(g.unacked) for g in fleet.gateways),
            "generator_cpu_pct": round((time.process_time() - cpu0) / elapsed * 100, 1),
            "resources": sampler.end(),
        }
        print(f"steady: {json.dumps(results['steady'])}", file=sys.stderr)

        # stop a sample
        count = args.stop_sample if args.stop_sample is not None else max(
            5, len(fleet.gateways) // 100)
        wait_s = args.stop_wait or 3 * args.heartbeat + 1.5 * KEEPALIVE_S + 10
        sample = fleet.pick_sample(min(count, len(fleet.gateways)))
        try:
            if monitor_error is not None:
                raise FleetError(monitor_error)
            await monitor.watch(sample)
        except FleetError as err:  # the stop is still measured through central's view
            monitor_error = str(err)
            print(f"no last-will times: {err}", file=sys.stderr)
        await asyncio.sleep(1.0)  # the retained 'online' arrives first
        fleet.stop_sample(sample, args.stop_mode)
        stopped_ids = {g.gateway_id for g in sample}
        deadline = time.monotonic() + wait_s
        polls: list[float] = []
        while time.monotonic() < deadline:
            await asyncio.sleep(min(5.0, args.heartbeat / 2))
            p0 = time.monotonic()
            try:
                view = await http_get(fleet.http_port, "/api/gateways?state=offline",
                                      headers=fleet.http_headers)
            except Exception as err:  # reported; the bench goes on
                print(f"GET /api/gateways failed: {err}", file=sys.stderr)
                continue
            polls.append(time.monotonic() - p0)
            for row in view:
                gw = fleet.by_id.get(row["id"])
                if row["id"] in stopped_ids and gw is not None and row.get("state") == "offline":
                    gw.central_offline_at = gw.central_offline_at or p0
            try:
                await offline_alerts(fleet, stopped_ids)
            except Exception as err:  # reported; the bench goes on
                print(f"GET /api/alerts failed: {err}", file=sys.stderr)
            if all(g.central_offline_at is not None and g.central_alert_at is not None
                   for g in sample):
                break
        wills = [g.will_seen_at - g.stopped_at for g in sample
                 if g.will_seen_at is not None and g.stopped_at is not None]
        views = [g.central_offline_at - g.stopped_at for g in sample
                 if g.central_offline_at is not None and g.stopped_at is not None]
        alerted = [g.central_alert_at - g.stopped_at for g in sample
                   if g.central_alert_at is not None and g.stopped_at is not None]
        results["stop"] = {
            "mode": args.stop_mode,
            "central_alerted": len(alerted),
            "central_alert_after_s": {"p50": round(percentile(alerted, 50), 2),
                                      "max": round(max(alerted), 2) if alerted else None,
                                      "limit": 3 * args.heartbeat},
            "monitor_error": monitor_error,
            "sample": len(sample),
            "will_published": len(wills),
            "will_after_s": {"p50": round(percentile(wills, 50), 2),
                             "max": round(max(wills), 2) if wills else None},
            "central_shows_offline": len(views),
            "central_offline_after_s": {"p50": round(percentile(views, 50), 2),
                                        "max": round(max(views), 2) if views else None},
            "api_gateways_poll_s": round(percentile(polls, 50), 2) if polls else None,
            "stopped_at_unix": {g.gateway_id: round(time.time() - (time.monotonic()
                                - (g.stopped_at or 0)), 3) for g in sample},
        }
        brief = {k: v for k, v in results["stop"].items() if k != "stopped_at_unix"}
        print(f"stop: {json.dumps(brief)}", file=sys.stderr)

        # flood
        if args.backlog > 0:
            live = [g for g in fleet.gateways if g.stopped_at is None and g.connected]
            now = datetime.now(UTC)
            build0 = time.monotonic()
            prepared = [(gw, [gw.next_event(fleet.rng, now) for _ in range(args.backlog)])
                        for gw in live]
            build_s = time.monotonic() - build0
            # the steady stream goes on during the flood: the fleet does not pause for it
            sampler.begin()
            cpu0, t0 = time.process_time(), time.monotonic()
            acked0, lags0 = fleet.counters.acked_events, len(fleet.counters.lags)
            resent0 = fleet.counters.resent
            flood_deadline = t0 + max(120.0, len(live) * args.backlog / 200)
            for index, (gw, events) in enumerate(prepared):
                for seq, payload in events:
                    fleet.publish_event(gw, seq, payload)
                if index % 100 == 99:
                    await asyncio.sleep(0)
            last_seq = {gw.gateway_id: events[-1][0] for gw, events in prepared}
            while time.monotonic() < flood_deadline and any(
                fleet.by_id[gid].acked < seq for gid, seq in last_seq.items()
            ):
                await asyncio.sleep(0.05)
            elapsed = time.monotonic() - t0
            done = sum(1 for gid, seq in last_seq.items() if fleet.by_id[gid].acked >= seq)
            total = len(live) * args.backlog
            results["flood"] = {
                "gateways": len(live),
                "events": total,
                "all_acked": done == len(live),
                "seconds": round(elapsed, 1),
                "events_acked_per_s": round((fleet.counters.acked_events - acked0) / elapsed, 1),
                "lag": lag_summary(fleet.counters.lags[lags0:]),
                "resent": fleet.counters.resent - resent0,
                "generator_cpu_pct": round((time.process_time() - cpu0) / elapsed * 100, 1),
                "prepare_s": round(build_s, 1),
                "resources": sampler.end(),
            }
            print(f"flood: {json.dumps(results['flood'])}", file=sys.stderr)
        fleet.running = False
        results["totals"] = {
            "published": fleet.counters.published, "resent": fleet.counters.resent,
            "acks": fleet.counters.acks, "disconnects": fleet.counters.disconnects,
            "connect_failed": fleet.counters.connect_failed,
        }
        # central's own accounting: nothing lost or duplicated
        with contextlib.suppress(Exception):
            report = await http_get(fleet.http_port, "/api/report", timeout_s=300,
                                    headers=fleet.http_headers)
            results["central_report"] = {k: report.get(k) for k in
                                         ("events_lost", "events_duplicated")}
    finally:
        for task in background:
            task.cancel()
        for gw in fleet.gateways:
            if gw.client is not None and gw.stopped_at is None:
                with contextlib.suppress(Exception):
                    gw.client.disconnect()
        with contextlib.suppress(Exception):
            monitor.stop()
        await asyncio.sleep(0.5)
    return results
