# slotproxy: a static binary on a distroless, non-root image.
#   docker build -t slotproxy .
#   docker run -p 5000:5000 -p 9121:9121 slotproxy -seeds redis-node-1:6379
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/slotproxy ./cmd/slotproxy

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/slotproxy /usr/local/bin/slotproxy
COPY proxy.yaml /etc/slotproxy/proxy.yaml
EXPOSE 5000 9121
USER nonroot
ENTRYPOINT ["/usr/local/bin/slotproxy", "-config", "/etc/slotproxy/proxy.yaml"]
