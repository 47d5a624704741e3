FROM scratch
ARG VERSION=dev
ENV SCHEMA_VERSION=$VERSION
COPY bin/busybox /bin/busybox
COPY services/migrate/migrate.sh /migrate.sh
ENTRYPOINT ["/bin/busybox", "sh", "/migrate.sh"]
