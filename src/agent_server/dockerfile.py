"""`agent-server dockerfile`: the Dockerfile of a project's own image, built on Agent Server's image as
`langgraph dockerfile` builds on the official one. The build context is the folder of langgraph.json, copied
to /app (where every role finds langgraph.json); the project's `dependencies` are installed at build time."""
from __future__ import annotations

import json
import shlex
from pathlib import Path

from . import __version__
from .config import Settings
from .errors import ConfigError

# what `docker build -t agent-server:<version> .` at the root of this repository makes
DEFAULT_BASE_IMAGE = f"agent-server:{__version__}"
APP_DIR = "/app"
APP_USER = "10001:10001"  # the base image's non-root user
DOCKERIGNORE = """\
# Local state and environments stay out of the image.
.agent_server
.venv
**/__pycache__
.git
"""


def _local_install(dep: Path, settings: Settings) -> str | None:
    """The install command of a local dependency: a package is installed, a requirements file's packages
    are; a plain folder of modules needs nothing (the server puts it on sys.path)."""
    try:
        rel = dep.relative_to(settings.base_dir).as_posix()
    except ValueError:
        raise ConfigError(
            f"{settings.config_path}: dependencies: {dep} is outside {settings.base_dir}, the image's build context"
        ) from None
    where = APP_DIR if rel == "." else f"{APP_DIR}/{rel}"
    if (dep / "pyproject.toml").is_file() or (dep / "setup.py").is_file():
        return f"pip install --no-cache-dir {shlex.quote(where)}"
    if (dep / "requirements.txt").is_file():
        return f"pip install --no-cache-dir -r {shlex.quote(where + '/requirements.txt')}"
    return None


def render(settings: Settings, base_image: str = DEFAULT_BASE_IMAGE) -> str:
    """The Dockerfile of the project whose settings these are."""
    raw = json.loads(settings.config_path.read_text())
    packages = [d for d in raw.get("dependencies") or [] if not d.startswith((".", "/"))]
    installs = [cmd for dep in settings.dependencies if (cmd := _local_install(dep, settings))]
    if packages:
        installs.insert(0, "pip install --no-cache-dir " + " ".join(map(shlex.quote, packages)))
    lines = [
        "# syntax=docker/dockerfile:1",
        f"# Written by `agent-server dockerfile` from {settings.config_path.name}; build from its folder:",
        "#   docker build -t my-agents -f <this file> .",
        f"FROM {base_image}",
        "USER 0",  # root: installs write to the image's virtualenv; the server runs as its own user again below
        *(raw.get("dockerfile_lines") or []),
        f"COPY . {APP_DIR}",
    ]
    if settings.config_path.name != "langgraph.json":  # every role reads /app/langgraph.json
        lines.append(f"COPY {settings.config_path.name} {APP_DIR}/langgraph.json")
    if installs:
        lines.append("RUN " + " \\\n    && ".join(installs))
    lines += [f"WORKDIR {APP_DIR}", f"USER {APP_USER}"]
    return "\n".join(lines) + "\n"


def write(settings: Settings, save_path: Path, base_image: str = DEFAULT_BASE_IMAGE) -> list[Path]:
    """Write the Dockerfile, and a .dockerignore in the build context when it has none; the files written."""
    text = render(settings, base_image)
    save_path.parent.mkdir(parents=True, exist_ok=True)
    save_path.write_text(text)
    written = [save_path]
    ignore = settings.base_dir / ".dockerignore"
    if not ignore.exists():
        ignore.write_text(DOCKERIGNORE)
        written.append(ignore)
    return written
