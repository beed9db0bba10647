//! Generates the gRPC service and messages from `proto/yuma/v1/epoch.proto`, plus the
//! descriptor set that server reflection serves. The proto is parsed by `protox` (pure
//! Rust), so building needs no `protoc` on the machine. Only with the `server` feature.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    #[cfg(feature = "server")]
    server::generate()?;
    Ok(())
}

#[cfg(feature = "server")]
mod server {
    use prost::Message;

    pub fn generate() -> Result<(), Box<dyn std::error::Error>> {
        let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
        println!("cargo:rerun-if-changed=proto");
        let fds = protox::compile(["yuma/v1/epoch.proto"], ["proto"])?;
        std::fs::write(out.join("yuma_v1_descriptor.bin"), fds.encode_to_vec())?;
        tonic_prost_build::configure()
            // Decodes big RunEpochs requests and encodes their responses in parallel.
            .codec_path("crate::server::codec::YumaCodec")
            // `bytes` fields share the received buffer instead of copying out of it.
            .bytes(".")
            // Written out by hand for its fast packed decoding (src/server/sparse_matrix.rs).
            .extern_path(
                ".yuma.v1.SparseMatrix",
                "crate::server::sparse_matrix::SparseMatrix",
            )
            .compile_fds(fds)?;
        Ok(())
    }
}
