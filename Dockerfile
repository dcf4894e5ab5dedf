# Gleaner's image: the sources run through tsx, as in development.
FROM node:20-bookworm-slim
ENV PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 NODE_ENV=production
WORKDIR /app
# Debian's Chromium headless shell for pages that need JavaScript (the default of
# crawl.browser.executable_path when installed).
RUN apt-get update \
  && apt-get install -y --no-install-recommends chromium-headless-shell \
  && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY bin ./bin
COPY src ./src
COPY migrations ./migrations
COPY demo ./demo
COPY gleaner.yaml ./
EXPOSE 9464
ENTRYPOINT ["node", "bin/gleaner.js"]
CMD ["start", "--config", "/app/gleaner.yaml"]
