"""Running the host's tools (ip, go, buildah, ...) with a timeout and an error that says what failed."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence


class CommandError(RuntimeError):
    pass


def run(
    argv: Sequence[str],
    *,
    timeout: float = 60,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd, input=input
        )
    except subprocess.TimeoutExpired as exc:
        raise CommandError(f"`{' '.join(argv)}` did not finish within {timeout:.0f}s") from exc
    except FileNotFoundError as exc:
        raise CommandError(f"`{argv[0]}` is not installed (run the README's setup command)") from exc
    if check and result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
        raise CommandError(f"`{' '.join(argv)}` failed with exit code {result.returncode}:\n{tail}")
    return result
