# Windows: libtensorflowlite_c.dll exports TFLite's C API and nothing else. A DLL exports what
# is __declspec(dllexport); with nothing marked, lld's MinGW mode exports every symbol (7,000+
# here: abseil, libc++, _CRT_INIT, ...). TFL_CAPI_EXPORT is dllexport only without
# TFL_STATIC_LIBRARY_BUILD, which TFLite's library target gives itself and everything that
# links it (PUBLIC: tensorflowlite_c too) whenever BUILD_SHARED_LIBS is off, as here (the
# C library is one DLL over a static TFLite). Take it off on Windows (recipes/tflite.toml
# defines TFL_COMPILE_LIBRARY for PE: dllexport, not dllimport, for TFLite's own C API).
#
# Runs at the end of tensorflow/lite/c's top directory (cmake_language(DEFER)), when every
# target exists; nothing changes for other systems.
function(_tflite_edge_dll_exports)
  foreach(_property COMPILE_OPTIONS INTERFACE_COMPILE_OPTIONS)
    get_target_property(_options tensorflow-lite ${_property})
    if(_options)
      list(REMOVE_ITEM _options "-DTFL_STATIC_LIBRARY_BUILD")
      set_target_properties(tensorflow-lite PROPERTIES ${_property} "${_options}")
    endif()
  endforeach()
endfunction()
if(WIN32)
  cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL _tflite_edge_dll_exports)
endif()
