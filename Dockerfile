# syntax=docker/dockerfile:1
# The preflight pod's image: `nodecheck scan --root /host -o json` as a fixed non-root UID.
# Build from the repo root:  docker build -t nodecheck:0.1.0 .
# The base is pinned by tag here; pin it by digest for production builds
# (docker build --build-arg BASE=python:3.12.7-slim-bookworm@sha256:...).
ARG BASE=python:3.12.7-slim-bookworm

FROM ${BASE} AS build
WORKDIR /src
# Exactly what `pip install .` needs: the package, its metadata and build hook, and the two
# data trees the build hook (setup.py) copies into the package as nodecheck/data/matrix and
# nodecheck/data/playbooks, where nodecheck finds them without any env var. The same layout
# as the repository: tests, deploy/ etc. stay out.
COPY pyproject.toml setup.py MANIFEST.in README.md ./
COPY nodecheck/ nodecheck/
COPY matrix/ matrix/
COPY playbooks/ playbooks/
RUN python -m venv /opt/nodecheck \
 && /opt/nodecheck/bin/pip install --no-cache-dir --disable-pip-version-check . \
 && find /opt/nodecheck -name '__pycache__' -prune -exec rm -rf {} +

FROM ${BASE}
# The probe needs only sh, dd, grep, awk, gzip, find, readlink, id, uname: all in the base
# (Debian "required" packages). No package manager run here, nothing else added.
COPY --from=build /opt/nodecheck /opt/nodecheck
ENV PATH=/opt/nodecheck/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /
USER 65532:65532
ENTRYPOINT ["nodecheck", "scan", "--root", "/host", "-o", "json"]
