"""An example for every command's --help: the Example section click prints below the
options (the command's epilog), by command path. Plain data, so that main.py may attach
them to each command as it is loaded without importing anything heavy.

A test walks the command tree and fails on a command with no example here, or on an
example whose options the command does not take (tests/unit/cli/test_help_examples.py).
The node ids and tracking ids are those of the demo's East Kalimantan tree."""

from __future__ import annotations

import click

__all__ = ["EXAMPLES", "attach", "epilog"]

T = "id-64-02.2026.000123"  # a tracking id of Kabupaten Kutai Kartanegara (id-64-02)

EXAMPLES: dict[str, tuple[str, ...]] = {
    "": ("lapor-node init --id id-64 --name 'Provinsi Kalimantan Timur' --dir prov",),
    "admin": ("lapor-node admin show --config prov/node.yaml",),
    "admin handover": (
        "lapor-node admin handover --unit 'Diskominfo Provinsi Kalimantan Timur' "
        "--operator 'Rina, admin SP4N' --credential-out rina.credential --config prov/node.yaml",
    ),
    "admin show": ("lapor-node admin show --config prov/node.yaml --json",),
    "audit": ('lapor-node audit verify ledger-export.json --vkey "$(cat prov.vkey)"',),
    "audit checkpoint": ("lapor-node audit checkpoint --config prov/node.yaml",),
    "audit contents": ("lapor-node audit contents --config prov/node.yaml --json",),
    "audit export": ("lapor-node audit export --out prov-ledger.json --config prov/node.yaml",),
    "audit identity": ("lapor-node audit identity --name bpkp-auditor --dir auditor",),
    "audit proof": (
        "lapor-node audit proof --index 42 --node 10.0.0.5:7400 --card prov-card.json "
        "--identity auditor",
    ),
    "audit reconcile": (
        "lapor-node audit reconcile prov-ledger.json kukar-ledger.json "
        '--trust "$(cat national.vkey)"',
    ),
    "audit state": ("lapor-node audit state --config prov/node.yaml --json",),
    "audit consistency": (
        "lapor-node audit consistency --from 1200 --export prov-ledger.json --json",
        "lapor-node audit consistency --from 1200 --to 1500 --config prov/node.yaml",
    ),
    "audit verify-proof": (
        'lapor-node audit verify-proof entry-42.tlog-proof --vkey "$(cat prov.vkey)" '
        "--policy witnesses.policy",
    ),
    "audit verify": (
        'lapor-node audit verify prov-ledger.json --vkey "$(cat prov.vkey)"',
        "lapor-node audit verify --node 10.0.0.5:7400 --card prov-card.json --identity auditor",
    ),
    "backup": ("lapor-node backup create --out /backup/prov-2026-12-07 --config prov/node.yaml",),
    "backup create": (
        "lapor-node backup create --out /backup/prov-2026-12-07 --config prov/node.yaml",
    ),
    "backup restore": (
        "lapor-node backup restore /backup/prov-2026-12-07 --config prov/node.yaml",
    ),
    "backup verify": ("lapor-node backup verify /backup/prov-2026-12-07 --json",),
    "complaint": ("lapor-node complaint list --overdue --config prov/node.yaml",),
    "complaint archive": (
        f"lapor-node complaint archive {T} --reason duplicate --note 'same as .000119' "
        "--config kukar/node.yaml",
    ),
    "complaint dispose": (f"lapor-node complaint dispose {T} --config prov/node.yaml",),
    "complaint erase": (
        f"lapor-node complaint erase {T} --reason 'PDP request 2026/17' --yes "
        "--config kukar/node.yaml",
    ),
    "complaint escalate": (
        f"lapor-node complaint escalate {T} --reason 'no follow-up in 10 working days' "
        "--config kukar/node.yaml",
    ),
    "complaint hold": (
        f"lapor-node complaint hold {T} --note 'asked the reporter for the location' "
        "--config kukar/node.yaml",
    ),
    "complaint list": (
        "lapor-node complaint list --status in_progress --year 2026 --config prov/node.yaml",
        "lapor-node complaint list --overdue --json --config prov/node.yaml "
        "| jq -r '.[].tracking_id'",
    ),
    "complaint refer": (
        f"lapor-node complaint refer {T} --to id-64-02 --config prov/node.yaml",
        "lapor-node complaint refer --ids-from ids.txt --to id-64-02 --config prov/node.yaml",
    ),
    "complaint reply": (
        f"lapor-node complaint reply {T} --text 'The hole is still there' --config kukar/node.yaml",
    ),
    "complaint resolve": (
        f"lapor-node complaint resolve {T} --note 'road patched on 3 Dec' --config kukar/node.yaml",
    ),
    "complaint return": (
        f"lapor-node complaint return {T} --reason 'a provincial road' --config kukar/node.yaml",
    ),
    "complaint route": (f"lapor-node complaint route {T} --config prov/node.yaml --json",),
    "complaint show": (f"lapor-node complaint show {T} --content --config kukar/node.yaml",),
    "complaint submit": (
        "lapor-node complaint submit --title 'Jalan berlubang' --description 'Lubang besar di "
        "Jl. Gatot Subroto' --category infrastruktur --region 64.02 --config prov/node.yaml",
    ),
    "complaint tick": ("lapor-node complaint tick --config kukar/node.yaml --json",),
    "complaint update": (
        f"lapor-node complaint update {T} --note 'survey team sent' --config kukar/node.yaml",
    ),
    "complaint verify": (
        f"lapor-node complaint verify {T} --note 'complete, in scope' --config kukar/node.yaml",
    ),
    "demo": ("lapor-node demo --dir demo-data",),
    "identity": ("lapor-node identity export --out prov-card.json --config prov/node.yaml",),
    "identity export": ("lapor-node identity export --out prov-card.json --config prov/node.yaml",),
    "identity show": ("lapor-node identity show --config prov/node.yaml --json",),
    "init": (
        "lapor-node init --id id-64-02 --name 'Kabupaten Kutai Kartanegara' --dir kukar "
        "--listen 0.0.0.0:7400 --timezone Asia/Makassar --json",
    ),
    "intake": (
        "lapor-node intake gateway add web-portal --channel web --token-file web.token "
        "--config prov/node.yaml",
    ),
    "intake attachment": (
        f'lapor-node intake attachment {T} "$SHA256" --out photo.jpg --config kukar/node.yaml',
    ),
    "intake attachments": (f"lapor-node intake attachments {T} --config kukar/node.yaml --json",),
    "intake gateway": ("lapor-node intake gateway list --config prov/node.yaml",),
    "intake gateway add": (
        "lapor-node intake gateway add sms-1708 --channel sms_1708 --token-file sms.token "
        "--config prov/node.yaml",
    ),
    "intake gateway list": ("lapor-node intake gateway list --config prov/node.yaml --json",),
    "intake submit": (
        "lapor-node intake submit --node 10.0.0.5:7410 --token-file web.token --fingerprint "
        "\"$(cat prov.tls.sha256)\" --channel web --title 'Lampu jalan mati' --description "
        "'Jl. Juanda gelap' --category infrastruktur --region 64.72",
    ),
    "keys": ("lapor-node keys show --config prov/node.yaml",),
    "keys rotate": ("lapor-node keys rotate --grace 7d --config prov/node.yaml",),
    "keys show": ("lapor-node keys show --config prov/node.yaml --json",),
    "witness": ("lapor-node witness key --config prov/node.yaml",),
    "witness checkpoint": ("lapor-node witness checkpoint --config prov/node.yaml",),
    "witness key": ("lapor-node witness key --config prov/node.yaml --json",),
    "link": ("lapor-node link list --config prov/node.yaml",),
    "link add": (
        "lapor-node link add prov-card.json --as parent --address 10.0.0.5:7400 "
        "--config kukar/node.yaml --json",
    ),
    "link approve": ("lapor-node link approve id-64-02 --config prov/node.yaml",),
    "link invite": (
        "lapor-node link invite --child id-64-02 --name 'Kabupaten Kutai Kartanegara' "
        "--ttl 48h --config prov/node.yaml > kukar.token",
    ),
    "link join": ("lapor-node link join - --wait 10m --config kukar/node.yaml < kukar.token",),
    "link list": ("lapor-node link list --config prov/node.yaml --json",),
    "link reject": (
        "lapor-node link reject id-64-02 --reason 'unknown requester' --config prov/node.yaml",
    ),
    "link resume": (
        "lapor-node link resume id-64-02 --reason 'fork explained in BA 2026/4' "
        "--config prov/node.yaml",
    ),
    "link revoke": (
        "lapor-node link revoke id-64-02 --reason 'unit dissolved' --config prov/node.yaml",
    ),
    "report": (
        "lapor-node report --year 2026 --by child --config prov/node.yaml",
        "lapor-node report --year 2026 --format csv --config prov/node.yaml > 2026.csv",
    ),
    "report backlog": (
        "lapor-node report backlog --year 2026 --deadline 2027-03-31 --config prov/node.yaml",
    ),
    "report dashboard-token": ("lapor-node report dashboard-token --json",),
    "serve": ("lapor-node serve --config /var/lib/lapor-node/node.yaml",),
}


def epilog(path: str) -> str | None:
    """The Example section for the command at `path` ("" is lapor-node itself)."""
    lines = EXAMPLES.get(path)
    if not lines:
        return None
    # \b keeps click from re-wrapping the lines (a shell command must stay as written).
    return "\b\nExample:\n" + "\n".join(f"  {line}" for line in lines)


def attach(command: click.Command, path: str) -> None:
    """Give `command` (at `path`) and, for a group, each of its subcommands its example."""
    text = epilog(path)
    if text is not None and not command.epilog:
        command.epilog = text
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            attach(sub, f"{path} {name}".strip())
