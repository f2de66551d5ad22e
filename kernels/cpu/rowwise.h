// Row-wise CPU kernels of the decode step (RMSNorm, residual add + RMSNorm, SwiGLU, RoPE, KV cache slot
// writes): raw pointers, no
// torch, one call for all rows, so that a decode step does not pay an at:: dispatch and an allocation per
// elementwise op. Thin torch wrappers: src/ops/norm.cpp and src/ops/rope.cpp.
//
// Rounding invariant: every intermediate that the at:: formulation of the same op materialises in the
// tensor's dtype (ops/norm.h, ops/rope.h) is rounded to that dtype here at the same point; arithmetic is
// float32; exp is FastExp (kernels/cpu/fast_exp.h, about 2 float32 ulps). Each row's result depends only on
// that row. Strides are in elements; last dims are contiguous.
#pragma once

#include <cstdint>

#include "elem_type.h"

namespace inferd::kernels::cpu {

// y[r] = weight * to_t(x[r] * rsqrt(mean(x[r]^2) + eps)), statistics in float32.
void RmsNormRows(const void* x, int64_t ldx,  // [rows, dim]
                 const void* weight,          // [dim]
                 void* y, int64_t ldy,        // [rows, dim]
                 ElemType type, int64_t rows, int64_t dim, float eps);

// hidden[r] = to_t(hidden[r] + delta[r]) (in place), then y[r] = RmsNorm(hidden[r]) as above.
void AddRmsNormRows(void* hidden, int64_t ldh,       // [rows, dim]
                    const void* delta, int64_t ldd,  // [rows, dim]
                    const void* weight,              // [dim]
                    void* y, int64_t ldy,            // [rows, dim]
                    ElemType type, int64_t rows, int64_t dim, float eps);

// y[r, i] = to_t(to_t(silu(g)) * u) with g = gate_up[r, i], u = gate_up[r, inter + i].
void SiluMulRows(const void* gate_up, int64_t ldg,  // [rows, 2 * inter]
                 void* y, int64_t ldy,              // [rows, inter]
                 ElemType type, int64_t rows, int64_t inter);

// Rotary embedding of x[t, h, :] (dim = 2 * half values per head) with cos/sin[t, :half] (float32):
// out = [x1 * cos - x2 * sin, x2 * cos + x1 * sin]; neox: x1/x2 = first/second half of the head,
// interleaved: x1/x2 = its even/odd elements (the output is de-interleaved, as ops::ApplyRope documents).
// dst may equal src (in place).
void RopeRows(const void* src, int64_t src_token_stride, int64_t src_head_stride,  // [tokens, heads, dim]
              void* dst, int64_t dst_token_stride, int64_t dst_head_stride,        // [tokens, heads, dim]
              const float* cos, const float* sin,                                  // [tokens, half] each
              ElemType type, int64_t tokens, int64_t heads, int64_t half, bool interleaved);

// dst[slots[r]] = src[r] for r in [0, rows): each row is `row_bytes` contiguous bytes (a token's K or V, or
// MLA's latent row, already in the cache's dtype). Slots must be distinct and in range (the caller checks).
void CopyRowsToSlots(const void* src, int64_t src_row_stride_bytes,  // [rows, row_bytes]
                     void* dst, int64_t dst_row_stride_bytes,        // [slots, row_bytes]
                     const int64_t* slots, int64_t rows, int64_t row_bytes);

}  // namespace inferd::kernels::cpu
