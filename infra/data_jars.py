"""Resolve data-only Maven artifacts into ~/.m2 (``python -m tapewatch.infra.data_jars GROUP:NAME:VERSION …``): jars we
read files out of and never run. Maven is installed if missing, as for the servers; a jar already in ~/.m2 costs no
network."""

from __future__ import annotations

import sys

from tapewatch.infra.common import mvn, run


def resolve(artifact: str) -> None:
    run(
        [mvn(), "-q", "-B", "dependency:get", f"-Dartifact={artifact}", "-Dtransitive=false"],
        what=f"maven: resolve {artifact}",
    )


if __name__ == "__main__":
    for name in sys.argv[1:]:
        resolve(name)
