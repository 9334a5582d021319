# One image for the control plane (`hodei server`) and the worker agent (`hodei worker`).
# The base only needs python3 with venv; tests and CI build it from Debian packages
# (scripts/podman-setup) and pass it as BASE_IMAGE, so no registry is needed.
ARG BASE_IMAGE=docker.io/library/python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
# Optional CA bundle for pip behind a TLS-inspecting proxy (scripts/build-image mounts the
# host's bundle and passes its path); unset means pip's own certificates.
ARG PIP_CERT
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
# The launcher for jobs in images without Hodei: Debian's static busybox (and launch.sh,
# below), which a worker pod's init container copies into the job's container (see
# deploy/kubernetes/README.md, "Worker pods").
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install --yes --no-install-recommends busybox-static \
    && mkdir -p /opt/hodei/launcher \
    && cp /bin/busybox /opt/hodei/launcher/busybox \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# Build the wheel, then install it with its dependencies into a venv that is copied whole
# into the runtime stage; pip itself is not needed at run time.
RUN python3 -m venv /opt/hodei \
    && /opt/hodei/bin/python -m pip wheel --no-deps --wheel-dir /tmp/dist /src \
    && /opt/hodei/bin/python -m pip install /tmp/dist/hodei-*.whl \
    && /opt/hodei/bin/python -m pip uninstall --yes pip setuptools

FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="hodei" \
      org.opencontainers.image.description="Hodei control plane and worker agent"
COPY --from=build /opt/hodei /opt/hodei
COPY src/hodei/worker/launch.sh /opt/hodei/launcher/launch.sh
# Fixed non-root identity: the manifests and the pod builder run as uid/gid 10001.
# HOME and the working directory are /tmp, which the pods mount as an emptyDir because
# the root filesystem is read-only there.
RUN groupadd --gid 10001 hodei \
    && useradd --uid 10001 --gid 10001 --home-dir /tmp --no-create-home \
       --shell /usr/sbin/nologin hodei
ENV PATH=/opt/hodei/bin:$PATH \
    HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /tmp
USER 10001:10001
EXPOSE 50051 9090
ENTRYPOINT ["hodei"]
CMD ["server"]
