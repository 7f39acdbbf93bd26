# reslens_target_warnings(<target>): the project's warning set, applied to our own targets only so that
# third-party headers are never judged by it.
function(reslens_target_warnings target)
  set(common -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion -Wold-style-cast
             -Wnon-virtual-dtor -Woverloaded-virtual -Wdouble-promotion -Wformat=2
             -Wimplicit-fallthrough -Wcast-qual -Wundef)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    list(APPEND common -Wduplicated-cond -Wduplicated-branches -Wlogical-op)
    # GCC 12 reports impossible overlaps inside std::string's operator+ at -O2/-O3 (GCC bugs 105329,
    # 105651); the check is noise there until a compiler that fixes it.
    list(APPEND common -Wno-restrict)
  endif()
  if(RESLENS_WERROR)
    list(APPEND common -Werror)
  endif()
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:${common}>)
  # Results must not move with the compiler's choice to fuse multiply-adds. Neither compiler is off
  # by default for C++: g++ 12 fuses even under -std=c++20 (its ISO-mode default of off is for C
  # only), including the dequantizers' AVX-512 intrinsics, whose target enables FMA (43 fused pairs
  # in dequantize_avx512.cpp); clang 14 fuses `a * b - c` within an expression wherever FMA is
  # enabled (-march=native). The dequantizers must give ggml's unfused values on every path.
  target_compile_options(${target} PRIVATE -ffp-contract=off)
  # g++ 12's SLP vectorizer drops the float rounding of a double -> float -> double round trip when it
  # pairs two such conversions: in `ff = float(f), zf = float(z); a += double(ff) * double(ff);
  # b += double(zf) * double(zf)` the sums get the unrounded doubles (one cvtpd2ps for the stores, the
  # squares taken before it), at -O2 and -O3, in C as in C++. Whether it strikes depends on inlining
  # (a constant-propagated clone of the sketch's round_vector summed doubles, the function itself
  # floats), so results moved with unrelated code. Clang 14 keeps the roundings. Loop vectorization
  # stays on; tests/unit/core/float_rounding_test.cpp checks the build keeps them.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    target_compile_options(${target} PRIVATE -fno-tree-slp-vectorize)
  endif()
endfunction()
