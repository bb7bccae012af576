// Shared by the training scan (scan_cpu.cpp, the torch extension) and the eval mixer kernel
// (mixer_cpu.cpp, plain C ABI, no torch headers): constants and the vectorizable scalar math.
// One copy of each; everything sits in an anonymous namespace so the two shared libraries,
// loaded into one process and built with different flags, never resolve each other's copies.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace {

constexpr int64_t W = 16;   // channels per task = SIMD lanes
constexpr int64_t kMaxState = 256;

// vexp2's polynomial of 2^f on [-0.5, 0.5], highest degree first (the AVX-512 kernel's too).
constexpr float kExp2Poly[7] = {1.5403530393381606e-4f, 1.3333558146428443e-3f,
                                9.6181291076284772e-3f, 5.5504108664821580e-2f,
                                2.4022650695910071e-1f, 6.9314718055994531e-1f, 1.0f};

// The AVX2 kernel's degree-5 minimax polynomial of 2^f on [-0.5, 0.5] (relative error 3.3e-7,
// fitted for it): one FMA fewer than kExp2Poly; in a standalone kernel harness on a busy Zen 3
// VM, 21.1 against 22.3 ms a call (min of 8), within that VM's noise.
constexpr float kExp2Poly5[6] = {1.2943458277732134e-3f, 9.669600054621696e-3f,
                                 5.551628768444061e-2f, 2.4022245407104492e-1f,
                                 6.931464672088623e-1f, 1.0f};

// Degree 3, for callers whose results go on in bf16 (fast_eval under CPU bf16 autocast):
// 2^f ~ 1 + f q(f) on [-0.5, 0.5], exact at f = 0 so that decays near 1 (long memories) carry
// no steady bias; relative error 1.0e-4, 40x under bf16's 2^-8 (fitted for it, Lawson's
// minimax iteration).
constexpr float kExp2Poly3[4] = {5.500892177224159e-2f, 2.422109693288803e-1f,
                                 6.932829022407532e-1f, 1.0f};

// 2^x the compiler can vectorize (libm's exp2f is a scalar call). Round to nearest by the
// 1.5 * 2^23 trick, then a degree-6 Taylor polynomial of 2^f on [-0.5, 0.5] (relative error
// < 2e-7); exactly 0 below 2^-126 (no denormals), saturating at 2^127. The scan's decays are
// exp(dt A) = 2^(dt A2) with A2 = A log2(e) scaled once per task (measured against a Cephes
// natural-base exp inline: forward scan 10-13 % faster, backward 5-8 %).
inline float vexp2(float x) {
  const float xc = std::min(std::max(x, -127.0f), 127.0f);
  const float kf = xc + 12582912.0f;
  const float k = kf - 12582912.0f;
  const float f = xc - k;
  float p = kExp2Poly[0];
  for (int j = 1; j < 7; ++j) p = p * f + kExp2Poly[j];
  int32_t kb;
  std::memcpy(&kb, &kf, sizeof(kb));
  const int32_t bits = (kb - 0x4B400000 + 127) << 23;  // k + 127 in the exponent field
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

inline double vexp2(double x) { return std::exp2(x); }

// e^x for softplus and sigmoid.
inline float vexp(float x) { return vexp2(x * 1.44269504088896341f); }

inline double vexp(double x) { return std::exp(x); }

// log(1 + e) for e in [0, 1] via 2 atanh(e / (2 + e)); series error < 1e-8.
inline float vlog1p_unit(float e) {
  const float s = e / (2.0f + e);
  const float s2 = s * s;
  float p = 1.0f / 13.0f;
  p = p * s2 + 1.0f / 11.0f;
  p = p * s2 + 1.0f / 9.0f;
  p = p * s2 + 1.0f / 7.0f;
  p = p * s2 + 1.0f / 5.0f;
  p = p * s2 + 1.0f / 3.0f;
  p = p * s2 + 1.0f;
  return 2.0f * s * p;
}

inline double vlog1p_unit(double e) { return std::log1p(e); }

template <typename T>
inline T softplus_fn(T x) {
  return std::max(x, T(0)) + vlog1p_unit(vexp(-std::abs(x)));
}

template <typename T>
inline T sigmoid_fn(T x) {
  return T(1) / (T(1) + vexp(-x));
}

}  // namespace
