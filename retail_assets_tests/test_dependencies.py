"""The install is the tested one: setup.py's ranges admit the lock, the lock is what is
installed, and every dagster-* package belongs to the installed dagster core.

Dagster releases its integrations in lockstep with the core: `dagster 1.13.N` goes with
`dagster-webserver 1.13.N` and `dagster-pyspark 0.29.N` (minor + 16). A loose range once let pip
pair dagster 1.13.29 with dagster-pyspark 0.11.14 from 2021, which does not import.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
REFRESH = (
    "Refresh the lock and run the suite: .venv/bin/uv pip compile setup.py --extra dev "
    "--universal --python-version 3.11 -o requirements.lock && "
    '.venv/bin/pip install -r requirements.lock -e ".[dev]" && .venv/bin/python -m pytest'
)


def declared_requirements(setup_py: str) -> list[Requirement]:
    """install_requires and every extra of a setup.py, read without running it."""
    call = next(
        node
        for node in ast.walk(ast.parse(setup_py))
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "setup"
    )
    found = []
    for keyword in call.keywords:
        if keyword.arg == "install_requires":
            found += ast.literal_eval(keyword.value)
        elif keyword.arg == "extras_require":
            found += [line for lines in ast.literal_eval(keyword.value).values() for line in lines]
    return [Requirement(line) for line in found]


def locked_versions(lock: str, environment: dict | None = None) -> dict[str, Version]:
    """name → pinned version of each lock line whose marker applies to `environment`."""
    environment = environment or default_environment()
    pins = {}
    for line in lock.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        requirement = Requirement(line)
        if requirement.marker and not requirement.marker.evaluate(environment):
            continue
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", f"lock line not pinned: {line}"
        pins[canonicalize_name(requirement.name)] = Version(specifier.version)
    return pins


def disagreements(declared: list[Requirement], pins: dict[str, Version]) -> list[str]:
    """Each declared requirement the lock lacks or pins outside its range."""
    problems = []
    for requirement in declared:
        name = canonicalize_name(requirement.name)
        if name not in pins:
            problems.append(f"{requirement} is not in requirements.lock")
        elif pins[name] not in requirement.specifier:
            problems.append(f"requirements.lock pins {name}=={pins[name]}, outside {requirement}")
    return problems


def lockstep_mismatches(versions: dict[str, Version]) -> list[str]:
    """dagster-* packages whose release does not belong to the dagster core's."""
    core = versions["dagster"]
    problems = []
    for name, version in sorted(versions.items()):
        if not name.startswith("dagster-"):
            continue
        if version.major == 1:
            expected = (core.major, core.minor, core.micro)
        else:
            expected = (0, core.minor + 16, core.micro)
        if version.release[:3] != expected:
            problems.append(
                f"{name} {version} does not belong to dagster {core} "
                f"(expected {'.'.join(map(str, expected))})"
            )
    return problems


def installed_versions() -> dict[str, Version]:
    return {
        canonicalize_name(dist.metadata["Name"]): Version(dist.version)
        for dist in md.distributions()
        if dist.metadata["Name"]
    }


LOCK = locked_versions((ROOT / "requirements.lock").read_text())


def test_setup_ranges_admit_the_lock():
    problems = disagreements(declared_requirements((ROOT / "setup.py").read_text()), LOCK)
    assert not problems, "\n".join(problems + [REFRESH])


def test_the_lock_is_what_is_installed():
    installed = installed_versions()
    problems = [
        f"{name}: locked {version}, installed {installed.get(name, 'nothing')}"
        for name, version in sorted(LOCK.items())
        if installed.get(name) != version
    ]
    assert not problems, "\n".join(
        problems + ['Install from the lock: .venv/bin/pip install -r requirements.lock -e ".[dev]"']
    )


def test_installed_dagster_packages_belong_to_the_installed_core():
    problems = lockstep_mismatches(installed_versions()) + lockstep_mismatches(LOCK)
    assert not problems, "\n".join(problems + [REFRESH])


# The guards' own logic, on the cases they exist for.


def test_lockstep_flags_the_backtracked_integration():
    mixed = {"dagster": Version("1.13.29"), "dagster-pyspark": Version("0.11.14")}
    assert lockstep_mismatches(mixed) == [
        "dagster-pyspark 0.11.14 does not belong to dagster 1.13.29 (expected 0.29.29)"
    ]
    assert not lockstep_mismatches(
        {"dagster": Version("1.13.27"), "dagster-pyspark": Version("0.29.27")}
    )


def test_disagreements_flag_a_missing_or_out_of_range_pin():
    declared = declared_requirements(
        'setup(install_requires=["dagster>=1.13.27,<1.14"], extras_require={"dev": ["ruff"]})'
    )
    assert disagreements(declared, {"dagster": Version("1.14.0")}) == [
        "requirements.lock pins dagster==1.14.0, outside dagster<1.14,>=1.13.27",
        "ruff is not in requirements.lock",
    ]


def test_lock_markers_are_evaluated_for_this_interpreter():
    lock = "\n".join(
        [
            "numpy==2.4.6 ; python_full_version < '3.12'",
            "numpy==2.5.5 ; python_full_version >= '3.12'",
        ]
    )
    env = dict(default_environment(), python_full_version="3.11.7")
    assert locked_versions(lock, env) == {"numpy": Version("2.4.6")}


def test_readme_commands_install_from_the_lock_and_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("```bash", 1)[1].split("```", 1)[0]
    commands = [line for line in block.splitlines() if line.startswith("python3 -m venv")]
    assert len(commands) == 2, block
    assert all("pip install -q -r requirements.lock " in command for command in commands)
    assert commands[1] in (ROOT / ".ci" / "run").read_text().splitlines()
