"""`flare bench NAME`: runs bench/NAME.py's main(argv) from the source tree."""
from __future__ import annotations

import runpy
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent.parent / "bench"


def available() -> list[str]:
    return sorted(p.stem for p in BENCH_DIR.glob("*.py") if not p.stem.startswith("_"))


def run_bench(name: str, argv: list[str]) -> int:
    path = BENCH_DIR / f"{name}.py"
    if not path.exists():
        print(f"no benchmark named {name!r}; available: {', '.join(available()) or 'none'}")
        return 2
    module = runpy.run_path(str(path), run_name=f"bench_{name}")
    return int(module["main"](argv) or 0)
