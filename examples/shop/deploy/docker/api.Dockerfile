# Built with the repository root (examples/shop) as context.
FROM scratch
ARG GIT_COMMIT=unknown
ARG BUILD_TIME=unknown
ARG VERSION=dev
LABEL org.opencontainers.image.revision=$GIT_COMMIT \
      org.opencontainers.image.created=$BUILD_TIME \
      org.opencontainers.image.version=$VERSION
COPY bin/busybox /bin/busybox
COPY services/api/www /www
EXPOSE 8080
ENTRYPOINT ["/bin/busybox", "httpd", "-f", "-v", "-p", "8080", "-h", "/www"]
