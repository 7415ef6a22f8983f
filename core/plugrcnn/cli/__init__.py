"""The `plugrcnn` command. Bad input ends in one line on stderr and exit status 2."""
from __future__ import annotations

import argparse
import importlib
import re
import sys
import warnings
from collections.abc import Callable

from plugrcnn.errors import PlugrcnnError, one_line

# sub-command -> module with `add_arguments(parser)` and `run(args) -> int`
COMMANDS = {
    "heads": "plugrcnn.cli.heads",
    "backbones": "plugrcnn.cli.backbones",
    "zoo": "plugrcnn.cli.zoo",
    "predict": "plugrcnn.cli.predict",
    "convert": "plugrcnn.cli.convert",
    "train": "plugrcnn.cli.train",
    "eval": "plugrcnn.cli.evaluate",
    "demo": "plugrcnn.cli.demo",
    "analyze": "plugrcnn.cli.analyze",
    "show-data": "plugrcnn.cli.show_data",
    "export": "plugrcnn_deploy.cli.export",
    "video": "plugrcnn_deploy.cli.video",
    "bench": "plugrcnn_deploy.cli.bench",
}


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line on stderr (exit 2) like every other bad input;
    the usage is one `--help` away."""

    def error(self, message: str) -> None:  # type: ignore[override]
        # "argument --height: must be in 1..8192" -> "--height must be in 1..8192", as run() says it
        message = re.sub(r"^argument (\S+): must be", r"\1 must be", message)
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="plugrcnn", description=__doc__)
    subs = parser.add_subparsers(dest="command", required=True)
    for name, module_name in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:  # e.g. deploy extras missing: the other commands still work
            sub = subs.add_parser(name, help=f"(unavailable: {exc})")
            sub.set_defaults(_module=None, _import_error=exc)
            continue
        sub = subs.add_parser(name, help=module.__doc__.splitlines()[0] if module.__doc__ else None,
                              description=module.__doc__)
        module.add_arguments(sub)
        sub.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    import plugrcnn.cpu_flags  # noqa: F401  (before any torch op starts the CPU thread pool)

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a bad argument (already reported in one line)
        return exc.code if isinstance(exc.code, int) else 2
    if args._module is None:
        print(f"plugrcnn {args.command}: error: cannot load this command ({args._import_error}); "
              f"reinstall with `make install`", file=sys.stderr)
        return 2
    original_format = warnings.formatwarning
    warnings.formatwarning = _warning_formatter(args.command, original_format)
    try:
        return int(args._module.run(args) or 0)
    except PlugrcnnError as exc:
        print(f"plugrcnn {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # a full disk or a vanished folder outside the paths we check up front
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"plugrcnn {args.command}: error: {where}{exc.strerror or one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"plugrcnn {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = original_format


def _warning_formatter(command: str, fallback: Callable[..., str]) -> Callable[..., str]:
    """Data set warnings (a skipped annotation or image) as one line each, like errors."""
    from plugrcnn.data.coco_json import DatasetWarning

    def format_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                       line: str | None = None) -> str:
        if issubclass(category, DatasetWarning):
            return f"plugrcnn {command}: warning: {message}\n"
        return fallback(message, category, filename, lineno, line)
    return format_warning


if __name__ == "__main__":
    sys.exit(main())
