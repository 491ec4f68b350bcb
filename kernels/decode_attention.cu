// One decode step's attention for a batch of sequences with one new token each, straight on the KV cache
// [slots, kv_heads, capacity, D]: no per-layer gather of each sequence's keys, no mask, no per-head copies.
//
// decode_qkv: the packed q/k/v projection row of each sequence → per-head RMSNorm (Qwen3), NeoX RoPE, the key and
//   value written at (slot, position), the query out. One warp per (sequence, head); the norm sums in the order of
//   rms_norm.cu's warp kernel and the rotation rounds like rotary.cu, so the values equal the eager path's bit for bit.
// decode_attention: softmax(q·Kᵀ/√D)·V over positions 0..position of each sequence, the query heads that share a
//   key/value head in one block (grouped-query attention reads each key once). Positions are split into chunks of
//   kChunk; every chunk's partial (max, sum, weighted values) goes to a workspace and a second kernel combines them
//   in chunk order. The chunk size is fixed, so a sequence's result does not depend on the batch or span it ran in.
#include "mlnode_cuda.cuh"

namespace {

constexpr int kWarp = 32;
constexpr int kWarps = 4;
constexpr int kChunk = kWarps * kWarp;  // positions per block: one per lane
constexpr int kQkvWarps = 8;
constexpr int kLoads = 8;  // value loads in flight per lane
constexpr int kLanesPerKey = 4;

template <typename T>
__global__ void decode_qkv(const T* qkv, const T* q_norm, const T* k_norm, float eps, const T* cos, const T* sin, T* k_cache,
                           T* v_cache, const int64_t* slots, const int64_t* positions, T* q_out, int batch, int heads,
                           int kv_heads, int dim, long long capacity) {
  extern __shared__ float rows[];
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  const int per_token = heads + 2 * kv_heads;
  const long long item = (long long)blockIdx.x * kQkvWarps + warp;
  if (item >= (long long)batch * per_token) return;
  const int b = (int)(item / per_token), j = (int)(item % per_token);
  const T* x = qkv + item * dim;
  const long long slot = slots[b], position = positions[b];
  if (j >= heads + kv_heads) {
    T* v = v_cache + ((slot * kv_heads + (j - heads - kv_heads)) * capacity + position) * dim;
    for (int i = lane; i < dim; i += kWarp) v[i] = x[i];
    return;
  }
  float* row = rows + warp * dim;
  const T* w = j < heads ? q_norm : k_norm;
  if (w != nullptr) {
    float sum = 0.f;
    for (int i = lane; i < dim; i += kWarp) {
      const float v = mlnode::load_float(x, i);
      sum = fmaf(v, v, sum);
    }
    const float inv_rms = rsqrtf(mlnode::warp_sum(sum) / dim + eps);
    for (int i = lane; i < dim; i += kWarp) {
      const T normed = mlnode::from_float<T>(mlnode::load_float(x, i) * inv_rms);
      row[i] = mlnode::load_float(&normed, 0);
      const T scaled = mlnode::from_float<T>(mlnode::load_float(w, i) * row[i]);
      row[i] = mlnode::load_float(&scaled, 0);
    }
  } else {
    for (int i = lane; i < dim; i += kWarp) row[i] = mlnode::load_float(x, i);
  }
  __syncwarp();
  T* out = j < heads ? q_out + ((long long)b * heads + j) * dim : k_cache + ((slot * kv_heads + (j - heads)) * capacity + position) * dim;
  const T* c = cos + (long long)b * dim;
  const T* s = sin + (long long)b * dim;
  const int half = dim / 2;
  for (int i = lane; i < dim; i += kWarp) {
    const float partner = row[i < half ? i + half : i - half];
    const T x_cos = mlnode::from_float<T>(__fmul_rn(row[i], mlnode::load_float(c, i)));
    const T rot_sin = mlnode::from_float<T>(__fmul_rn(i < half ? -partner : partner, mlnode::load_float(s, i)));
    out[i] = mlnode::from_float<T>(__fadd_rn(mlnode::load_float(&x_cos, 0), mlnode::load_float(&rot_sin, 0)));
  }
}

// One block per (chunk, kv head, sequence); kGroup ≥ the query heads per kv head, kPerLane ≥ D / 32.
// Each warp scores 32 positions for every query head of the group, one position per lane, then weights their values,
// lane i accumulating elements i, i + 32, …; the warps' partials are merged in warp order.
// partial: [B, H, chunks, 2 + D] floats (max, sum, weighted values) when the span has several chunks;
// with one chunk the block writes the normalised output itself.
template <typename T, int kGroup, int kPerLane>
__global__ void __launch_bounds__(kWarps * kWarp) decode_attention(const T* q, const T* k_cache, const T* v_cache, const int64_t* slots,
                                                                     const int64_t* positions, T* out, float* partial, int heads,
                                                                     int kv_heads, int dim, long long capacity, int chunks, float scale) {
  constexpr int kVec = mlnode::kPerVector<T>;
  extern __shared__ float shared[];
  float* qs = shared;                              // [group][dim]
  float* warp_ml = qs + kGroup * dim;              // [warps][group][2]
  float* warp_acc = warp_ml + kWarps * kGroup * 2;  // [warps][group][dim], then each warp's scores [group][32]
  const int chunk = blockIdx.x, g = blockIdx.y, b = blockIdx.z;
  const int group = heads / kv_heads;
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  const long long slot = slots[b], last = positions[b];
  const long long head0 = (long long)b * heads + (long long)g * group;

  for (int i = threadIdx.x; i < group * dim; i += blockDim.x) qs[i] = mlnode::load_float(q + head0 * dim, i);
  __syncthreads();

  const long long base = (slot * kv_heads + g) * capacity * dim;
  const long long first = (long long)chunk * kChunk + warp * kWarp;
  const long long t = first + lane;
  // Scores: kLanesPerKey lanes share each key, lane j of a key summing its vectors j, j + kLanesPerKey, …, so one load
  // instruction reads whole lines of kKeysPerStep keys (a lane per key would touch 32 lines per load and stall the L1);
  // the lanes' partial sums meet in a fixed butterfly and land in the warp's row of scores, one position per lane.
  constexpr int kKeysPerStep = kWarp / kLanesPerKey;
  constexpr int kMaxVectorsPerLane = kWarps * kWarp / kVec / kLanesPerKey;  // head dim ≤ kWarps·kWarp
  float* scores = warp_acc + kWarps * kGroup * dim + warp * kGroup * kWarp;  // [group][32] of this warp
  const int part = lane % kLanesPerKey, key = lane / kLanesPerKey;
  const int vectors = dim / kVec;
#pragma unroll 2
  for (int step = 0; step < kWarp / kKeysPerStep; step++) {
    const long long tk = first + step * kKeysPerStep + key;
    float dot[kGroup];
#pragma unroll
    for (int h = 0; h < kGroup; h++) dot[h] = 0.f;
    if (tk <= last) {
      const uint4* k = reinterpret_cast<const uint4*>(k_cache + base + tk * dim);
      uint4 raw[kMaxVectorsPerLane];
#pragma unroll
      for (int j = 0; j < kMaxVectorsPerLane; j++)
        if (part + j * kLanesPerKey < vectors) raw[j] = k[part + j * kLanesPerKey];
#pragma unroll
      for (int j = 0; j < kMaxVectorsPerLane; j++) {
        const int v = part + j * kLanesPerKey;
        if (v >= vectors) break;
        float x[kVec];
        mlnode::unpack<T>(raw[j], x);
#pragma unroll
        for (int h = 0; h < kGroup; h++)
          if (h < group)
#pragma unroll
            for (int e = 0; e < kVec; e++) dot[h] = fmaf(qs[h * dim + v * kVec + e], x[e], dot[h]);
      }
    }
#pragma unroll
    for (int h = 0; h < kGroup; h++) {
      for (int offset = kLanesPerKey / 2; offset > 0; offset /= 2) dot[h] = __fadd_rn(dot[h], __shfl_xor_sync(0xffffffffu, dot[h], offset));
      if (h < group && part == 0) scores[h * kWarp + step * kKeysPerStep + key] = dot[h];
    }
  }
  __syncwarp();
  float score[kGroup];
#pragma unroll
  for (int h = 0; h < kGroup; h++) score[h] = h < group ? scores[h * kWarp + lane] : 0.f;
  float max[kGroup], p[kGroup], sum[kGroup], acc[kGroup][kPerLane];
#pragma unroll
  for (int h = 0; h < kGroup; h++) {
    const float s = t <= last ? score[h] * scale : -INFINITY;
    float m = s;
    for (int offset = 16; offset > 0; offset /= 2) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, offset));
    max[h] = m;
    p[h] = m == -INFINITY ? 0.f : expf(s - m);
    sum[h] = mlnode::warp_sum(p[h]);
#pragma unroll
    for (int r = 0; r < kPerLane; r++) acc[h][r] = 0.f;
  }
  const long long remaining = last + 1 - first;
  const int valid = remaining < kWarp ? (int)remaining : kWarp;
  for (int u0 = 0; u0 < valid; u0 += kLoads) {
    float value[kLoads][kPerLane];
#pragma unroll
    for (int j = 0; j < kLoads; j++) {
      const T* v = v_cache + base + (first + u0 + j) * dim;
#pragma unroll
      for (int r = 0; r < kPerLane; r++)
        value[j][r] = u0 + j < valid && lane + r * kWarp < dim ? mlnode::load_float(v, lane + r * kWarp) : 0.f;
    }
#pragma unroll
    for (int j = 0; j < kLoads; j++) {
      if (u0 + j >= valid) break;  // warp-uniform
#pragma unroll
      for (int h = 0; h < kGroup; h++) {
        const float ph = __shfl_sync(0xffffffffu, p[h], u0 + j);
#pragma unroll
        for (int r = 0; r < kPerLane; r++) acc[h][r] = fmaf(ph, value[j][r], acc[h][r]);
      }
    }
  }
#pragma unroll
  for (int h = 0; h < kGroup; h++) {
    if (h >= group) break;
    if (lane == 0) {
      warp_ml[(warp * kGroup + h) * 2] = max[h];
      warp_ml[(warp * kGroup + h) * 2 + 1] = sum[h];
    }
#pragma unroll
    for (int r = 0; r < kPerLane; r++)
      if (lane + r * kWarp < dim) warp_acc[(warp * kGroup + h) * dim + lane + r * kWarp] = acc[h][r];
  }
  __syncthreads();

  // Merge the warps: thread i owns element i of each head (blockDim ≥ dim is checked by the launcher).
  for (int h = 0; h < group; h++) {
    float m = -INFINITY;
    for (int w = 0; w < kWarps; w++) m = fmaxf(m, warp_ml[(w * kGroup + h) * 2]);
    float l = 0.f, a = 0.f;
    for (int w = 0; w < kWarps; w++) {
      const float wm = warp_ml[(w * kGroup + h) * 2];
      if (wm == -INFINITY) continue;
      const float f = expf(wm - m);
      l = fmaf(warp_ml[(w * kGroup + h) * 2 + 1], f, l);
      if (threadIdx.x < dim) a = fmaf(warp_acc[(w * kGroup + h) * dim + threadIdx.x], f, a);
    }
    if (chunks == 1) {
      if (threadIdx.x < dim) out[(head0 + h) * dim + threadIdx.x] = mlnode::from_float<T>(a / l);
    } else {
      float* part = partial + ((head0 + h) * chunks + chunk) * (2 + dim);
      if (threadIdx.x == 0) {
        part[0] = m;
        part[1] = l;
      }
      if (threadIdx.x < dim) part[2 + threadIdx.x] = a;
    }
  }
}

// One block per (sequence, head): the chunks' partials merged in chunk order.
template <typename T>
__global__ void decode_attention_combine(const float* partial, T* out, int chunks, int dim) {
  const long long head = blockIdx.x;
  const float* part = partial + head * chunks * (2 + dim);
  float m = -INFINITY;
  for (int c = 0; c < chunks; c++) m = fmaxf(m, part[c * (2 + dim)]);
  for (int i = threadIdx.x; i < dim; i += blockDim.x) {
    float l = 0.f, a = 0.f;
    for (int c = 0; c < chunks; c++) {
      const float cm = part[c * (2 + dim)];
      if (cm == -INFINITY) continue;
      const float f = expf(cm - m);
      l = fmaf(part[c * (2 + dim) + 1], f, l);
      a = fmaf(part[c * (2 + dim) + 2 + i], f, a);
    }
    out[head * dim + i] = mlnode::from_float<T>(a / l);
  }
}

long long chunk_count(long long span) { return (span + kChunk - 1) / kChunk; }

template <typename T, int kGroup, int kPerLane>
void launch_attention(const void* q, const void* k_cache, const void* v_cache, const int64_t* slots, const int64_t* positions, void* out,
                      float* partial, int batch, int heads, int kv_heads, int dim, long long capacity, int chunks, float scale,
                      cudaStream_t s) {
  const size_t shared = sizeof(float) * (kGroup * dim + kWarps * kGroup * (2 + dim) + kWarps * kGroup * kWarp);
  const dim3 grid(chunks, kv_heads, batch);
  auto kernel = decode_attention<T, kGroup, kPerLane>;
  if (shared > 48 * 1024) cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shared);
  kernel<<<grid, kWarps * kWarp, shared, s>>>(static_cast<const T*>(q), static_cast<const T*>(k_cache), static_cast<const T*>(v_cache), slots,
                                              positions, static_cast<T*>(out), partial, heads, kv_heads, dim, capacity, chunks, scale);
}

template <typename T, int kGroup>
mlnode_status dispatch_lanes(int per_lane, const void* q, const void* k_cache, const void* v_cache, const int64_t* slots,
                             const int64_t* positions, void* out, float* partial, int batch, int heads, int kv_heads, int dim,
                             long long capacity, int chunks, float scale, cudaStream_t s) {
  switch (per_lane) {
    case 1: launch_attention<T, kGroup, 1>(q, k_cache, v_cache, slots, positions, out, partial, batch, heads, kv_heads, dim, capacity, chunks, scale, s); break;
    case 2: launch_attention<T, kGroup, 2>(q, k_cache, v_cache, slots, positions, out, partial, batch, heads, kv_heads, dim, capacity, chunks, scale, s); break;
    default: launch_attention<T, kGroup, 4>(q, k_cache, v_cache, slots, positions, out, partial, batch, heads, kv_heads, dim, capacity, chunks, scale, s); break;
  }
  return mlnode::check_launch("decode_attention");
}

}  // namespace

MLNODE_API mlnode_status mlnode_decode_qkv(const void* qkv, const void* q_norm, const void* k_norm, float eps, const void* cos,
                                           const void* sin, void* k_cache, void* v_cache, const int64_t* slots,
                                           const int64_t* positions, void* q_out, int32_t batch, int32_t heads, int32_t kv_heads,
                                           int32_t head_dim, int64_t capacity, int32_t dtype, void* stream) {
  if (qkv == nullptr || cos == nullptr || sin == nullptr || k_cache == nullptr || v_cache == nullptr || slots == nullptr ||
      positions == nullptr || q_out == nullptr || (q_norm == nullptr) != (k_norm == nullptr))
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "decode_qkv: null tensor pointer (q and k norms go together)");
  if (batch < 0 || heads <= 0 || kv_heads <= 0 || heads % kv_heads != 0 || head_dim <= 0 || head_dim % 2 != 0 || head_dim > 512 || capacity <= 0)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "decode_qkv: batch %d, heads %d, kv heads %d, head dim %d, capacity %lld", batch, heads,
                        kv_heads, head_dim, (long long)capacity);
  if (!(eps >= 0.f)) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "decode_qkv: eps %g", eps);
  if (batch == 0) return MLNODE_OK;
  auto s = static_cast<cudaStream_t>(stream);
  return mlnode::dispatch_float(static_cast<mlnode_dtype>(dtype), "decode_qkv", [&](auto zero) {
    using T = decltype(zero);
    const long long items = (long long)batch * (heads + 2 * kv_heads);
    decode_qkv<<<(unsigned)((items + kQkvWarps - 1) / kQkvWarps), kQkvWarps * kWarp, sizeof(float) * kQkvWarps * head_dim, s>>>(
        static_cast<const T*>(qkv), static_cast<const T*>(q_norm), static_cast<const T*>(k_norm), eps, static_cast<const T*>(cos),
        static_cast<const T*>(sin), static_cast<T*>(k_cache), static_cast<T*>(v_cache), slots, positions, static_cast<T*>(q_out), batch,
        heads, kv_heads, head_dim, capacity);
    return mlnode::check_launch("decode_qkv");
  });
}

MLNODE_API mlnode_status mlnode_decode_attention_workspace(int32_t batch, int32_t heads, int32_t head_dim, int64_t span, int64_t* floats) {
  if (floats == nullptr || batch < 0 || heads <= 0 || head_dim <= 0 || span <= 0)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "decode_attention_workspace: batch %d, heads %d, head dim %d, span %lld", batch, heads,
                        head_dim, (long long)span);
  const long long chunks = chunk_count(span);
  *floats = chunks == 1 ? 0 : (long long)batch * heads * chunks * (2 + head_dim);
  return MLNODE_OK;
}

MLNODE_API mlnode_status mlnode_decode_attention(const void* q, const void* k_cache, const void* v_cache, const int64_t* slots,
                                                 const int64_t* positions, void* out, float* workspace, int32_t batch, int32_t heads,
                                                 int32_t kv_heads, int32_t head_dim, int64_t capacity, int64_t span, float scale,
                                                 int32_t dtype, void* stream) {
  if (q == nullptr || k_cache == nullptr || v_cache == nullptr || slots == nullptr || positions == nullptr || out == nullptr)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "decode_attention: null tensor pointer");
  const int group = kv_heads > 0 ? heads / kv_heads : 0;
  if (batch < 0 || kv_heads <= 0 || heads % kv_heads != 0 || group > 16 || head_dim <= 0 || head_dim > kWarps * kWarp || span <= 0 ||
      span > capacity)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "decode_attention: batch %d, heads %d, kv heads %d, head dim %d, span %lld, capacity %lld",
                        batch, heads, kv_heads, head_dim, (long long)span, (long long)capacity);
  const long long chunks = chunk_count(span);
  if (chunks > 1 && workspace == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "decode_attention: a span of %lld needs a workspace", (long long)span);
  if (chunks > 65535) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "decode_attention: span %lld is too long", (long long)span);
  if (batch == 0) return MLNODE_OK;
  auto s = static_cast<cudaStream_t>(stream);
  const int per_lane = (head_dim + kWarp - 1) / kWarp;
  return mlnode::dispatch_float(static_cast<mlnode_dtype>(dtype), "decode_attention", [&](auto zero) {
    using T = decltype(zero);
    if (head_dim % mlnode::kPerVector<T> != 0)
      return mlnode::fail(MLNODE_UNSUPPORTED, "decode_attention: head dim %d is not a multiple of %d", head_dim, mlnode::kPerVector<T>);
    mlnode_status status;
    if (group <= 4)
      status = dispatch_lanes<T, 4>(per_lane, q, k_cache, v_cache, slots, positions, out, workspace, batch, heads, kv_heads, head_dim, capacity, (int)chunks, scale, s);
    else if (group <= 8)
      status = dispatch_lanes<T, 8>(per_lane, q, k_cache, v_cache, slots, positions, out, workspace, batch, heads, kv_heads, head_dim, capacity, (int)chunks, scale, s);
    else
      status = dispatch_lanes<T, 16>(per_lane, q, k_cache, v_cache, slots, positions, out, workspace, batch, heads, kv_heads, head_dim, capacity, (int)chunks, scale, s);
    if (status != MLNODE_OK || chunks == 1) return status;
    decode_attention_combine<<<(unsigned)((long long)batch * heads), 128, 0, s>>>(workspace, static_cast<T*>(out), (int)chunks, head_dim);
    return mlnode::check_launch("decode_attention_combine");
  });
}
