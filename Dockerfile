# syntax=docker/dockerfile:1
#
# docker build --build-arg VERSION=$(git describe --tags --always) \
#   --build-arg REVISION=$(git rev-parse HEAD) -t portsip_exporter .

FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=devel
ARG REVISION=unknown
# Static (no libc), reproducible (-trimpath) and small (-s -w); the version
# ends up in --version and portsip_exporter_build_info.
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.revision=${REVISION}" \
      -o /out/portsip_exporter .

# distroless/static: CA certificates (for wss:// to a PBX with a public
# certificate) and tzdata, no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=devel
ARG REVISION=unknown
LABEL org.opencontainers.image.title="portsip_exporter" \
      org.opencontainers.image.description="Prometheus exporter for the PortSIP PBX" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
COPY --from=build /out/portsip_exporter /bin/portsip_exporter
# The image's "nonroot" user, numerically, so Kubernetes' runAsNonRoot can
# verify it.
USER 65532:65532
EXPOSE 9887
ENTRYPOINT ["/bin/portsip_exporter"]
