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
endfunction()
