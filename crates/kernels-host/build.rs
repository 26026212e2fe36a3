//! Compiles the CUDA kernels' source (crates/kernels/cuda/ops.cu) as C++17 for the host, with
//! host_shim.h standing in for the CUDA runtime (see the header comment of ops.cu).

fn main() {
    let dir = std::path::Path::new("../kernels/cuda");
    let ops = dir.join("ops.cu");
    for f in [&ops, &dir.join("host_shim.h")] {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    cc::Build::new()
        .cpp(true)
        // The file ends in .cu: tell the compiler it is C++ (flags come before the file).
        .flag("-x")
        .flag("c++")
        .std("c++17")
        .opt_level(2)
        .define("BALLAST_HOST_SHIM", None)
        // The kernels spell out each rounding (__fmul_rn, __fadd_rn); no FMA contraction, no
        // fast-math, so the host computes exactly what the device computes.
        .flag("-ffp-contract=off")
        .flag_if_supported("-fno-fast-math")
        .warnings(true)
        .extra_warnings(true)
        .file(&ops)
        .compile("ballast_cuda_ops_host");
}
