'use strict';
// External delegates (TFLite's plugin ABI, external_delegate_interface.h) and delegate
// plugins: npm packages that make a delegate loadable by name.
//
// A plugin package says so in its package.json, "tfliteEdge": {"delegate": "<name>",
// "aliases": [...]}, and its main module exports
//   { name, path(platform, runtime), serializeOptions(options, runtime) }
// path() gives the delegate library for the running platform ("linux-arm64", ...);
// serializeOptions() checks the user's options and returns the key/value strings handed to
// tflite_plugin_create_delegate. `runtime` is {version, library} of the TFLite runtime.
// loadDelegate(name) finds installed plugins in the node_modules folders Node would search
// from the working directory and from this package; registerPlugin() adds one by hand.

const fs = require('fs');
const path = require('path');
const { koffi, loadLibrary, loadPinned } = require('./capi');
const { currentMachine, describe, platformFor } = require('./platform');

const ReportError = koffi.proto('void TfLiteEdgeReportError(const char *message)');

class DelegateLoadError extends Error {
  constructor(message, cause) {
    super(message, cause ? { cause } : undefined);
    this.name = 'DelegateLoadError';
  }
}

const registered = new Map();

function registerPlugin(plugin) {
  if (!plugin || typeof plugin.name !== 'string' || typeof plugin.path !== 'function') {
    throw new TypeError('registerPlugin: a plugin is {name, path(platform), serializeOptions(options)}');
  }
  registered.set(plugin.name, { name: plugin.name, aliases: plugin.aliases || [], package: null, load: () => plugin });
}

function nodeModulesDirs() {
  const dirs = [];
  for (const start of [process.cwd(), __dirname]) {
    for (let d = path.resolve(start); ; d = path.dirname(d)) {
      dirs.push(path.basename(d) === 'node_modules' ? d : path.join(d, 'node_modules'));
      if (path.dirname(d) === d) break;
    }
  }
  return [...new Set(dirs)].filter((d) => fs.existsSync(d));
}

function readManifest(dir) {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  } catch (err) {
    return null;
  }
}

/** Every installed delegate plugin: [{name, aliases, package, dir}] (nearest first). */
function installedPlugins() {
  const found = new Map(registered);
  for (const root of nodeModulesDirs()) {
    for (const entry of fs.readdirSync(root)) {
      const dirs = entry.startsWith('@')
        ? fs.readdirSync(path.join(root, entry)).map((e) => path.join(root, entry, e))
        : [path.join(root, entry)];
      for (const dir of dirs) {
        const manifest = readManifest(dir);
        const decl = manifest && manifest.tfliteEdge;
        if (!decl || typeof decl.delegate !== 'string' || found.has(decl.delegate)) continue;
        found.set(decl.delegate, { name: decl.delegate, aliases: decl.aliases || [], package: manifest.name, dir, load: () => require(dir) });
      }
    }
  }
  return [...found.values()];
}

function findPlugin(name) {
  return installedPlugins().find((p) => p.name === name || p.aliases.includes(name)) || null;
}

class Delegate {
  constructor(pointer, destroy, source) {
    this.pointer = pointer;
    this._destroy = destroy;
    this.source = source;
  }
  /** Destroy the delegate; only after every interpreter using it is closed. */
  close() {
    if (this.pointer) this._destroy(this.pointer);
    this.pointer = null;
  }
  toString() { return `<Delegate from ${this.source}>`; }
}

function failed(what, detail, cause) {
  return new DelegateLoadError(`Failed to load delegate from ${what}${detail ? `\n${detail}` : ''}`, cause);
}

/**
 * A delegate from a plugin's name ("edgetpu") or alias, or from a library path.
 * @param nameOrPath plugin name, alias, or path of an external-delegate library
 * @param options the plugin's options (or, for a path, key/value strings)
 */
function loadDelegate(nameOrPath, options = {}) {
  const plugin = findPlugin(nameOrPath);
  let library = nameOrPath;
  let strings = options;
  if (plugin !== null) {
    const runtime = loadLibrary();
    const info = { version: runtime.version, library: runtime.path };
    const entry = platformFor();
    try {
      const impl = plugin.load();
      if (entry === null) throw new Error(`no platform package name for this machine (${describe(currentMachine())})`);
      library = String(impl.path(entry.name, info));
      strings = impl.serializeOptions ? impl.serializeOptions(options, info) : options;
    } catch (err) {
      throw failed(nameOrPath, err.message, err);
    }
  }
  const keys = Object.keys(strings);
  const values = keys.map((k) => String(strings[k]));
  let lib;
  try {
    lib = loadPinned(library);
  } catch (err) {
    throw failed(library, err.message, err);
  }
  let create;
  let destroy;
  try {
    create = lib.func('void *tflite_plugin_create_delegate(const char **keys, const char **values, size_t n, TfLiteEdgeReportError *report)');
    destroy = lib.func('void tflite_plugin_destroy_delegate(void *delegate)');
  } catch (err) {
    throw failed(library, `${library} is not an external delegate (no tflite_plugin_create_delegate): ${err.message}`, err);
  }
  const reported = [];
  const pointer = create(keys, values, keys.length, (message) => { reported.push(message); });
  if (!pointer) throw failed(library, [...reported, 'tflite_plugin_create_delegate returned NULL'].join('\n'));
  return new Delegate(pointer, destroy, plugin ? `${plugin.name} (${library})` : library);
}

module.exports = { Delegate, DelegateLoadError, findPlugin, installedPlugins, loadDelegate, registerPlugin };
