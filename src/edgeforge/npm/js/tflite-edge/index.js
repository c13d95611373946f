'use strict';
// tflite-edge for Node.js: TensorFlow Lite's C API through koffi, with the library from the
// @tflite-edge/<platform> package npm installed for this machine (or $TFLITE_EDGE_LIBRARY).

const { Interpreter, SignatureRunner, TfLiteError } = require('./interpreter');
const { Delegate, DelegateLoadError, findPlugin, installedPlugins, loadDelegate, registerPlugin } = require('./delegates');
const { LibraryError, TfLiteCppError, loadLibrary } = require('./capi');
const { LIBRARY_ENV, PlatformError, currentMachine, findLibrary, platformFor, TABLE } = require('./platform');

/** {path, source, version, platform, shim} of the TFLite library (loads it); shim: the
 *  exception-safe shim's path, or null (a C++ exception inside TFLite then ends the process). */
function libraryInfo() {
  const lib = loadLibrary();
  return { path: lib.path, source: lib.source, version: lib.version, platform: lib.platform ? lib.platform.name : null, shim: lib.shim };
}

module.exports = {
  Interpreter, SignatureRunner, Delegate, loadDelegate, registerPlugin, findPlugin, installedPlugins,
  libraryInfo, findLibrary, platformFor, currentMachine, LIBRARY_ENV,
  TfLiteError, TfLiteCppError, DelegateLoadError, LibraryError, PlatformError,
  version: TABLE.version, platforms: TABLE.platforms,
};
