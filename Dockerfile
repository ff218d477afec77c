# Portcullis gateway image. Build: docker build -t portcullis .
# node:lts-slim follows the current Node.js LTS line.
FROM node:lts-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src src
COPY plugins plugins
RUN npm run build && npm prune --omit=dev --ignore-scripts

FROM node:lts-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY package.json ./
COPY config config
USER node
EXPOSE 8080 9901
# The admin listener answers /healthz; ADMIN_PORT matches config/gateway.yaml's default.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.ADMIN_PORT||9901)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["start", "-c", "config/gateway.yaml"]
