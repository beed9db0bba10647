# yuma daemon image: build with the Rust toolchain, run on a slim Debian.
# CUDA needs the host's driver (libcuda) and libnvrtc at run time, e.g. through the
# NVIDIA container toolkit; nothing of CUDA is needed to build.
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends protobuf-compiler && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin yuma

FROM debian:bookworm-slim
# Vulkan loader and Mesa drivers let the wgpu backend find an adapter.
RUN apt-get update && apt-get install -y --no-install-recommends libvulkan1 mesa-vulkan-drivers ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/yuma /usr/local/bin/yuma
EXPOSE 50051
ENTRYPOINT ["yuma"]
CMD ["serve", "--listen", "0.0.0.0:50051", "--backend", "auto", "--token-file", "/run/secrets/yuma-token"]
