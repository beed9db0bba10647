# yuma daemon image: built with the Rust toolchain, run on a slim Debian with the Vulkan
# loader, Mesa's drivers and NVIDIA's NVRTC. Nothing of CUDA is needed to build.
#
#   docker build -t yuma .
#   docker run --gpus all -v ./token:/run/secrets/yuma-token:ro -p 50051:50051 yuma
#   docker run --gpus all yuma backends        # lists cuda when a GPU is passed through
#
# The NVIDIA container toolkit (`--gpus`) mounts the host's driver (libcuda) into the
# container, not NVRTC, which compiles the kernels at start: this image carries NVRTC itself
# (NVIDIA's `cuda-nvrtc-12-8` package from their Debian 12 repository) and points
# YUMA_NVRTC_LIB at it.

# cargo-chef turns the manifests into a recipe, so the dependencies build in their own
# cached layer and a source change rebuilds only yuma.
FROM rust:1.95-bookworm AS chef
RUN cargo install cargo-chef --locked --version ^0.1
WORKDIR /src

FROM chef AS plan
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
COPY --from=plan /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json --bin yuma
COPY . .
RUN cargo build --release --locked --bin yuma

FROM debian:bookworm-slim
# Vulkan loader and Mesa drivers let the wgpu backend find an adapter; NVRTC lets the CUDA
# backend compile its kernels on the GPU the toolkit passes through.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl libvulkan1 mesa-vulkan-drivers \
    && curl -fsSL -o /tmp/cuda-keyring.deb https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/cuda-keyring_1.1-1_all.deb \
    && dpkg -i /tmp/cuda-keyring.deb && rm /tmp/cuda-keyring.deb \
    && apt-get update && apt-get install -y --no-install-recommends cuda-nvrtc-12-8 \
    && apt-get purge -y curl && apt-get autoremove -y && rm -rf /var/lib/apt/lists/*
ENV YUMA_NVRTC_LIB=/usr/local/cuda-12.8/targets/x86_64-linux/lib/libnvrtc.so.12
# The toolkit mounts libcuda only for containers that ask for compute.
ENV NVIDIA_DRIVER_CAPABILITIES=compute,utility
COPY --from=build /src/target/release/yuma /usr/local/bin/yuma
EXPOSE 50051
ENTRYPOINT ["yuma"]
CMD ["serve", "--listen", "0.0.0.0:50051", "--backend", "auto", "--token-file", "/run/secrets/yuma-token"]
