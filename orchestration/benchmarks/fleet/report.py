"""What a run's figures become: the percentiles and lag summary (p50 / p99 / max in ms) the
phases record, and the docs/benchmarks.md section ``--write-docs`` writes: its heading (one
section per gateway count, heartbeat and stop mode) and its table of measures.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))]


def lag_summary(lags: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(lags, 50) * 1000, 1),
        "p99_ms": round(percentile(lags, 99) * 1000, 1),
        "max_ms": round(max(lags) * 1000, 1) if lags else float("nan"),
    }


def heading(args: argparse.Namespace) -> str:
    beat = "" if args.heartbeat == 10 else f", {args.heartbeat:g} s heartbeat"
    mode = "" if args.stop_mode == "close" else f", {args.stop_mode} stop"
    return f"## fleet: {args.gateways} gateways{beat}{mode}"


def markdown(args: argparse.Namespace, r: dict[str, Any]) -> str:
    command = (f"homecall bench fleet --gateways {args.gateways} --heartbeat {args.heartbeat:g} "
               f"--event-interval {args.event_interval:g} --duration {args.duration:g} "
               f"--backlog {args.backlog} --stop-mode {args.stop_mode}"
               + (" --no-persistence" if args.no_persistence else "") + " --write-docs")
    c, s = r["connect"], r["steady"]
    st, f = r["stop"], r.get("flood")

    def res(phase: dict[str, Any]) -> str:
        b, cen = phase["resources"]["broker"], phase["resources"]["central"]
        return (f"broker {b['cpu_pct']} % CPU / {b['rss_peak_mb']} MB; "
                f"central {cen['cpu_pct']} % / {cen['rss_peak_mb']} MB")

    lines = [
        heading(args),
        "",
        f"Command: `{command}`",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {r['machine']}; a shared machine (other "
        "work ran beside it), one Mosquitto and one central (SQLite) on loopback, the "
        "generator in one process. CPU is % of one core.",
        "",
        "| measure | figure |",
        "| --- | --- |",
        f"| connect: all CONNACKs / central's first ack to all | {c['all_connack_s']} s / "
        f"{c['all_first_ack_s']} s ({c['connected']} connected, {c['connect_failed']} failed) |",
        f"| connect phase resources | {res(c)} |",
        f"| steady: events acked/s (offered); heartbeats sent/s (offered) | "
        f"{s['events_acked_per_s']} ({s.get('events_offered_per_s', '?')}); "
        f"{s['heartbeats_per_s']} ({s.get('heartbeats_offered_per_s', '?')}) |",
        f"| steady: events still unacked at the end of the phase | {s['unacked_at_end']} |",
        f"| steady: ingest lag p50 / p99 / max (publish → central's ack) | "
        f"{s['lag']['p50_ms']} / {s['lag']['p99_ms']} / {s['lag']['max_ms']} ms |",
        f"| steady resources | {res(s)}; generator {s['generator_cpu_pct']} % |",
        f"| stopped without DISCONNECT ({st['mode']}): last will published after, p50 / max | "
        f"{st['will_after_s']['p50']} / {st['will_after_s']['max']} s "
        f"({st['will_published']}/{st['sample']}) |",
        f"| ... central's /api/gateways shows it offline after (polled every "
        f"{min(5.0, args.heartbeat / 2):g} s), p50 / max | "
        f"{st['central_offline_after_s']['p50']} / {st['central_offline_after_s']['max']} s "
        f"({st['central_shows_offline']}/{st['sample']}; one poll took "
        f"{st['api_gateways_poll_s']} s) |",
        f"| ... central's `gateway_offline` alert stored after, p50 / max (goal: within 3 "
        f"heartbeats, {st['central_alert_after_s']['limit']:g} s) | "
        f"{st['central_alert_after_s']['p50']} / {st['central_alert_after_s']['max']} s "
        f"({st['central_alerted']}/{st['sample']}) |",
    ]
    if f:
        lines += [
            f"| flood: {f['events']} events ({args.backlog} from each of {f['gateways']} "
            f"gateways at once): ingested/s | {f['events_acked_per_s']} "
            f"({'all acked' if f['all_acked'] else 'NOT all acked'} in {f['seconds']} s, "
            f"{f['resent']} resent) |",
            f"| flood: lag p50 / p99 / max | {f['lag']['p50_ms']} / {f['lag']['p99_ms']} / "
            f"{f['lag']['max_ms']} ms |",
            f"| flood resources | {res(f)}; generator {f['generator_cpu_pct']} % |",
        ]
    rep = r.get("central_report") or {}
    lines += [
        f"| central's report: events lost / duplicated | {rep.get('events_lost')} / "
        f"{rep.get('events_duplicated')} |",
        f"| open files, peak: broker / central | {r['open_files_peak'].get('broker')} / "
        f"{r['open_files_peak'].get('central')} |",
        "",
        "Settings seen: " + "; ".join(f"{k} {str(v).replace(chr(9), '-')}"
                                      for k, v in r["settings"].items()) + ".",
    ]
    return "\n".join(lines)
