//! The `bulk-audit` binary: everything lives in the library; this only hands over the exit status.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(bulk_audit::cli::main());
}
