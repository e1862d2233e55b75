//! Compiles the `.proto` files under `proto/` with `protox` (a pure-Rust
//! protobuf compiler), so building PromLake needs no `protoc` on the machine.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files =
        ["proto/remote.proto", "proto/io/prometheus/write/v2/types.proto", "proto/promlake/stream/v1/record.proto"];
    for f in &files {
        println!("cargo:rerun-if-changed={f}");
    }
    println!("cargo:rerun-if-changed=proto/types.proto");
    let fds = protox::compile(files, ["proto"])?;
    let mut config = prost_build::Config::new();
    config.compile_fds(fds)?;
    Ok(())
}
