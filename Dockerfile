# pdp: the decision service. docs/deploy.md explains each choice; tests/unit/test_deploy_files.py
# checks this file against the repository, and runs its HEALTHCHECK against a real `pdp serve`.
#
#   docker build -t pdp .
#   docker run --rm -p 8180:8180 -p 50051:50051 -v "$PWD/examples/store:/store:ro" pdp
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY pdp ./pdp
COPY server ./server
COPY clients/python ./clients/python
# the service and its client library (the generated gRPC stubs live in pdp-client)
RUN pip install --no-cache-dir --prefix=/install ./clients/python '.[serve]'

FROM python:3.11-slim
COPY --from=build /install /usr/local
# a user without a shell or a home: nothing in the image is writable by it but /tmp
RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin pdp
USER 10001:10001
# The store is mounted read-only at /store (a git-sync volume, a ConfigMap, a host path);
# the decision ports listen on every interface, admin stays on loopback (kubectl port-forward).
ENV PDP_STORE=/store \
    PDP_HTTP=0.0.0.0:8180 \
    PDP_GRPC=0.0.0.0:50051 \
    PDP_ADMIN=127.0.0.1:8182 \
    PDP_WORKERS=2 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
VOLUME ["/store"]
EXPOSE 8180 50051
# liveness of the HTTP port, with the interpreter the image already has (no curl in slim)
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8180/healthz', timeout=2).status != 200)"]
# PDP_WORKERS (and every PDP_* setting) is read from the environment by `pdp serve`
ENTRYPOINT ["pdp", "serve"]
