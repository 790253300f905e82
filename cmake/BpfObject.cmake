# bpf_object(NAME SOURCES a.bpf.c [b.bpf.c...] [DEPENDS headers...])
#   each a.bpf.c -> a.bpf.o (clang -target bpf); the objects are linked into
#   NAME.bpf.o (bpftool gen object: maps declared `extern` in one source are
#   the same maps as in the other) and NAME.skel.h (bpftool gen skeleton),
#   exposed as the INTERFACE target NAME_skel whose include directory holds NAME.skel.h.
#
# The BPF side uses UAPI headers only (linux/*.h from linux-libc-dev, bpf/*.h from
# libbpf-dev): the programs read packet bytes, never kernel structs, so they need no
# vmlinux.h and no BTF of the build machine.
find_program(BPF_CLANG NAMES clang clang-16 clang-15 clang-14 REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)

execute_process(COMMAND ${CMAKE_C_COMPILER} -print-multiarch
                OUTPUT_VARIABLE BPF_MULTIARCH OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT BPF_MULTIARCH)
  set(BPF_MULTIARCH "${CMAKE_SYSTEM_PROCESSOR}-linux-gnu")
endif()

set(BPF_CFLAGS -g -O2 -target bpf -mcpu=v3 -Wall -Werror
    -I${PROJECT_SOURCE_DIR}/bpf/include -I/usr/include/${BPF_MULTIARCH})

function(bpf_object NAME)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPENDS" ${ARGN})
  set(obj ${CMAKE_CURRENT_BINARY_DIR}/${NAME}.bpf.o)
  set(skel_dir ${CMAKE_CURRENT_BINARY_DIR}/skel)
  set(skel ${skel_dir}/${NAME}.skel.h)
  file(MAKE_DIRECTORY ${skel_dir})
  set(parts)
  foreach(source ${ARG_SOURCES})
    get_filename_component(base ${source} NAME_WE)
    set(src ${CMAKE_CURRENT_SOURCE_DIR}/${source})
    set(part ${CMAKE_CURRENT_BINARY_DIR}/${base}.part.o)
    add_custom_command(
      OUTPUT ${part}
      COMMAND ${BPF_CLANG} ${BPF_CFLAGS} -c ${src} -o ${part}
      DEPENDS ${src} ${ARG_DEPENDS}
      COMMENT "BPF ${source}"
      VERBATIM)
    list(APPEND parts ${part})
  endforeach()
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${BPFTOOL} gen object ${obj} ${parts}
    DEPENDS ${parts}
    COMMENT "BPF link ${NAME}.bpf.o"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${NAME} > ${skel}
    DEPENDS ${obj}
    COMMENT "skeleton ${NAME}.skel.h"
    VERBATIM)
  add_custom_target(${NAME}_skel_gen DEPENDS ${skel})
  add_library(${NAME}_skel INTERFACE)
  add_dependencies(${NAME}_skel ${NAME}_skel_gen)
  target_include_directories(${NAME}_skel INTERFACE ${skel_dir})
  set_property(GLOBAL APPEND PROPERTY SIPXDP_BPF_OBJECTS ${obj})
endfunction()
