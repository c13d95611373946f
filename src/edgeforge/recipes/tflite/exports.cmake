# Windows and macOS: the library exports TFLite's C API and nothing else.
#
# ELF: TF's c/CMakeLists.txt links with a version script (global: TfLite*). PE and Mach-O
# have none: a DLL exports what is __declspec(dllexport) (with nothing marked, lld's MinGW mode
# exports every symbol: 7,695 beside the C API here, abseil, libc++, _CRT_INIT, ...), and a
# dylib what has default visibility (zig's Mach-O linker ignores TF's -exported_symbols_list:
# 3,075 beside the C API). TFL_CAPI_EXPORT is dllexport / visibility("default") only without
# TFL_STATIC_LIBRARY_BUILD, which TFLite's library target gives itself and everything that
# links it (PUBLIC: tensorflowlite_c too) whenever BUILD_SHARED_LIBS is off, as here (the
# C library is one shared library over a static TFLite): take it off. recipes/tflite.toml
# does the rest per format: TFL_COMPILE_LIBRARY for PE (dllexport, not dllimport, in TFLite's
# own C API files too), -fvisibility=hidden for Mach-O.
#
# Runs at the end of tensorflow/lite/c's top directory (cmake_language(DEFER)), when every
# target exists; nothing changes for other systems.
function(_tflite_edge_c_api_exports)
  foreach(_property COMPILE_OPTIONS INTERFACE_COMPILE_OPTIONS)
    get_target_property(_options tensorflow-lite ${_property})
    if(_options)
      list(REMOVE_ITEM _options "-DTFL_STATIC_LIBRARY_BUILD")
      set_target_properties(tensorflow-lite PROPERTIES ${_property} "${_options}")
    endif()
  endforeach()
endfunction()
if(WIN32 OR APPLE)
  cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL _tflite_edge_c_api_exports)
endif()
