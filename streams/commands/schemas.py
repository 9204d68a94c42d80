"""opengym schemas register | check | compat: the compatibility gate between contract versions.

``register`` puts every contract under its TopicRecordNameStrategy subject with the configured level,
``check`` compares the working tree with the live registry or with a git ref's history, ``compat``
compares two files. Verdicts come from :mod:`streams.compat`; levels from ``schemas/compatibility.json``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from opengym_streams import compat
from opengym_streams.codec import registry_client, subject_name
from opengym_streams.compat import Level, LevelConfig, Verdict, Version
from opengym_streams.contracts import LIBRARY_NAMESPACE, LIBRARY_SCHEMAS, Contract, ContractError, Contracts
from opengym_streams.settings import get_settings
from opengym_streams.system import load
from opengym_streams.topic import topic_name

CONFIG_NAME = "compatibility.json"
SUBJECT_NOT_FOUND = 40401


@dataclass(frozen=True)
class Subject:
    name: str
    """Runtime subject: ``<topic runtime name>-<record full name>``."""
    catalog_name: str
    """The same without the topic prefix: the key for per-subject overrides."""
    contract: Contract


def register(subparsers) -> None:
    parser = subparsers.add_parser("schemas", help="register contracts and gate their evolution (compatibility)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    reg = actions.add_parser("register", help="register every contract under its subject with its configured level")
    _tree_options(reg)
    reg.set_defaults(handler=_register)

    chk = actions.add_parser("check", help="check the working tree's contracts against the registry or a git ref")
    _tree_options(chk)
    chk.add_argument("--against", metavar="GIT_REF",
                     help="offline: every version of each contract in this ref's history counts as registered")
    chk.set_defaults(handler=_check)

    pair = actions.add_parser("compat", help="check one schema change: OLD.avsc NEW.avsc (more registered versions may precede NEW, oldest first)")
    pair.add_argument("schemas", nargs="+", metavar="AVSC",
                      help="registered version(s), oldest first, then the new schema last")
    pair.add_argument("--level", type=Level.parse, default=None,
                      help=f"one of {', '.join(l.value for l in Level)} (default: the project default)")
    pair.add_argument("--config", type=Path, default=None, help=_config_help())
    pair.set_defaults(handler=_compat)


def _config_help() -> str:
    return f"levels file (default: <schemas dir>/{CONFIG_NAME})"


def _tree_options(parser) -> None:
    parser.add_argument("--schemas", type=Path, default=None, help="contracts directory (default: schemas/)")
    parser.add_argument("--config", type=Path, default=None, help=_config_help())


def _fail(command: str, message: str) -> int:
    print(f"opengym schemas {command}: {message}", file=sys.stderr)
    return 1


def _load_tree(args) -> tuple[Path, Contracts, LevelConfig]:
    """The library's contracts plus the system's (or those under ``--schemas``), validated, and the levels."""
    system = load()
    if args.schemas is None and system.schemas is None:
        raise ContractError(f"the {system.name} system declares no schemas directory: give one with --schemas")
    root = (args.schemas or system.schemas).resolve()
    if not any(root.glob("*/*.avsc")):
        raise ContractError(f"no contracts under {root} (expected <owner>/<Event>.avsc files); is this the system's "
                            "schemas directory?")
    if not any(LIBRARY_SCHEMAS.glob("*/*.avsc")):  # package data lost by a broken build
        raise ContractError(f"the library's own contracts are missing from {LIBRARY_SCHEMAS}: reinstall "
                            "opengym-streams")
    # read afresh (not the cached set the codec uses): the files may have changed since
    contracts = Contracts(LIBRARY_SCHEMAS, LIBRARY_NAMESPACE, (root, system.namespace))
    for contract in contracts:  # as strictly as the registry's Java parser will
        compat.parse(contract.schema, str(contract.path))
    config = compat.load_config(args.config or root / CONFIG_NAME)
    return root, contracts, config


def subjects_of(contracts: Contracts) -> tuple[list[Subject], list[Contract]]:
    """Every (catalog topic, contract) pair as a subject, and the contracts no topic carries."""
    subjects, orphans = [], []
    for contract in contracts:
        carriers = [t for t in load().topics.all if contract.full_name in t.events]
        if not carriers:
            orphans.append(contract)
        for topic in carriers:
            subjects.append(Subject(subject_name(topic_name(topic), contract.full_name),
                                    subject_name(topic.name, contract.full_name), contract))
    return subjects, orphans


def _level_of(config: LevelConfig, subject: Subject) -> Level:
    return config.level_for(subject.catalog_name, subject.contract.full_name)


def _line(status: str, subject: str, detail: str) -> str:
    return f"{status:<12} {subject}  {detail}"


def _parse_version(text: str, label: str, source: str) -> Version:
    return Version(label, compat.parse(text, source))


# ---------------------------------------------------------------------------------------------- register

def _register(args) -> int:
    try:
        _, contracts, config = _load_tree(args)
    except ContractError as exc:
        return _fail("register", f"{exc}; nothing was registered")
    subjects, orphans = subjects_of(contracts)
    for contract in orphans:
        print(_line("SKIPPED", contract.full_name, "no catalog topic carries it, so it has no subject"))
    client = registry_client()
    try:
        # First every verdict, then every write: an incompatible change registers nothing.
        refused = []
        for subject in subjects:
            level = _level_of(config, subject)
            registered = _registered_versions(client, subject.name)
            if not registered:
                continue
            new = _parse_version(subject.contract.schema_str, "the new schema", str(subject.contract.path))
            verdict = compat.check(new, registered, level)
            if not verdict.compatible:
                refused.append(subject.name)
                print(_line("INCOMPATIBLE", subject.name, f"({level.value}): {verdict.reason}"))
        if refused:
            return _fail("register", f"{len(refused)} subject(s) incompatible with what is registered; "
                                     "nothing was registered")
        for subject in subjects:
            level = _level_of(config, subject)
            schema = Schema(subject.contract.schema_str, "AVRO")
            if level is not Level.NONE:
                client.set_compatibility(subject.name, level.value)
            schema_id = client.register_schema(subject.name, schema)
            if level is Level.NONE:  # Apicurio 3.0.9 answers 404 to NONE for a subject not created yet
                client.set_compatibility(subject.name, level.value)
            version = client.lookup_schema(subject.name, schema).version
            print(_line("REGISTERED", subject.name, f"id {schema_id}, version {version}, level {level.value}"))
    except ContractError as exc:  # a registered version the registry returned that does not parse
        return _fail("register", f"{exc}; nothing more was registered")
    except SchemaRegistryError as exc:
        return _fail("register", f"the registry at {get_settings().registry_url} refused: {exc}")
    except Exception as exc:  # connection errors come from requests/httpx as several types
        return _fail("register", f"the registry at {get_settings().registry_url} is unreachable: {exc}")
    print(f"{len(subjects)} subjects registered from {len(contracts)} contracts; levels from {config.source}")
    return 0


def _registered_versions(client: SchemaRegistryClient, subject: str) -> list[Version]:
    """The subject's versions in the registry, oldest first ([] for a subject not registered yet)."""
    try:
        numbers = client.get_versions(subject)
    except SchemaRegistryError as exc:
        if exc.http_status_code == 404:
            return []
        raise
    versions = []
    for number in sorted(numbers):
        registered = client.get_version(subject, number)
        versions.append(_parse_version(registered.schema.schema_str, f"registry version {number}",
                                       f"{subject} version {number}"))
    return versions


# ------------------------------------------------------------------------------------------------- check

def _check(args) -> int:
    try:
        root, contracts, config = _load_tree(args)
    except ContractError as exc:
        return _fail("check", str(exc))
    subjects, orphans = subjects_of(contracts)
    for contract in orphans:
        print(_line("SKIPPED", contract.full_name, "no catalog topic carries it, so it has no subject"))
    try:
        if args.against:
            counts = _check_against_git(root, contracts, subjects, config, args.against)
        else:
            counts = _check_against_registry(subjects, config)
    except (ContractError, GitError) as exc:
        return _fail("check", str(exc))
    except SchemaRegistryError as exc:
        return _fail("check", f"the registry at {get_settings().registry_url} refused: {exc}")
    except Exception as exc:  # connection errors come from requests/httpx as several types
        return _fail("check", f"the registry at {get_settings().registry_url} is unreachable: {exc}")
    bad = counts["INCOMPATIBLE"] + counts["DISAGREE"]
    summary = f"{counts['OK'] + counts['NEW']} OK ({counts['NEW']} new), {counts['INCOMPATIBLE']} INCOMPATIBLE"
    if not args.against:
        summary += f", {counts['DISAGREE']} DISAGREE (registry and our rules differ)"
    against = args.against or get_settings().registry_url
    print(f"{sum(counts.values())} subjects against {against}: {summary}")
    return 1 if bad else 0


def _new_counts() -> dict[str, int]:
    return {"OK": 0, "NEW": 0, "INCOMPATIBLE": 0, "DISAGREE": 0}


def _report(counts: dict[str, int], subject: str, verdict: Verdict, against: str) -> None:
    if verdict.compatible:
        counts["OK"] += 1
        print(_line("OK", subject, f"({verdict.level.value}, against {against})"))
    else:
        counts["INCOMPATIBLE"] += 1
        print(_line("INCOMPATIBLE", subject, f"({verdict.level.value}): {verdict.reason}"))


def _check_against_registry(subjects: list[Subject], config: LevelConfig) -> dict[str, int]:
    client = registry_client()
    counts = _new_counts()
    for subject in subjects:
        registered = _registered_versions(client, subject.name)
        if not registered:
            counts["NEW"] += 1
            print(_line("OK", subject.name, "(new: not registered yet)"))
            continue
        level = _registry_level(client, subject.name)
        configured = _level_of(config, subject)
        note = "" if level is configured else (
            f" [the registry enforces {level.value} but {config.source} says {configured.value}:"
            " run `opengym schemas register`]")
        new = _parse_version(subject.contract.schema_str, "the new schema", str(subject.contract.path))
        local = compat.check(new, registered, level)
        remote = _registry_verdict(client, subject.name, subject.contract.schema_str, level)
        if remote != local.compatible:
            counts["DISAGREE"] += 1
            said = "OK" if remote else "INCOMPATIBLE"
            ours = "OK" if local.compatible else f"INCOMPATIBLE: {local.reason}"
            print(_line("DISAGREE", subject.name,
                        f"({level.value}): the registry says {said}, our rules say {ours}{note}"))
            continue
        _report(counts, subject.name, local, f"{len(local.compared)} registered version(s){note}")
    return counts


def _registry_level(client: SchemaRegistryClient, subject: str) -> Level:
    try:
        return Level.parse(client.get_compatibility(subject))
    except SchemaRegistryError as exc:
        if exc.http_status_code != 404:
            raise
        return Level.parse(client.get_compatibility())


def _registry_verdict(client: SchemaRegistryClient, subject: str, schema_str: str, level: Level) -> bool:
    # Apicurio's POST /compatibility/subjects/{s}/versions checks every version even at a plain level
    # (Confluent checks the latest only), so plain levels ask about versions/latest.
    schema = Schema(schema_str, "AVRO")
    if level.transitive:
        return bool(client.test_compatibility_all_versions(subject, schema))
    return bool(client.test_compatibility(subject, schema, "latest"))


class GitError(RuntimeError):
    pass


def _git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise GitError(f"git {' '.join(args)}: {done.stderr.strip() or 'failed'}")
    return done


def git_history(repo: Path, ref: str, path: str) -> list[tuple[str, str]]:
    """(short commit, file text) for each distinct version of ``path`` in ``ref``'s history, oldest first."""
    # A contract moved to another tree (the library's records moved out of the system's schemas) keeps its
    # history: any earlier file with the same <owner>/<Event>.avsc is the same record.
    suffix = "/".join(path.split("/")[-2:])
    ever = _git(repo, "log", "--format=", "--name-only", ref, "--", "*.avsc").stdout.split()
    paths = sorted({p for p in ever if p == path or p.endswith("/" + suffix) or p == suffix})
    commits = _git(repo, "log", "--reverse", "--format=%H", ref, "--", *(paths or [path])).stdout.split()
    versions: list[tuple[str, str]] = []
    for commit in commits:
        shown = next((r for r in (_git(repo, "show", f"{commit}:{p}", check=False) for p in [path, *paths])
                      if r.returncode == 0), None)
        if shown is None:  # the commit deleted the file
            continue
        if versions and _same_json(versions[-1][1], shown.stdout):
            continue
        versions.append((commit[:10], shown.stdout))
    return versions


def _same_json(a: str, b: str) -> bool:
    try:
        return json.loads(a) == json.loads(b)
    except json.JSONDecodeError:
        return a == b


def _check_against_git(root: Path, contracts: Contracts, subjects: list[Subject], config: LevelConfig,
                       ref: str) -> dict[str, int]:
    repo = Path(_git(root, "rev-parse", "--show-toplevel").stdout.strip())
    _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    counts = _new_counts()
    histories: dict[Path, list[Version]] = {}
    outside = [c for c in contracts if not c.path.resolve().is_relative_to(repo.resolve())]
    for contract in outside:  # the installed library's own contracts, when the system lives in another repo
        histories[contract.path] = []
    for contract in contracts:
        if contract in outside:
            continue
        relative = contract.path.resolve().relative_to(repo.resolve()).as_posix()
        history = git_history(repo, ref, relative)
        histories[contract.path] = [
            _parse_version(text, f"version {i} ({commit})", f"{relative} at {commit}")
            for i, (commit, text) in enumerate(history, 1)
        ]
    for subject in subjects:
        if subject.contract in outside:
            continue  # not this repository's to check
        registered = histories[subject.contract.path]
        if not registered:
            counts["NEW"] += 1
            print(_line("OK", subject.name, f"(new: no history in {ref})"))
            continue
        new = _parse_version(subject.contract.schema_str, "the working tree", str(subject.contract.path))
        verdict = compat.check(new, registered, _level_of(config, subject))
        _report(counts, subject.name, verdict, f"{len(verdict.compared)} version(s) in {ref}")
    present = {c.path.resolve().relative_to(repo.resolve()).as_posix() for c in contracts if c not in outside}
    in_ref = []
    for tree, _ in contracts.roots:
        if not tree.resolve().is_relative_to(repo.resolve()):
            continue
        tree_root = tree.resolve().relative_to(repo.resolve()).as_posix()
        in_ref += _git(repo, "ls-tree", "-r", "--name-only", ref, "--", tree_root).stdout.split()
    moved_to = {"/".join(p.split("/")[-2:]) for p in present}
    for path in sorted(p for p in in_ref if p.endswith(".avsc") and p not in present
                       and "/".join(p.split("/")[-2:]) not in moved_to):
        print(_line("NOTE", path, f"is in {ref} but not in the working tree (its subjects keep their versions)"))
    return counts


# ------------------------------------------------------------------------------------------------ compat

def _compat(args) -> int:
    if len(args.schemas) < 2:
        return _fail("compat", "give the registered schema(s) and then the new one: OLD.avsc NEW.avsc")
    try:
        *old_paths, new_path = args.schemas
        config = compat.load_config(args.config or load().schemas / CONFIG_NAME)
        level = args.level or config.default
        registered = [Version(_old_label(i, len(old_paths)), compat.load(path)) for i, path in enumerate(old_paths, 1)]
        verdict = compat.check(Version("the new schema", compat.load(new_path)), registered, level)
    except ContractError as exc:
        return _fail("compat", str(exc))
    if verdict.compatible:
        print(_line("OK", new_path, f"({level.value}, against {', '.join(old_paths)})"))
        return 0
    print(_line("INCOMPATIBLE", new_path, f"({level.value}): {verdict.reason}"))
    return 1


def _old_label(index: int, count: int) -> str:
    return "the old schema" if count == 1 else f"old schema {index} of {count}"
