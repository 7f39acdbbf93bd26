# RESLENS_SANITIZE=address,undefined (or thread) instruments every target of the build.
if(RESLENS_SANITIZE)
  add_compile_options(-fsanitize=${RESLENS_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${RESLENS_SANITIZE})
endif()
# Fuzz builds instrument every target for coverage; only the fuzz executables link libFuzzer's main.
if(RESLENS_BUILD_FUZZERS)
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
