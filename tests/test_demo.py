"""The demo is the main job: it must hold every check, in-process and through the CLI."""

from __future__ import annotations

import io

import pytest

from wxpay_async.cli import main
from wxpay_async.demo import print_table, run_demo


async def test_demo_checks_all_hold() -> None:
    checks = await run_demo(jobs=40, concurrency=8, seed=5)
    assert [c.step for c in checks] == [
        "platform certificates",
        "HK onboarding ×40 under faults",
        "image upload",
        "H5 permission + review notification",
        "PayScore authorization lifecycle",
        "cloud-base authorization",
    ]
    failed = [c for c in checks if not c.ok]
    assert not failed, failed
    out = io.StringIO()
    print_table(checks, out)
    assert "6/6 checks held" in out.getvalue()


def test_demo_command_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--jobs", "10", "--concurrency", "4"]) == 0
    assert "6/6 checks held" in capsys.readouterr().out


def test_cli_without_a_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert "onboard" in capsys.readouterr().out
