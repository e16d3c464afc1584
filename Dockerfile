# syntax=docker/dockerfile:1
# Images for the two processes, built from one source tree (TypeScript runs through tsx: no build step).
#   docker build --target api -t rlhf-api .        REST API; also runs the migrations
#   docker build --target worker -t rlhf-worker .  GPU worker: CUDA 13, cuDNN 9, ONNX Runtime's CUDA provider

ARG NODE_IMAGE=node:20-bookworm-slim
ARG CUDA_IMAGE=nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04

FROM ${NODE_IMAGE} AS node

FROM node AS source
# npm 11: the lockfile's install-script policy (allowScripts in package.json) is an npm 11 feature.
RUN npm install -g npm@11.19.1 --no-audit --no-fund
WORKDIR /app
COPY . .
# Also generates the Prisma client (root postinstall).
RUN npm ci --no-audit --no-fund

FROM source AS api
ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000 ARTIFACT_DIR=/data/artifacts
RUN mkdir -p /data/artifacts && chown node:node /data/artifacts
USER node
EXPOSE 3000
CMD ["node", "--import", "tsx", "apps/api/src/main.ts"]

# onnxruntime-node 1.29.0's CUDA provider libraries, placed next to its binding (see DESIGN.md).
FROM source AS cuda-source
RUN npm run setup:cuda

FROM ${CUDA_IMAGE} AS worker
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=cuda-source /app /app
WORKDIR /app
ENV NODE_ENV=production ARTIFACT_DIR=/data/artifacts DEVICE=cuda:0
# uid 1000 is `node` in the API image: both write the shared artifact volume.
RUN mkdir -p /data/artifacts && chown 1000:1000 /data/artifacts
USER 1000
CMD ["node", "--import", "tsx", "apps/worker/src/main.ts"]
