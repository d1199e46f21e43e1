//! Release builds on Linux lay out the functions an agent's day runs (start-up, registration,
//! the page's requests, calls) next to each other, hottest first, from a profile kept in
//! `link/symbol-order.txt` (`./dev link-order` makes it again). The kernel maps a binary's code
//! a large block at a time as it is first run, so code spread over the whole text made an idle
//! daemon map most of it; packed, it maps about what it runs (docs/decisions.md, "Link order").
//! Names the profile has and the binary no longer has are skipped: a stale profile costs
//! memory, never correctness.

fn main() {
    let order = std::path::Path::new("link/symbol-order.txt");
    // Not the profile itself: lld reads it at every link, and a new profile only needs the
    // binary linked again (`./dev link-order` touches src/main.rs), not the library rebuilt.
    println!("cargo::rerun-if-changed=build.rs");
    // Where lld is the default linker (Rust 1.90 on, the workspace's rust-version): x86-64
    // Linux with glibc — unless the build names a linker of its own (GNU ld would refuse the
    // flag), in which case it links as it asked.
    let target = std::env::var("TARGET").unwrap_or_default();
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let own_linker = std::env::var_os("RUSTC_LINKER").is_some()
        || ["fuse-ld", "linker-features", "linker="]
            .iter()
            .any(|flag| flags.contains(flag));
    println!("cargo::rerun-if-env-changed=RUSTC_LINKER");
    let linux = target == "x86_64-unknown-linux-gnu" && !own_linker;
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    if linux && release && order.exists() {
        let path = std::path::absolute(order).unwrap_or_else(|_| order.to_owned());
        println!(
            "cargo::rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            path.display()
        );
        println!("cargo::rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}
