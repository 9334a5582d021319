"""Entry point of the ``hodei`` command: argument parsing and dispatch.

Command modules are imported only when their command runs, so ``hodei worker`` (the
agent, started once per job) does not pay for the server, the client or Kubernetes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import typing
from collections.abc import Callable, Sequence
from pathlib import Path

from hodei import __version__
from hodei.domain import exitcodes

Handler = Callable[[argparse.Namespace], int]
_STATES = ("QUEUED", "STARTING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT")


def _run(args: argparse.Namespace) -> int:
    # gRPC's C core logs connection chatter to stderr, which belongs to the job's output.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    from hodei.cli.run import run_command

    return asyncio.run(run_command(args, os.environ))


def _server(args: argparse.Namespace) -> int:
    from hodei.cli.server import serve

    return asyncio.run(serve(os.environ, ports_file=args.ports_file))


def _worker(args: argparse.Namespace) -> int:
    from hodei.config import SettingsError, load_worker_settings

    try:
        settings = load_worker_settings(os.environ)
    except SettingsError as exc:
        print(f"hodei worker: {exc}", file=sys.stderr)
        return 2
    from hodei.worker.entry import exit_now, run_worker

    exit_now(run_worker(settings))


def _client_command(name: str) -> Handler:
    def handler(args: argparse.Namespace) -> int:
        from hodei.cli import commands

        return asyncio.run(commands.with_client(getattr(commands, name), args, os.environ))

    return handler


def _count(text: str) -> int:
    """A whole number >= 0, for ``--limit``."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 0")
    return int(text)


def _add_output(parser: argparse.ArgumentParser, *, wide: bool = False) -> None:
    formats = ("table", "wide", "json") if wide else ("table", "json")
    parser.add_argument(
        "-o",
        "--output",
        choices=formats,
        default="table",
        help="table (fits the terminal)"
        + (", wide (every column)" if wide else "")
        + " or json (RFC 3339 times)",
    )


def _add_run(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = subparsers.add_parser(
        "run",
        help="run a command as a job and stream its output",
        description=(
            "Submit CMD as a job, stream its stdout/stderr, exit with its exit code "
            "(124 timed out, 125 Hodei could not run it, 128+N stopped by signal N). "
            "CMD is an argv, not a shell line: for pipes or scripts use "
            "`hodei run -- sh -c 'a | b'`. With HODEI_SERVER unset, an embedded control "
            "plane with the local provider runs the job."
        ),
    )
    run.add_argument("--provider", help="local or kubernetes (default: the server's)")
    run.add_argument("--image", help="container image (Kubernetes)")
    run.add_argument("--cpu", help="CPU request and limit, a Kubernetes quantity (e.g. 500m)")
    run.add_argument("--memory", help="memory request and limit, a quantity (e.g. 256Mi)")
    run.add_argument("--timeout", type=float, help="seconds before the job is killed")
    run.add_argument(
        "--env",
        action="append",
        metavar="K=V|NAME",
        help="environment variable; a bare NAME passes this shell's value",
    )
    run.add_argument("--label", action="append", metavar="K=V", help="label")
    run.add_argument(
        "--profile", metavar="NAME", help="Kubernetes: the operator's pod profile NAME"
    )
    run.add_argument(
        "--secret-env",
        action="append",
        metavar="NAME=SECRET:KEY",
        help="Kubernetes: env NAME from key KEY of Secret SECRET, resolved by the kubelet",
    )
    run.add_argument("--max-attempts", type=int, default=1, help="attempts on platform failures")
    run.add_argument("--detach", action="store_true", help="print the job id and return")
    run.add_argument(
        "-i",
        "--interactive",
        action="store_true",
        help="stream this command's stdin to the job, its end included",
    )
    run.add_argument(
        "-t",
        "--tty",
        action="store_true",
        help="run the job on a pseudo-terminal (stdout and stderr merged); -it for a shell",
    )
    run.add_argument(
        "--workdir",
        metavar="DIR",
        help="absolute working directory of the job on the worker (default: the worker's)",
    )
    run.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD [ARG...]")
    run.set_defaults(func=_run)


def _add_jobs(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    jobs = subparsers.add_parser("jobs", help="list, show, follow, wait for and cancel jobs")
    actions = jobs.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="list jobs, newest first")
    listing.add_argument(
        "--state",
        action="append",
        type=str.upper,
        choices=_STATES,
        metavar="STATE",
        help=f"only jobs in this state (any case; repeatable): {', '.join(_STATES)}",
    )
    listing.add_argument(
        "-l",
        "--selector",
        action="append",
        metavar="K=V",
        help="only jobs with this label (repeatable: all must match)",
    )
    listing.add_argument(
        "--limit", type=_count, default=100, metavar="N", help="the newest N jobs (0: all)"
    )
    _add_output(listing, wide=True)
    listing.set_defaults(func=_client_command("jobs_list"))
    for name, text in (("show", "one job in detail"), ("cancel", "cancel a job")):
        action = actions.add_parser(name, help=text)
        action.add_argument("id", help="job id")
        _add_output(action)
        action.set_defaults(func=_client_command(f"jobs_{name}"))
    logs = actions.add_parser(
        "logs",
        help="a job's output (stdout and stderr apart)",
        description="A job's output. With -f, follow it until the job ends and exit as "
        "`hodei run` would have for it.",
    )
    logs.add_argument("id", help="job id")
    logs.add_argument("-f", "--follow", action="store_true", help="follow until the job ends")
    logs.set_defaults(func=_client_command("jobs_logs"))
    wait = actions.add_parser(
        "wait",
        help="wait for jobs to end",
        description="Wait until every job has ended; print `ID STATE EXIT` for each and exit "
        "as `hodei run` would have for the last one.",
    )
    wait.add_argument("ids", nargs="+", metavar="ID", help="job id")
    _add_output(wait)
    wait.set_defaults(func=_client_command("jobs_wait"))


def _add_k8s(subparsers: argparse._SubParsersAction[argparse.ArgumentParser], real: bool) -> None:
    """``hodei k8s``: registered by :mod:`hodei.cli.k8s` when that is the command given.

    The module loads the Kubernetes client (half a second); other commands, above all
    ``hodei worker``, must not pay for it, so they see a placeholder entry instead.
    """
    if not real:
        placeholder = subparsers.add_parser("k8s", help="Kubernetes deployment tools (verify)")
        placeholder.add_argument("rest", nargs=argparse.REMAINDER)
        placeholder.set_defaults(func=lambda args: main(["k8s", *args.rest]))
        return
    try:
        from hodei.cli import k8s
    except ImportError as exc:
        missing = subparsers.add_parser("k8s", help="Kubernetes checks (unavailable)")
        reason = str(exc)

        def unavailable(args: argparse.Namespace) -> int:
            print(f"hodei k8s: not available in this installation: {reason}", file=sys.stderr)
            return 1

        missing.set_defaults(func=unavailable)
        return
    k8s.register(subparsers)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error exits 125 like every other failure of Hodei itself, so
    that it cannot be mistaken for a job's own exit code 2."""

    def error(self, message: str) -> typing.NoReturn:
        self.print_usage(sys.stderr)
        self.exit(exitcodes.HODEI_FAILURE, f"{self.prog}: error: {message}\n")


def build_parser(command: str | None = "k8s") -> argparse.ArgumentParser:
    """The whole ``hodei`` command tree (``command``: the one about to run, if known)."""
    parser: argparse.ArgumentParser = _Parser(
        prog="hodei", description="Run commands on ephemeral workers (local processes or pods)."
    )
    parser.add_argument("--version", action="version", version=f"hodei {__version__}")
    subparsers = parser.add_subparsers(dest="command_name", required=True, metavar="COMMAND")
    _add_run(subparsers)
    server = subparsers.add_parser("server", help="run the control plane in the foreground")
    server.add_argument(
        "--ports-file",
        type=Path,
        metavar="PATH",
        help='once serving, write the bound ports as JSON {"grpc": N, "http": M} to PATH '
        "(useful with port 0 in HODEI_GRPC_ADDRESS/HODEI_HTTP_ADDRESS)",
    )
    server.set_defaults(func=_server)
    _add_jobs(subparsers)
    workers = subparsers.add_parser("workers", help="list workers")
    worker_actions = workers.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = worker_actions.add_parser("list", help="workers with provider, state, age")
    _add_output(listing)
    listing.set_defaults(func=_client_command("workers_list"))
    worker = subparsers.add_parser("worker", help="the worker agent (started by providers)")
    worker.set_defaults(func=_worker)
    _add_k8s(subparsers, real=command in ("k8s", "completion"))
    completion = subparsers.add_parser(
        "completion",
        help="print a shell completion script (bash or zsh)",
        description="Print the completion script for SHELL. bash: "
        "`source <(hodei completion bash)` or save it in "
        "~/.local/share/bash-completion/completions/hodei; zsh: save it as _hodei in a "
        "directory of $fpath.",
    )
    completion.add_argument("shell", choices=("bash", "zsh"), metavar="SHELL", help="bash or zsh")
    completion.set_defaults(func=_completion)
    return parser


def _completion(args: argparse.Namespace) -> int:
    """``hodei completion bash|zsh``: shtab writes the script from this very parser, so it
    always offers the commands and flags this version has."""
    import shtab

    print(shtab.complete(build_parser("completion"), shell=args.shell))
    return exitcodes.SUCCESS


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: the process's) and run the command; returns the exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments == ["worker"]:
        # Started once per job: skip building the parser, every millisecond is latency.
        return _worker(argparse.Namespace())
    command = next((a for a in arguments if not a.startswith("-")), None)
    parser = build_parser(command)
    if not arguments:  # `hodei` alone: what it can do, as kubectl and docker answer
        parser.print_help()
        return exitcodes.SUCCESS
    args = parser.parse_args(arguments)
    handler: Handler = args.func
    try:
        return handler(args)
    except KeyboardInterrupt:
        return exitcodes.INTERRUPTED
    except BrokenPipeError:
        # `hodei jobs list | head`: the reader has what it wanted. Point stdout at
        # /dev/null so the interpreter's final flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return exitcodes.BROKEN_PIPE
