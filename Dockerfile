# slotproxy: a static binary on a distroless, non-root image.
#   docker build --build-arg VERSION=1.0.0 -t slotproxy .
#   docker run -p 5000:5000 -p 9121:9121 -e SLOTPROXY_CLUSTER_SEEDS=redis-node-1:6379 slotproxy
# Every key of proxy.yaml can be given as an environment variable
# (SLOTPROXY_CLUSTER_SEEDS, SLOTPROXY_CLUSTER_PASSWORD, ...).
FROM golang:1.26 AS build
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/slotproxy ./cmd/slotproxy

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/slotproxy /usr/local/bin/slotproxy
COPY proxy.yaml /etc/slotproxy/proxy.yaml
EXPOSE 5000 9121
USER nonroot
# The image has no shell: the binary checks itself (PING through the
# client listener, with the same configuration).
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/slotproxy", "healthcheck", "-config", "/etc/slotproxy/proxy.yaml"]
ENTRYPOINT ["/usr/local/bin/slotproxy", "-config", "/etc/slotproxy/proxy.yaml"]
