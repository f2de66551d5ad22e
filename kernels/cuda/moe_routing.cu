#include <cmath>

#include "cuda/common.cuh"
#include "cuda/moe_routing.h"

namespace inferd::kernels {
namespace {

constexpr int kThreads = 128;

// Index of the largest v[i] (i < n) not flagged in `taken`; ties go to the lower index. -1 if none.
__device__ int64_t ArgMaxFree(const float* v, const bool* taken, int64_t n) {
  int64_t best = -1;
  for (int64_t i = 0; i < n; ++i) {
    if (taken[i]) continue;
    if (best < 0 || v[i] > v[best]) best = i;
  }
  return best;
}

// One block per token (grid-strided). Dynamic shared memory: scores [E] | choice [E] float, then
// group_score [n_group] float, then taken [max(E, n_group)] bool. Selection runs on thread 0.
__global__ void __launch_bounds__(kThreads) MoeRouteKernel(MoeRouteArgs a) {
  extern __shared__ float smem[];
  const int64_t e_count = a.num_experts;
  float* scores = smem;
  float* choice = scores + e_count;
  float* group_score = choice + e_count;
  bool* taken = reinterpret_cast<bool*>(group_score + a.n_group);
  __shared__ float stat;  // softmax max, then sum

  for (int64_t t = blockIdx.x; t < a.num_tokens; t += gridDim.x) {
    const float* logit = a.logits + t * e_count;
    __syncthreads();  // the previous token's selection has finished with shared memory
    if (a.scoring == MoeScoringKind::kSoftmax) {
      if (threadIdx.x == 0) {
        float m = -INFINITY;
        for (int64_t e = 0; e < e_count; ++e) m = fmaxf(m, logit[e]);
        stat = m;
      }
      __syncthreads();
      const float m = stat;
      for (int64_t e = threadIdx.x; e < e_count; e += blockDim.x) scores[e] = expf(logit[e] - m);
      __syncthreads();
      if (threadIdx.x == 0) {
        float s = 0.f;
        for (int64_t e = 0; e < e_count; ++e) s += scores[e];
        stat = s;
      }
      __syncthreads();
      const float sum = stat;
      for (int64_t e = threadIdx.x; e < e_count; e += blockDim.x) scores[e] = scores[e] / sum;
    } else {
      for (int64_t e = threadIdx.x; e < e_count; e += blockDim.x) scores[e] = 1.0f / (1.0f + expf(-logit[e]));
    }
    __syncthreads();
    const bool biased = a.select == MoeSelectKind::kNoauxTc && a.bias != nullptr;
    for (int64_t e = threadIdx.x; e < e_count; e += blockDim.x) {
      choice[e] = biased ? scores[e] + a.bias[e] : scores[e];
      taken[e] = false;
    }
    __syncthreads();
    if (threadIdx.x != 0) continue;

    if (a.select != MoeSelectKind::kGreedy) {
      const int64_t per = e_count / a.n_group;
      for (int64_t g = 0; g < a.n_group; ++g) {
        const float* c = choice + g * per;
        float best = -INFINITY, second = -INFINITY;
        for (int64_t i = 0; i < per; ++i) {
          if (c[i] > best) {
            second = best;
            best = c[i];
          } else if (c[i] > second) {
            second = c[i];
          }
        }
        group_score[g] = a.select == MoeSelectKind::kNoauxTc ? best + second : best;
      }
      bool* group_taken = taken;  // reused: reset below before the expert selection
      for (int64_t g = 0; g < a.n_group; ++g) group_taken[g] = false;
      for (int64_t j = 0; j < a.topk_group; ++j) group_taken[ArgMaxFree(group_score, group_taken, a.n_group)] = true;
      for (int64_t e = 0; e < e_count; ++e) {
        if (!group_taken[e / per]) choice[e] = 0.0f;
      }
      for (int64_t g = 0; g < a.n_group; ++g) group_taken[g] = false;
    }
    int64_t* ids = a.topk_ids + t * a.top_k;
    float* w = a.topk_weights + t * a.top_k;
    float sum = 0.f;
    for (int64_t j = 0; j < a.top_k; ++j) {
      const int64_t e = ArgMaxFree(choice, taken, e_count);
      taken[e] = true;
      ids[j] = e;
      w[j] = scores[e];
      sum += scores[e];
    }
    const float denom = sum + 1e-20f;
    for (int64_t j = 0; j < a.top_k; ++j) {
      float v = a.norm_topk_prob ? w[j] / denom : w[j];
      w[j] = v * a.routed_scaling_factor;
    }
  }
}

constexpr int kGroupThreads = 256;
constexpr int kGroupWarps = kGroupThreads / 32;

// One block per expert (grid-strided). Walks ids in chunks of kGroupThreads in order; a warp ballot and the
// warps' totals give each match its rank among the expert's earlier matches. kPlace = false only counts.
template <bool kPlace>
__global__ void __launch_bounds__(kGroupThreads) GroupKernel(const int64_t* ids, int64_t n, int64_t num_experts,
                                                             int64_t* counts, const int64_t* offsets, int64_t* order) {
  __shared__ int warp_total[kGroupWarps];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int64_t e = blockIdx.x; e < num_experts; e += gridDim.x) {
    int64_t running = 0;
    for (int64_t base = 0; base < n; base += kGroupThreads) {
      const int64_t i = base + threadIdx.x;
      const bool match = i < n && ids[i] == e;
      const unsigned ballot = __ballot_sync(0xffffffffu, match);
      __syncthreads();  // warp_total of the previous chunk has been read by every thread
      if (lane == 0) warp_total[warp] = __popc(ballot);
      __syncthreads();
      int64_t before = 0, chunk = 0;
      for (int w = 0; w < kGroupWarps; ++w) {
        if (w < warp) before += warp_total[w];
        chunk += warp_total[w];
      }
      if (kPlace && match) {
        const int64_t rank = running + before + __popc(ballot & ((1u << lane) - 1u));
        order[offsets[e] + rank] = i;
      }
      running += chunk;
    }
    if (!kPlace && threadIdx.x == 0) counts[e] = running;
  }
}

__global__ void ExclusiveScan(const int64_t* counts, int64_t n, int64_t* offsets) {
  if (blockIdx.x != 0 || threadIdx.x != 0) return;
  int64_t s = 0;
  for (int64_t i = 0; i < n; ++i) {
    offsets[i] = s;
    s += counts[i];
  }
  offsets[n] = s;
}

unsigned Grid(int64_t items) {
  return static_cast<unsigned>(items < 65536 ? items : 65536);
}

}  // namespace

cudaError_t MoeRoute(const MoeRouteArgs& a, cudaStream_t stream) {
  if (a.num_tokens < 0 || a.num_experts <= 0 || a.num_experts > kMoeMaxExperts || a.top_k <= 0 ||
      a.top_k > a.num_experts) {
    return cudaErrorInvalidValue;
  }
  if (a.select != MoeSelectKind::kGreedy) {
    if (a.n_group <= 0 || a.num_experts % a.n_group != 0 || a.topk_group <= 0 || a.topk_group > a.n_group ||
        a.top_k > a.topk_group * (a.num_experts / a.n_group)) {
      return cudaErrorInvalidValue;
    }
    if (a.select == MoeSelectKind::kNoauxTc && a.num_experts / a.n_group < 2) return cudaErrorInvalidValue;
  }
  if (a.num_tokens == 0) return cudaSuccess;
  const int64_t groups = a.select == MoeSelectKind::kGreedy ? 1 : a.n_group;
  const size_t smem = sizeof(float) * static_cast<size_t>(2 * a.num_experts + groups) +
                      static_cast<size_t>(a.num_experts > groups ? a.num_experts : groups);
  MoeRouteArgs args = a;
  args.n_group = groups;
  MoeRouteKernel<<<Grid(a.num_tokens), kThreads, smem, stream>>>(args);
  return cudaGetLastError();
}

cudaError_t GroupByExpert(const int64_t* ids, int64_t num_entries, int64_t num_experts, int64_t* counts,
                          int64_t* offsets, int64_t* order, cudaStream_t stream) {
  if (num_entries < 0 || num_experts <= 0) return cudaErrorInvalidValue;
  const unsigned grid = Grid(num_experts);
  GroupKernel<false><<<grid, kGroupThreads, 0, stream>>>(ids, num_entries, num_experts, counts, nullptr, nullptr);
  if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  ExclusiveScan<<<1, 1, 0, stream>>>(counts, num_experts, offsets);
  if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  if (num_entries == 0) return cudaSuccess;
  GroupKernel<true><<<grid, kGroupThreads, 0, stream>>>(ids, num_entries, num_experts, counts, offsets, order);
  return cudaGetLastError();
}

}  // namespace inferd::kernels
