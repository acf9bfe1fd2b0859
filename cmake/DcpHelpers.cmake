# dcp_add_module(<name> SRCS ... [DEPS ...] [PRIVATE_DEPS ...])
# One static library per engine module: target dcp_<name>, alias dcp::<name>.
# Engine headers are included from the repository root ("engine/codec/...").
function(dcp_add_module name)
  cmake_parse_arguments(M "" "" "SRCS;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(dcp_${name} STATIC ${M_SRCS})
  add_library(dcp::${name} ALIAS dcp_${name})
  target_include_directories(dcp_${name} PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}>)
  target_link_libraries(dcp_${name} PUBLIC ${M_DEPS} PRIVATE ${M_PRIVATE_DEPS})
  set_property(GLOBAL APPEND PROPERTY DCP_LIBRARY_TARGETS dcp_${name})
endfunction()
