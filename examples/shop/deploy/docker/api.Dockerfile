# Built with the repository root (examples/shop) as context.
FROM scratch
ARG GIT_COMMIT=unknown
ARG BUILD_TIME=unknown
ARG VERSION=dev
LABEL org.opencontainers.image.revision=$GIT_COMMIT \
      org.opencontainers.image.created=$BUILD_TIME \
      org.opencontainers.image.version=$VERSION
COPY bin/busybox /bin/busybox
# sh, tar and head for `devloop dev`'s file sync (and a shell for `kubectl exec`): links to busybox.
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY services/api/www /www
EXPOSE 8080
ENTRYPOINT ["/bin/busybox", "httpd", "-f", "-v", "-p", "8080", "-h", "/www"]
