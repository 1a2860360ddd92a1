# syntax=docker/dockerfile:1
# The tapewatch image: the `tapewatch` CLI and every process it runs (stream worker, sinks, producers).
# infra/docker-compose.yml builds it as tapewatch:local; by hand, from the repository root:
#   docker build -t tapewatch:local .
#   docker run --rm --init tapewatch:local config show
# Settings come only from TAPEWATCH_* environment variables (see .env.example); nothing is baked in.
# Not included: a Java runtime, so the Spark training jobs and `tapewatch infra up` do not run here;
# in containers the services are external (TAPEWATCH_EXTERNAL_SERVICES).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# torch from PyTorch's CPU-only index (the default PyPI wheels pull in several GB of CUDA libraries).
# For the CUDA wheels: docker build --build-arg PIP_EXTRA_INDEX_URL= .
ARG PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu

RUN useradd --system --create-home --home-dir /home/tapewatch --uid 10001 --user-group tapewatch \
    && mkdir -p /var/lib/tapewatch \
    && chown tapewatch:tapewatch /var/lib/tapewatch

WORKDIR /src

# Dependencies first, in their own layer: it is rebuilt only when pyproject.toml changes, not on every code edit.
COPY pyproject.toml ./
# The image runs every part: the core dependencies and those of every extra but dev (`all` names them).
RUN python -c "import subprocess, sys, tomllib; \
project = tomllib.load(open('pyproject.toml', 'rb'))['project']; extra = project['optional-dependencies']; \
deps = project['dependencies'] + [d for name in ('signals', 'spark', 'console') for d in extra[name]]; \
subprocess.check_call([sys.executable, '-m', 'pip', 'install', '--no-cache-dir', *deps])"

COPY . .
RUN pip install --no-cache-dir '.[all]' \
    && cd / && rm -rf /src

# The package lives in site-packages, so the default var dir (next to the sources) is not writable:
# data, logs and model artifacts go to /var/lib/tapewatch (mount a volume there; the compose file does).
ENV TAPEWATCH_VAR_DIR=/var/lib/tapewatch

USER tapewatch
WORKDIR /home/tapewatch

ENTRYPOINT ["tapewatch"]
CMD ["--help"]
