# meshlet: the CLI and the daemon in one image.
#
#   docker build -t meshlet .                      # on node:22-bookworm-slim
#   docker build --build-arg BASE_IMAGE=meshlet-local/node:22-bookworm-slim -t meshlet .
#                                                  # on a base made offline by scripts/make-base-image.sh
#
# Two stages. `build` installs every dependency (better-sqlite3 is compiled there, once, and its build leftovers dropped),
# compiles the TypeScript and prunes to production dependencies; the runtime stage copies
# that result, without compilers or dev dependencies, onto the same base.
#
# Non-root, with one caveat: the daemon drives the host's Docker engine through its
# socket, and whoever can use that socket can start a privileged container, i.e. is root
# on the host. The daemon runs as the unprivileged `meshlet` user (uid 10001) and gets the
# socket through its group (`--group-add $(stat -c %g /var/run/docker.sock)`, DOCKER_GID in
# docker-compose.yml): that keeps a compromised daemon from the image's files and the
# container's root, not from the engine. Replicas themselves run with least privilege
# (src/executor/docker.ts).
ARG BASE_IMAGE=node:22-bookworm-slim

FROM ${BASE_IMAGE} AS build
# to compile better-sqlite3 when no prebuilt binary can be downloaded
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# node-gyp takes Node's headers from the image instead of downloading them
ENV npm_config_nodedir=/usr/local npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false
# dependencies before sources: a change to src/ reuses this layer and its compiled modules
COPY package.json package-lock.json ./
RUN npm ci && npm cache clean --force
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev \
 && cd node_modules/better-sqlite3 && rm -rf deps src build/Release/obj build/Release/obj.target build/Release/*.a build/Release/test_extension.node && cd /app \
 && if [ -d src/appview/dashboard ]; then cp -r src/appview/dashboard dist/appview/; fi \
 && chmod 0755 dist/cli/main.js

FROM ${BASE_IMAGE}
RUN groupadd --gid 10001 meshlet \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/meshlet --shell /usr/sbin/nologin meshlet \
 && install -d -o meshlet -g meshlet -m 0700 /var/lib/meshlet /var/lib/meshlet-network
WORKDIR /app
# the code belongs to root: the daemon can read it, not change it
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY scripts/docker-entrypoint.sh /usr/local/bin/meshlet-entrypoint
RUN ln -s /app/dist/cli/main.js /usr/local/bin/meshlet && chmod 0755 /usr/local/bin/meshlet-entrypoint
ENV NODE_ENV=production \
    MESHLET_DATA_DIR=/var/lib/meshlet \
    MESHLET_NETWORK_DIR=/var/lib/meshlet-network \
    MESHLET_HOST=0.0.0.0 \
    MESHLET_PORT=2583
USER meshlet
EXPOSE 2583
# farm.meshlet.health: public, no auth; answers once the daemon is up (the network service overrides this)
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.MESHLET_PORT || 2583}/xrpc/farm.meshlet.health`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["meshlet"]
CMD ["run"]
