"""Every command's --help has an Example written for it with options it takes, and every
command that prints data takes --json whose output parses: the click tree walked in
process (click's runner), the --json outputs of a real node made with `init`."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from node.cli.examples import EXAMPLES
from node.cli.main import cli
from tests.support.nodes import free_port


def _tree(command: click.Command, path: tuple[str, ...]) -> list[tuple[str, click.Command]]:
    found = [(" ".join(path), command)]
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None, f"{path} {name} does not load"
            found += _tree(sub, (*path, name))
    return found


TREE = _tree(cli, ())


def _resolve(words: list[str]) -> tuple[click.Command, str, list[str]]:
    """The command an example's words name, its path, and the words left for it."""
    command: click.Command = cli
    path: list[str] = []
    while isinstance(command, click.Group) and words and not words[0].startswith("-"):
        sub = command.get_command(click.Context(command), words[0])
        assert sub is not None, f"no command {words[0]!r} under {' '.join(path) or 'lapor-node'}"
        command, path, words = sub, [*path, words[0]], words[1:]
    return command, " ".join(path), words


def _examples(help_text: str) -> list[str]:
    _, found, section = help_text.partition("\n  Example:\n")
    assert found, f"no Example section in {help_text}"
    return [line.strip() for line in section.splitlines() if line.strip()]


@pytest.mark.parametrize(("path", "command"), TREE, ids=[p or "lapor-node" for p, _ in TREE])
def test_every_command_has_an_example_of_its_own(path: str, command: click.Command) -> None:
    """--help shows an Example section; each line runs this command (or, for a group, one of
    its commands), and every option it gives is one that command takes."""
    result = CliRunner().invoke(cli, [*path.split(), "--help"])
    assert result.exit_code == 0, result.output
    for line in _examples(result.output):
        shell = shlex.split(line, posix=True)
        words = shell[1 : next((i for i, w in enumerate(shell) if w in "|<>"), len(shell))]
        assert shell[0] == "lapor-node", line
        named, named_path, rest = _resolve(words)
        assert named_path == path or named_path.startswith(f"{path} ".lstrip()), (line, path)
        ctx = click.Context(named, info_name=named_path)
        parser = named.make_parser(ctx)
        parser.parse_args(rest)  # click.NoSuchOption for an option the command lacks


def test_the_examples_table_has_no_stale_entries() -> None:
    """Every example is for a command that exists."""
    assert set(EXAMPLES) == {path for path, _ in TREE}


# --- --json ---------------------------------------------------------------------------

# Commands with --json whose output is not parsed here, and why: each needs another node
# serving, a token from one, or a state a fresh node is not in.
NOT_RUN = {
    "admin handover": "replaces the operator credential the other runs use",
    "audit proof": "reads a running node over mTLS",
    "audit reconcile": "needs a parent's and a child's exports",
    "audit verify-proof": "needs a tlog-proof (tests/integration/test_tiles.py runs it)",
    "backup restore": "refused while the node's files are in use by the runs",
    "complaint archive": "ends the complaint the later runs use",
    "complaint erase": "ends the complaint the later runs use",
    "complaint escalate": "needs a complaint referred from a parent and overdue",
    "complaint refer": "covered by `complaint dispose` (the same printer)",
    "complaint reply": "needs a complaint resolved and waiting for the reporter",
    "complaint resolve": "needs a complaint in progress held here",
    "complaint return": "needs a complaint referred from a parent",
    "complaint update": "needs a complaint held here",
    "intake attachment": "needs a submission with a file from a gateway",
    "intake submit": "talks to a serving node's intake port",
    "keys rotate": "slow, and changes the keys the later runs sign with",
    "link approve": "needs a join waiting from a child",
    "link join": "talks to a serving parent's enrollment port",
    "link reject": "needs a join waiting",
    "link resume": "needs a suspended peer",
    "link revoke": "ends the link the later runs use",
}


def _runs(root: Path) -> list[tuple[str, list[str]]]:
    prov, kukar = root / "prov", root / "kukar"
    config = ["--config", str(prov / "node.yaml")]
    return [
        ("init", ["init", "--id", "id-64", "--name", "Prov", "--dir", str(prov),
                  "--listen", f"127.0.0.1:{free_port()}", "--json"]),
        ("init", ["init", "--id", "id-64-02", "--name", "Kukar", "--dir", str(kukar),
                  "--listen", f"127.0.0.1:{free_port()}", "--json"]),
        ("identity show", ["identity", "show", *config, "--json"]),
        ("admin show", ["admin", "show", *config, "--json"]),
        ("link add", ["link", "add", str(root / "kukar-card.json"), "--as", "child", *config,
                      "--json"]),
        ("link list", ["link", "list", *config, "--json"]),
        ("link invite", ["link", "invite", "--child", "id-64-03", "--name", "Paser", *config,
                         "--json"]),
        ("keys show", ["keys", "show", *config, "--json"]),
        ("complaint submit", ["complaint", "submit", "--title", "Jalan rusak", "--description",
                              "Lubang", "--category", "infrastruktur", "--region", "64.02",
                              *config, "--json"]),
        ("complaint list", ["complaint", "list", *config, "--json"]),
        ("complaint show", ["complaint", "show", "{id}", *config, "--json"]),
        ("complaint hold", ["complaint", "hold", "{id}", "--note", "lokasi?", *config, "--json"]),
        ("complaint verify", ["complaint", "verify", "{id}", *config, "--json"]),
        ("complaint route", ["complaint", "route", "{id}", *config, "--json"]),
        ("complaint dispose", ["complaint", "dispose", "{id}", "--to", "id-64-02", *config,
                               "--json"]),
        ("complaint tick", ["complaint", "tick", *config, "--json"]),
        ("intake gateway add", ["intake", "gateway", "add", "web", "--channel", "web", *config,
                                "--json"]),
        ("intake gateway list", ["intake", "gateway", "list", *config, "--json"]),
        ("intake attachments", ["intake", "attachments", "{id}", *config, "--json"]),
        ("report", ["report", "--year", "{year}", *config, "--json"]),
        ("report backlog", ["report", "backlog", "--year", "{year}", "--deadline",
                            "{deadline}", *config, "--json"]),
        ("report dashboard-token", ["report", "dashboard-token", "--json"]),
        ("audit checkpoint", ["audit", "checkpoint", *config, "--json"]),
        ("audit state", ["audit", "state", *config, "--json"]),
        ("audit contents", ["audit", "contents", *config, "--json"]),
        ("audit export", ["audit", "export", "--out", str(root / "ledger.json"), *config,
                          "--json"]),
        ("audit verify", ["audit", "verify", str(root / "ledger.json"), "--json"]),
        ("audit consistency", ["audit", "consistency", "--from", "1", "--export",
                               str(root / "ledger.json"), "--json"]),
        ("witness key", ["witness", "key", *config, "--json"]),
        ("audit identity", ["audit", "identity", "--name", "bpkp", "--dir", str(root / "aud"),
                            "--json"]),
        ("backup create", ["backup", "create", "--out", str(root / "backup"), *config, "--json"]),
        ("backup verify", ["backup", "verify", str(root / "backup"), "--json"]),
    ]  # fmt: skip


def test_every_json_output_parses(tmp_path: Path) -> None:
    """Each command that prints data, run with --json on a real node, prints one JSON
    document; the commands not run are listed with the reason (NOT_RUN)."""
    with_json = {path for path, command in TREE if any(p.name == "as_json" for p in command.params)}
    runs = _runs(tmp_path)
    assert with_json == {name for name, _ in runs} | set(NOT_RUN)
    runner = CliRunner()
    values: dict[str, str] = {}
    for name, args in runs:
        if name == "link add":
            card = runner.invoke(cli, ["identity", "export", "--config",
                                       str(tmp_path / "kukar" / "node.yaml")])  # fmt: skip
            assert card.exit_code == 0, card.output
            (tmp_path / "kukar-card.json").write_text(card.stdout)
        args = [a.format(**values) if "{" in a else a for a in args]
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, (name, result.output)
        try:
            document = json.loads(result.stdout)
        except ValueError as e:
            raise AssertionError(f"{name} --json printed no JSON: {result.stdout!r}") from e
        if name == "complaint submit":
            values["id"] = document["tracking_id"]
            year = values["id"].split(".")[1]
            values["year"] = year
            values["deadline"] = f"{int(year) + 1}-12-31"
