# The `layering` test: checks the module layering of src/CMakeLists.txt on the #include lines, which
# linking alone does not (every module compiles with all of src/ and include/ on its include path).
# A file of src/<module>/ may include the private headers of its own module and of the modules it
# links, directly or not, and the public headers (include/reslens/) those modules implement; a public
# header may include those its own module may. So `ops` ("knows shapes, not models") cannot include
# the model's config, and a cycle between modules cannot come back through a header.
#
#   cmake -DGRAPH=<build>/reslens_modules.cmake -DSRC=<repo>/src -DINCLUDE=<repo>/include -P ReslensCheckLayering.cmake
#
# GRAPH is written at configure time by src/CMakeLists.txt: RESLENS_MODULES and RESLENS_DEPS_<module>.
cmake_minimum_required(VERSION 3.25)
include(${GRAPH})

# The module that implements each public header (header-only ones sit at the lowest module that may
# use them). A new public header must be added here: the test fails on one it does not know.
set(_owner_error.h core)
set(_owner_tensor.h core)
set(_owner_rope.h core)
set(_owner_tokenizer.h tokenizer)
set(_owner_chat.h tokenizer)
set(_owner_token_names.h tokenizer)
set(_owner_config.h model)
set(_owner_model.h model)
set(_owner_weights.h model)
set(_owner_hooks.h forward)
set(_owner_forward_hooks.h forward)
set(_owner_cache.h forward)
set(_owner_run.h forward)
set(_owner_generate.h forward)
set(_owner_explain.h analysis)
set(_owner_explain_request.h analysis)
set(_owner_explain_target.h analysis)
set(_owner_report.h report)
set(_owner_diff.h report)   # issue 20: reslens diff (src/report/model_diff.cpp)
set(_owner_graph.h report)  # issue 20: reslens graph (src/report/circuit_graph.cpp)
set(_owner_experiment.h experiment)
set(_owner_reslens.h experiment)  # the umbrella

# The modules `module` may use: itself and everything it links, transitively.
function(_closure out module)
  set(seen "")
  set(todo ${module})
  while(todo)
    list(POP_FRONT todo cur)
    if(cur IN_LIST seen)
      continue()
    endif()
    list(APPEND seen ${cur})
    foreach(dep IN LISTS RESLENS_DEPS_${cur})
      if(dep MATCHES "^reslens_(.+)$" AND CMAKE_MATCH_1 IN_LIST RESLENS_MODULES)
        list(APPEND todo ${CMAKE_MATCH_1})
      endif()
    endforeach()
  endwhile()
  set(${out} ${seen} PARENT_SCOPE)
endfunction()

set(_errors "")
# Checks every #include "..." of `file` against the modules `module` may use.
function(_check file module)
  _closure(allowed ${module})
  file(STRINGS ${file} lines REGEX "^[ \t]*#[ \t]*include[ \t]*\"")
  foreach(line IN LISTS lines)
    string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*\"([^\"]+)\".*$" "\\1" inc "${line}")
    set(used "")
    if(inc MATCHES "^reslens/([^/]+)$")
      set(header ${CMAKE_MATCH_1})
      if(NOT DEFINED _owner_${header})
        string(APPEND _errors "${file}: includes ${inc}, which cmake/ReslensCheckLayering.cmake does not list\n")
        continue()
      endif()
      set(used ${_owner_${header}})
    elseif(inc MATCHES "^([a-z_]+)/" AND CMAKE_MATCH_1 IN_LIST RESLENS_MODULES)
      set(used ${CMAKE_MATCH_1})
    endif()
    if(used AND NOT used IN_LIST allowed)
      string(APPEND _errors "${file}: module ${module} includes ${inc} of module ${used}, which it does not link\n")
    endif()
  endforeach()
  set(_errors "${_errors}" PARENT_SCOPE)
endfunction()

foreach(module IN LISTS RESLENS_MODULES)
  file(GLOB_RECURSE files ${SRC}/${module}/*.h ${SRC}/${module}/*.cpp)
  foreach(f IN LISTS files)
    _check(${f} ${module})
  endforeach()
endforeach()
file(GLOB headers ${INCLUDE}/reslens/*.h)
foreach(f IN LISTS headers)
  get_filename_component(header ${f} NAME)
  if(NOT DEFINED _owner_${header})
    string(APPEND _errors "${f}: a public header that cmake/ReslensCheckLayering.cmake does not list\n")
    continue()
  endif()
  _check(${f} ${_owner_${header}})
endforeach()

if(_errors)
  message(FATAL_ERROR "module layering (src/CMakeLists.txt) broken:\n${_errors}")
endif()
list(LENGTH RESLENS_MODULES n)
message(STATUS "layering: ${n} modules, every #include within the modules each one links")
