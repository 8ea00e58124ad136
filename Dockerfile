# The IEM-DCR twin as a container: one meter by default, meter API on 8080, control API and dashboard on 8090.
#   docker build -t iemdcr-twin .
#   docker run --rm -p 127.0.0.1:8080:8080 -p 127.0.0.1:8090:8090 -v iemdcr-state:/var/lib/iemdcr/state iemdcr-twin
# More meters: append flags, e.g. `docker run ... iemdcr-twin iemdcr-sim serve --host 0.0.0.0 --meters 3 ...`.
# The base image is a build argument so labs can use a mirrored or pinned image (docs/docker.md).
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/iemdcr \
    PATH=/opt/iemdcr/bin:$PATH

# Install into a virtual environment (Debian-based images refuse pip into the system Python, PEP 668).
COPY pyproject.toml README.md LICENSE /src/
COPY iemdcr_twin /src/iemdcr_twin
COPY simulator /src/simulator
COPY driver /src/driver
RUN python3 -m venv /opt/iemdcr \
    && /opt/iemdcr/bin/pip install --no-cache-dir /src \
    && rm -rf /src

# An unprivileged user owns the state dir; a named volume inherits that ownership.
RUN useradd --system --user-group --home-dir /var/lib/iemdcr --create-home --shell /usr/sbin/nologin iemdcr \
    && mkdir -p /var/lib/iemdcr/state \
    && chown -R iemdcr:iemdcr /var/lib/iemdcr
USER iemdcr
WORKDIR /var/lib/iemdcr
VOLUME ["/var/lib/iemdcr/state"]

EXPOSE 8080 8090

# /healthz is public even with a control token; urlopen raises on anything but 2xx, so 503 is unhealthy.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python3", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8090/healthz', timeout=2)"]

CMD ["iemdcr-sim", "serve", "--host", "0.0.0.0", "--port", "8080", "--control-port", "8090", \
     "--state-dir", "/var/lib/iemdcr/state"]
