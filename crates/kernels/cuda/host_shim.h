// Host shim: lets ops.cu compile as plain C++17 (g++/clang++) so `cargo test` can check the
// kernels' arithmetic on machines without a GPU or a CUDA toolkit (crates/kernels-host).
//
// It is included by ops.cu only when BALLAST_HOST_SHIM is defined; nvcc never sees it.
//
// Execution model: LAUNCH runs every block of the grid, and every thread of each block, one
// after another on the calling thread. That is a valid CUDA schedule for kernels that use no
// shared memory and no __syncthreads() (ops.cu has neither: one thread per output element,
// grid-stride loops, and atomics only for order-independent counts and sums), so the host build
// computes exactly what the device build computes, apart from the libm used by expf/logf.
#pragma once

#ifndef BALLAST_HOST_SHIM
#error "host_shim.h is for the host build only (define BALLAST_HOST_SHIM)"
#endif

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <math.h>

// Kernels are file-local functions on the host: only the extern "C" launchers are exported, so
// short kernel names like im2col cannot clash with symbols of other linked libraries.
#define BALLAST_KERNEL static
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline

struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1)
        : x(x_), y(y_), z(z_) {}
};

// Thread-local so that host tests running in parallel (cargo test threads) do not interfere.
inline thread_local dim3 blockIdx;
inline thread_local dim3 threadIdx;
inline thread_local dim3 blockDim;
inline thread_local dim3 gridDim;

// Threads run one at a time, so a plain read-modify-write is atomic.
template <class T>
inline T ballast_atomic_add(T* address, T value) {
    T old = *address;
    *address = old + value;
    return old;
}
inline float atomicAdd(float* a, float v) { return ballast_atomic_add(a, v); }
inline double atomicAdd(double* a, double v) { return ballast_atomic_add(a, v); }
inline int atomicAdd(int* a, int v) { return ballast_atomic_add(a, v); }
inline unsigned int atomicAdd(unsigned int* a, unsigned int v) { return ballast_atomic_add(a, v); }

// CUDA's round-to-nearest intrinsics: on the host these are the plain IEEE operations (the build
// passes -ffp-contract=off so the compiler does not fuse them into FMAs either).
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return std::sqrt(a); }

// Runs kernel<<<grid, block>>>(args...) sequentially, as described above.
template <class Kernel, class... Args>
inline void ballast_launch(Kernel kernel, dim3 grid, dim3 block, Args... args) {
    gridDim = grid;
    blockDim = block;
    for (unsigned int bz = 0; bz < grid.z; ++bz)
        for (unsigned int by = 0; by < grid.y; ++by)
            for (unsigned int bx = 0; bx < grid.x; ++bx) {
                blockIdx = dim3(bx, by, bz);
                for (unsigned int tz = 0; tz < block.z; ++tz)
                    for (unsigned int ty = 0; ty < block.y; ++ty)
                        for (unsigned int tx = 0; tx < block.x; ++tx) {
                            threadIdx = dim3(tx, ty, tz);
                            kernel(args...);
                        }
            }
}

#define LAUNCH(kernel, grid, block, ...) ballast_launch(kernel, grid, block, __VA_ARGS__)
