//! Generates the gRPC service and messages from `proto/yuma/v1/epoch.proto` (needs `protoc`),
//! plus the descriptor set that server reflection serves.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
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
        .file_descriptor_set_path(out.join("yuma_v1_descriptor.bin"))
        .compile_protos(&["proto/yuma/v1/epoch.proto"], &["proto"])?;
    Ok(())
}
