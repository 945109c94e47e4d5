//! Release builds only: the linker compresses the debug sections (zlib) and drops the local
//! symbols, so the shipped binary stays small while panics still print backtraces with function,
//! file and line (Rust's backtrace reader decompresses the line tables). Measured in
//! BENCHMARKS.md.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PROFILE");
    if std::env::var("PROFILE").as_deref() == Ok("release")
        && std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
    {
        println!("cargo:rustc-link-arg-bins=-Wl,--compress-debug-sections=zlib");
        // The local symbols go (with the release profile's LTO, nearly all the functions): a
        // backtrace names bulk-audit's functions, files and lines from the line tables.
        println!("cargo:rustc-link-arg-bins=-Wl,--discard-all");
    }
}
