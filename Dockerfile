# Gleaner's image: the compiled JavaScript in dist/, built here and run without a loader.
FROM node:20-bookworm-slim AS build
ENV PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY src ./src
# `npm ci` runs `prepare`, which compiles src/ to dist/.
RUN npm ci --no-audit --no-fund && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 NODE_ENV=production
WORKDIR /app
# Debian's Chromium headless shell for pages that need JavaScript (the default of
# crawl.browser.executable_path when installed).
RUN apt-get update \
  && apt-get install -y --no-install-recommends chromium-headless-shell \
  && rm -rf /var/lib/apt/lists/*
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY migrations ./migrations
COPY demo ./demo
COPY gleaner.yaml ./
EXPOSE 9464
ENTRYPOINT ["node", "bin/gleaner.js"]
CMD ["start", "--config", "/app/gleaner.yaml"]
