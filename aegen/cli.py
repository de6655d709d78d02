"""The ``aegen`` command: fit/validate/test through LightningCLI (``aegen.lightning_cli``), plus the tool
commands (list, evaluate, sample, interpolate, ...).

Each tool command is a typed function (``aegen.commands``; ``evaluate`` is ``aegen.evaluate.evaluate``);
jsonargparse builds its options, defaults and help from the signature and docstring, and validates
every value with the types of ``aegen.argtypes``. Flags are spelt as in LightningCLI (``--num_samples``); the
dashed spelling (``--num-samples``) is accepted too. Errors are one line: user errors exit 2, aegen's
own faults 1. The CLI only parses, looks names up in the registry and calls the library; this
module imports neither torch nor Lightning at the top, so ``aegen --help`` and ``aegen list``
answer at once.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import re
import sys
from collections.abc import Callable
from typing import Any

from jsonargparse import ArgumentParser

from aegen import registry
from aegen.argtypes import MAX_SHEET
from aegen.commands import attribute, edit, explore, export, interpolate, list_names, predict, prior, sample
from aegen.commands import traverse
from aegen.errors import AegenError
from aegen.evaluate import evaluate

LIGHTNING_COMMANDS = ("fit", "validate", "test")
DEFAULT_DATA = "digits"
DEFAULT_EPOCHS = 10  # `aegen fit` without --trainer.max_epochs (nor a config setting it)
__all__ = ["COMMANDS", "DEFAULT_DATA", "DEFAULT_EPOCHS", "LIGHTNING_COMMANDS", "MAX_SHEET", "main", "parse", "parser"]


class UsageError(AegenError):
    """A bad command line, as one line."""


COMMANDS: dict[str, Callable[..., Any]] = {
    "list": list_names, "evaluate": evaluate, "sample": sample, "interpolate": interpolate, "traverse": traverse,
    "attribute": attribute, "explore": explore, "edit": edit, "prior": prior, "export": export,
    "predict": predict,
}
SKIP = {"evaluate": {"data_options"}}  # evaluate's --data.x VALUE flags: see _data_options


# ---------------------------------------------------------------------- parsing
def _summary(function: Callable) -> str:
    """The first paragraph of a docstring, on one line."""
    return " ".join(inspect.getdoc(function).split("\n\n")[0].split())


def parser(command: str | None = None):
    """``aegen``'s parser: one subcommand per command, with the options of ``command`` only (the
    others' options are built when they are asked for, so that ``aegen --help`` stays fast)."""
    top = ArgumentParser(prog="aegen", exit_on_error=False, description="aegen: generative autoencoders. "
                         "`aegen fit --model NAME [--data NAME]` trains (see `aegen fit --help`); `aegen list` "
                         "shows the models and datasets.")
    top.add_argument("--debug", action="store_true", help="show full tracebacks (or set AEGEN_DEBUG=1)")
    subcommands = top.add_subcommands(dest="command")
    for name in LIGHTNING_COMMANDS:
        subcommands.add_subcommand(name, ArgumentParser(), help=f"{name} a model (LightningCLI; `aegen {name} --help`)")
    for name, function in COMMANDS.items():
        sub = ArgumentParser(exit_on_error=False, description=_summary(function))
        if name == command:
            sub.add_function_arguments(function, as_positional=True, skip=SKIP.get(name), as_group=False)
        subcommands.add_subcommand(name, sub, help=_summary(function))
    return top


def _spelling(argv: list[str]) -> list[str]:
    """Long option names with underscores (``--num-samples`` -> ``--num_samples``), values untouched."""
    out: list[str] = []
    for arg in argv:
        name, eq, value = arg.partition("=")
        out.append("--" + name[2:].replace("-", "_") + eq + value if arg.startswith("--") and "--" not in out else arg)
    return out


def _glued(argv: list[str], function: Callable | None) -> list[str]:
    """``--flag -3,3`` -> ``--flag=-3,3`` (argparse would read the value as an option) and a bare
    boolean flag (``aegen list --presets``) -> ``--presets=true``."""
    flags = {f"--{p.name}" for p in inspect.signature(function).parameters.values()
             if p.annotation in (bool, "bool")} if function else set()
    out: list[str] = []
    for arg in argv:
        if out and out[-1].startswith("--") and "=" not in out[-1] and re.match(r"-\.?\d", arg):
            out[-1] += f"={arg}"
        elif out and out[-1] in flags and arg.lower() not in ("true", "false"):
            out[-1] += "=true"
            out.append(arg)
        else:
            out.append(arg)
    if out and out[-1] in flags:
        out[-1] += "=true"
    return out


_NOISE = ("Does not validate", "Subtypes:", "Errors:", "Given value", "Problem with given class_path",
          "Expected a <class 'NoneType'>", "- Expected a <class 'NoneType'>")


def _usage_message(message: str, command: str | None) -> str:
    """jsonargparse's error as one line naming the flag, what it must be and what was given."""
    hint = f"(`aegen {command} --help` lists the options)" if command in COMMANDS else "(`aegen --help` lists them)"
    lines = [ln.strip().lstrip("- ") for ln in message.strip().splitlines() if ln.strip()]
    key = re.match(r'Parser key "([^"]+)"', lines[0])
    if key:
        details = [ln for ln in lines[1:] if not ln.startswith(_NOISE)] or lines[1:] or ["invalid value"]
        detail = re.sub(r"^Not of type \w+: ", "", details[0])
        literal = re.match(r"Expected a typing\.Literal\[(.*)\]\. Got value: (.*)", detail)
        if literal:
            detail = f"must be one of {literal[1].replace(chr(39), '')}, got {literal[2]!r}"
        return f"invalid --{key[1].removeprefix(f'{command}.')}: {detail} {hint}"
    line = re.sub(r"^argument (sub)?command: invalid choice", "unknown command", lines[0])
    if "arguments are required" in line and command in COMMANDS:
        keyword = {n for n, p in inspect.signature(COMMANDS[command]).parameters.items() if p.kind == p.KEYWORD_ONLY}
        names = line.partition(": ")[2].split(", ")
        names = [f"--{n}" if n in keyword else n.upper() for n in (n.removeprefix(f"{command}.") for n in names)]
        line = f"{line.partition(': ')[0]}: {', '.join(names)}"
    return f"{line} {hint}"


def parse(argv: list[str]) -> tuple[str, dict[str, Any]]:
    """The command and its keyword arguments from a command line (the command first); bad ones are a
    UsageError."""
    command = argv[0] if argv else None
    argv = _glued(_spelling(argv), COMMANDS.get(command))
    try:
        config = parser(command).parse_args(argv)
    except argparse.ArgumentError as err:
        raise UsageError(_usage_message(str(err), command)) from None
    return config.command, config[config.command].as_dict()


def _pop_data_options(argv: list[str]) -> tuple[list[str], list[str]]:
    """Split ``--data.x VALUE`` / ``--data.x=VALUE`` flags from the other arguments."""
    rest, data = [], []
    i = 0
    while i < len(argv):
        if argv[i].startswith("--data.") and "=" not in argv[i] and i + 1 < len(argv):
            data += argv[i : i + 2]
            i += 1
        elif argv[i].startswith("--data."):
            data.append(argv[i])
        else:
            rest.append(argv[i])
        i += 1
    return rest, data


def _data_options(name: str | None, checkpoint: str, argv: list[str]) -> dict[str, Any]:
    """``--data.x VALUE`` flags typed by the datamodule's signature (only the flags given)."""
    if not argv:
        return {}
    from aegen.checkpoint import read_checkpoint

    if name is None:
        record = read_checkpoint(checkpoint)["aegen"].get("data") or {}
        name = record.get("name") or DEFAULT_DATA
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(registry.get_data(name), "data")
    given = {a.split("=", 1)[0].removeprefix("--data.") for a in argv if a.startswith("--data.")}
    parsed = parser.parse_args(argv).data
    return {k: getattr(parsed, k) for k in given}


def run_tool(argv: list[str]) -> None:
    """Parse a tool command's line, call its function and print what it returns (JSON for a dict;
    for evaluate, its headline numbers and where it wrote, unless --json)."""
    data_argv: list[str] = []
    as_json = argv[0] != "evaluate" or "--json" in argv  # evaluate: a summary unless --json
    if argv[0] == "evaluate":  # --data.x VALUE: the datamodule's options, typed by its signature
        argv, data_argv = _pop_data_options(_spelling([a for a in argv if a != "--json"]))
    command, kwargs = parse(argv)
    if data_argv:
        kwargs["data_options"] = _data_options(kwargs.get("data"), kwargs["checkpoint"], data_argv)
    result = COMMANDS[command](**kwargs)
    if not as_json:
        from aegen.evaluate import out_folder
        from aegen.report import summary

        print(summary(result, out_folder(kwargs["checkpoint"], kwargs.get("out"))))
    elif result is not None:
        print(json.dumps(result, indent=2) if isinstance(result, dict) else result)


def _one_line(err: BaseException) -> str:
    """The message of an exception on one line; jsonargparse's nested Union reports are reduced to their cause."""
    lines = [ln.strip() for ln in str(err).strip().splitlines() if ln.strip()]
    if isinstance(err, AegenError):
        return " ".join(lines)
    keys = re.findall(r'Parser key "([^"]+)"', str(err))
    detail = [ln.lstrip("- ") for ln in lines if not ln.lstrip("- ").startswith(_NOISE) and "Parser key" not in ln]
    message = detail[0] if detail else (lines[0] if lines else type(err).__name__)
    if keys:
        return f"invalid --{'.'.join(keys)}: {message} (`aegen fit --model.help NAME` lists a model's options)"
    return message if isinstance(err, (ValueError, argparse.ArgumentError)) else f"{type(err).__name__}: {message}"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or bool(os.environ.get("AEGEN_DEBUG"))
    argv = [a for a in argv if a != "--debug"]
    try:
        if argv and argv[0] in LIGHTNING_COMMANDS:
            from aegen.lightning_cli import run_lightning

            run_lightning(_spelling(argv))
        elif not argv:
            parser().print_help()
            return 2
        else:
            run_tool(argv)
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # noqa: BLE001 - the CLI's contract: one line, non-zero exit
        if debug:
            raise
        # user errors (bad flags, files, checkpoints) exit 2; anything else is aegen's own fault: 1
        expected = (AegenError, ValueError, argparse.ArgumentError, FileNotFoundError, NotADirectoryError,
                    IsADirectoryError, PermissionError)
        hint = "" if isinstance(err, expected) else " (--debug or AEGEN_DEBUG=1 shows the traceback)"
        print(f"aegen: error: {_one_line(err)}{hint}", file=sys.stderr)
        return 2 if isinstance(err, expected) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
