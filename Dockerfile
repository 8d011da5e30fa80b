# syntax=docker/dockerfile:1
# The compliance-scan operator image.
#
# Node 24 runs the TypeScript sources directly (type stripping), so the production bundle
# is src/ plus the production node_modules, staged by scripts/build-dist.ts (`npm run
# build`): src/ reads data files next to its modules (CEL packs, the CIS severity table,
# Falco's .proto files), which a single-file bundle would separate from them.
#
#   docker build -t ghcr.io/ugallu/compliance-scan:0.1.0 .

# Same Node version as the `node` devDependency the tests run on, pinned by digest (the
# tag alone can be re-pointed). The digest is the one public projects pin for this tag
# (garden-io/garden's base image, among others); it could not be read from Docker Hub on
# the machine this was written on (no registry access). Check it before a release:
#   docker buildx imagetools inspect docker.io/library/node:24.9.0-bookworm-slim
ARG NODE_IMAGE=docker.io/library/node:24.9.0-bookworm-slim@sha256:3e69116c924bfcba6c6979aff60d966c37aef56d488ce091c69d442ebec9f103

FROM ${NODE_IMAGE} AS build
WORKDIR /build
COPY package.json package-lock.json ./
# Production dependencies only. No install scripts: none of them needs one.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund
COPY bin/ bin/
COPY src/ src/
COPY scripts/build-dist.ts scripts/
RUN node scripts/build-dist.ts --out /app

FROM ${NODE_IMAGE}
# npm and corepack are not needed to run the operator: less to patch and to scan.
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
      /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack
# MALLOC_MMAP_THRESHOLD_: glibc serves every allocation of 128 KiB or more (the answers of a
# scan's list pages, several MiB each) with its own mapping, returned to the system when it is
# freed. Left to itself, glibc raises that threshold after the first large free and keeps the
# freed pages in its heap: after two 100,000-Pod scans the operator stayed at 215-238 MiB RSS
# with a 46 MiB V8 heap; with the fixed threshold it fell back to 176-201 MiB (docs/cel.md).
ENV NODE_ENV=production \
    HOME=/tmp \
    MALLOC_MMAP_THRESHOLD_=131072
COPY --from=build /app /app
WORKDIR /app
# A numeric non-root user, so that the kubelet can verify runAsNonRoot.
USER 65532:65532
EXPOSE 8080 8081
# A small young generation: V8 sizes it for the machine's memory otherwise, and most of the
# idle RSS was heap slack (bench/cluster.ts: idle 248 -> 194 MiB, peak 286 -> 198 MiB).
ENTRYPOINT ["node", "--max-semi-space-size=2", "/app/bin/compliance-scan.js"]
CMD ["run"]
