"""The CLI's progress bar shows done of total, percent, rate and time left, on a terminal only."""

from __future__ import annotations

import io

from rich.console import Console

from opencdp.cli import remote


def test_the_bar_shows_done_of_total_percent_and_rate(monkeypatch):
    screen = io.StringIO()
    monkeypatch.setattr(remote, "err", Console(file=screen, force_terminal=True, width=160))
    api = remote.Remote(client=None)  # type: ignore[arg-type]
    with api.progress("processing", None, "lines") as bar:
        task = bar.tasks[0].id
        bar.update(task, completed=1_000)
        bar.refresh()
        assert "1,000 lines" in screen.getvalue() and " of " not in screen.getvalue()
        for done in (20_000, 40_000):
            bar.update(task, completed=done, total=80_000)
        bar.refresh()
    shown = screen.getvalue()
    assert "40,000 of 80,000 lines" in shown and "50%" in shown and "lines/s" in shown


def test_no_bar_when_not_a_terminal_or_quiet(monkeypatch):
    screen = io.StringIO()
    monkeypatch.setattr(remote, "err", Console(file=screen, force_terminal=False))
    with remote.Remote(client=None).progress("processing", 10, "lines") as bar:  # type: ignore[arg-type]
        bar.update(bar.tasks[0].id, completed=5)
    screen_tty = io.StringIO()
    monkeypatch.setattr(remote, "err", Console(file=screen_tty, force_terminal=True))
    with remote.Remote(client=None, quiet=True).progress("processing", 10, "lines") as bar:  # type: ignore[arg-type]
        bar.update(bar.tasks[0].id, completed=5)
    assert screen.getvalue() == "" and screen_tty.getvalue() == ""
