"""deploy/Containerfile: installs the wheel, runs as a non-root user, the node's folder a
volume. (No container engine runs in the suite; these read the recipe.)"""

from __future__ import annotations

import re

from tests.deploy._tools import DEPLOY, ROOT

CONTAINERFILE = DEPLOY / "Containerfile"
DATA = "/var/lib/lapor-node"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", CONTAINERFILE.read_text())
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _final_stage() -> list[tuple[str, str]]:
    steps = _instructions()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def test_final_stage_installs_only_the_built_wheel() -> None:
    """The image installs the wheel the first stage built, not the source tree."""
    stage = _final_stage()
    runs = " ".join(arg for word, arg in stage if word == "RUN")
    assert re.search(r"pip install [^&]*\.whl", runs), runs
    copies = [arg for word, arg in stage if word == "COPY"]
    assert copies and all(c.startswith("--from=") for c in copies), copies
    assert any("build --wheel" in arg for word, arg in _instructions() if word == "RUN")


def test_runs_as_a_non_root_user() -> None:
    """The last USER is a named, non-root user, and nothing runs after it as root."""
    stage = _final_stage()
    users = [(i, arg) for i, (word, arg) in enumerate(stage) if word == "USER"]
    assert users, "no USER instruction: the node would run as root"
    index, user = users[-1]
    assert user not in {"root", "0"} and not user.startswith("0:")
    assert all(word != "RUN" for word, _ in stage[index:])


def test_data_directory_is_a_private_volume() -> None:
    """The node's folder is a volume, made 0700 and owned by the node's user."""
    stage = _final_stage()
    volumes = " ".join(arg for word, arg in stage if word == "VOLUME")
    assert DATA in volumes
    runs = " ".join(arg for word, arg in stage if word == "RUN")
    assert f"install -d -m 0700 -o lapor-node -g lapor-node {DATA}" in runs
    env = " ".join(arg for word, arg in stage if word == "ENV")
    assert f"LAPOR_NODE_CONFIG={DATA}/node.yaml" in env


def test_serves_and_stops_on_sigterm() -> None:
    """The default command is `lapor-node serve`, stopped with SIGTERM."""
    stage = dict(_final_stage())
    assert stage["ENTRYPOINT"] == '["lapor-node"]'
    assert stage["CMD"] == '["serve"]'
    assert stage["STOPSIGNAL"] == "SIGTERM"


def test_build_context_holds_what_the_stages_copy() -> None:
    """Everything the first stage copies exists and is let through .containerignore."""
    ignore = (ROOT / ".containerignore").read_text().split()
    for word, arg in _instructions():
        if word == "COPY" and not arg.startswith("--from="):
            for source in arg.split()[:-1]:
                assert (ROOT / source).exists(), source
                assert f"!{source}" in ignore, source
