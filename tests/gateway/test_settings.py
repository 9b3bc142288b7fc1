"""One ``GatewaySettings``: the command line beats the environment, which beats the TOML
config file, which beats the defaults; a bad value is one clear line."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pytest

from gateway.settings import GatewaySettings, add_arguments, run


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_cli_beats_env_beats_file_beats_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('id = "gw-file-1"\njournal = "/var/lib/homecall/journal.db"\n'
                      'mqtt_host = "broker.file"\nmqtt_port = 8883\nheartbeat = 30.0\n')
    monkeypatch.setenv("HOMECALL_GATEWAY_MQTT_HOST", "broker.env")
    monkeypatch.setenv("HOMECALL_GATEWAY_HEARTBEAT", "20")
    args = parse(["--config", str(config), "--heartbeat", "5"])
    given = {name: getattr(args, name, None) for name in GatewaySettings.model_fields}
    settings = GatewaySettings.load(config, **given)
    assert settings.id == "gw-file-1"  # file only
    assert settings.mqtt_port == 8883  # file beats default
    assert settings.mqtt_host == "broker.env"  # env beats file
    assert settings.heartbeat == 5.0  # command line beats env
    assert settings.journal_sync == "FULL"  # default


def test_a_bad_setting_is_one_clear_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR)
    args = parse(["--config", str(tmp_path / "absent.toml"), "--id", "gw-x-1",
                  "--journal", str(tmp_path / "j.db"), "--heartbeat", "-1"])
    assert run(args) == 2
    [record] = caplog.records
    assert record.getMessage().startswith("gateway settings: heartbeat:")
    assert "\n" not in record.getMessage()


def test_rfid_confirm_frames_defaults_to_two_and_is_bounded(tmp_path: Path) -> None:
    absent = tmp_path / "absent.toml"
    base = ["--config", str(absent), "--id", "gw-x-1", "--journal", str(tmp_path / "j.db")]
    for argv, expected in ((base, 2), ([*base, "--rfid-confirm-frames", "1"], 1)):
        args = parse(argv)
        given = {name: getattr(args, name, None) for name in GatewaySettings.model_fields}
        assert GatewaySettings.load(absent, **given).rfid_confirm_frames == expected
    args = parse([*base, "--rfid-confirm-frames", "0"])
    assert run(args) == 2  # refused with one line, like any bad setting


def test_a_config_file_that_is_not_toml_or_names_an_unknown_key_is_one_clear_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.ERROR)
    config = tmp_path / "gateway.toml"
    base = ["--config", str(config), "--id", "gw-x-1", "--journal", str(tmp_path / "j.db")]
    config.write_text('mqtt_host = "broker\n')  # an unterminated string
    assert run(parse(base)) == 2
    message = caplog.records[-1].getMessage()
    assert message.startswith(f"gateway settings: config file {config}:"), message
    assert "\n" not in message
    config.write_text('mqtt_hots = "broker"\n')  # a misspelt key is refused, not ignored
    assert run(parse(base)) == 2
    assert caplog.records[-1].getMessage().startswith("gateway settings: mqtt_hots:")
    # the environment's names are matched in any case, and an unknown one is not a setting
    config.write_text("")
    monkeypatch.setenv("homecall_gateway_mqtt_port", "8884")
    monkeypatch.setenv("HOMECALL_GATEWAY_NOT_A_SETTING", "x")
    args = parse(base)
    given = {name: getattr(args, name, None) for name in GatewaySettings.model_fields}
    assert GatewaySettings.load(config, **given).mqtt_port == 8884
