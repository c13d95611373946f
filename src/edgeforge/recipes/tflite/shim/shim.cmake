# The tflite_edge_shim target: libtflite_edge_shim.so, exception-safe wrappers over TFLite's
# C API (tflite_edge_shim.h). It needs no TFLite header or library: its caller hands it the
# C API's functions.
#
# recipes/tflite.toml names this file in CMAKE_PROJECT_tensorflow-lite-c_INCLUDE, which
# CMake includes right after the project() call of tensorflow/lite/c/CMakeLists.txt: the
# shim is a second target of TFLite's own build, with the same toolchain and flags, while
# TFLite's targets, their flags and build paths stay exactly as without it (so the compiler
# cache still hits). CMakeLists.txt beside it builds the shim on its own.
set(_shim_dir "${CMAKE_CURRENT_LIST_DIR}")
add_library(tflite_edge_shim SHARED "${_shim_dir}/tflite_edge_shim.cc")
set_target_properties(tflite_edge_shim PROPERTIES
  CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON
  CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
target_compile_options(tflite_edge_shim PRIVATE -ffunction-sections -fdata-sections)
target_compile_definitions(tflite_edge_shim PRIVATE TFLITE_EDGE_SHIM_BUILDING)
# Only tflite_edge_shim_* is exported, as the fixture's CMakeLists.txt does it per format.
# ELF: the version script (it also hides the static C++ runtime). Windows: the API is
# __declspec(dllexport) (tflite_edge_shim.h), a DLL's only exports then. macOS: hidden
# visibility (zig's Mach-O linker ignores -exported_symbols_list); -dead_strip is Mach-O's
# --gc-sections.
if(CMAKE_SYSTEM_NAME STREQUAL "Linux")
  target_link_options(tflite_edge_shim PRIVATE
    "-Wl,--version-script,${_shim_dir}/exports.lds" "-Wl,--gc-sections" "-Wl,--no-undefined")
elseif(APPLE)
  target_link_options(tflite_edge_shim PRIVATE "-Wl,-dead_strip")
endif()
