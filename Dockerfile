# Portcullis gateway image. Build: docker build -t portcullis .
# Node.js 24, an LTS line (maintained until April 2028); the major is pinned so a rebuild never
# moves to another one. docs/deployment.md explains the defaults below.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src src
COPY plugins plugins
RUN npm run build && npm prune --omit=dev --ignore-scripts

FROM node:24-bookworm-slim
ENV NODE_ENV=production
# The admin listener (and /metrics) is reachable from outside the container; config/gateway.yaml
# reads ADMIN_HOST, and a non-loopback admin listener requires ADMIN_TOKEN (16+ characters).
ENV ADMIN_HOST=0.0.0.0
# Where `portcullis start` says it listens, for the health check: any config, any ports, no admin needed.
ENV PORTCULLIS_STATE_FILE=/tmp/portcullis.state
WORKDIR /app
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY package.json ./
COPY config config
USER node
EXPOSE 8080 9901
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["node", "dist/src/cli/main.js", "healthcheck"]
ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["start", "-c", "config/gateway.yaml"]
