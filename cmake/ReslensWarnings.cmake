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
  # Results must not move with the compiler's choice to fuse multiply-adds.
  target_compile_options(${target} PRIVATE -ffp-contract=off)
endfunction()
