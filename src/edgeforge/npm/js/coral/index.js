'use strict';
// @tflite-edge/coral: the Coral Edge TPU (libedgetpu) as a tflite-edge delegate plugin, with
// the Python plugin's (tflite-edge-coral) rules:
//  1. libedgetpu: $TFLITE_EDGE_CORAL_LIBRARY, else @tflite-edge/coral-<platform> (the same
//     binaries as the tflite-edge-coral-lib wheels, with their _build_info.json);
//  2. the TensorFlow-version check: libedgetpu compiles parts of TFLite into itself and runs
//     only with a runtime of the same TensorFlow major.minor; another one is refused naming
//     both versions (TFLITE_EDGE_CORAL_ALLOW_TF_MISMATCH=1 loads it anyway);
//  3. the device ("usb", "usb:0", "pci:0", ":1", or none) must be one edgetpu_list_devices()
//     reports; otherwise one clear error (cable, udev rules, plugdev group), never a crash.

const path = require('path');
const koffi = require('koffi');
const { platformFile } = require('tflite-edge/platform');
const { loadPinned } = require('tflite-edge/capi');
const table = require('./platforms.json');
const manifest = require('./package.json');

const LIBRARY_ENV = 'TFLITE_EDGE_CORAL_LIBRARY';
const ALLOW_MISMATCH_ENV = 'TFLITE_EDGE_CORAL_ALLOW_TF_MISMATCH';
const UDEV_RULES = '99-edgetpu-accelerator.rules';
const TYPE_NAMES = { 0: 'pci', 1: 'usb' };
const OPTION_NAMES = { device: 'device', performance: 'Performance', usbAlwaysDfu: 'Usb.AlwaysDfu', usbMaxBulkInQueueLength: 'Usb.MaxBulkInQueueLength' };
const PERFORMANCE = ['Low', 'Medium', 'High', 'Max'];

class CoralError extends Error {
  constructor(message) { super(message); this.name = this.constructor.name; }
}
class NoEdgeTpuError extends CoralError {}
class LibEdgeTpuError extends CoralError {}
class TFVersionMismatchError extends CoralError {
  constructor(message, libedgetpuTf, runtimeTf) {
    super(message);
    this.libedgetpuTf = libedgetpuTf;
    this.runtimeTf = runtimeTf;
  }
}

function majorMinor(version) {
  const m = /^\s*v?(\d+)\.(\d+)/.exec(version);
  if (!m) throw new Error(`not a TensorFlow version: ${JSON.stringify(version)}`);
  return `${m[1]}.${m[2]}`;
}

/** {path, source, tensorflow} of the libedgetpu for `platform` (not loaded). */
function findLibrary(platform) {
  const override = process.env[LIBRARY_ENV];
  if (override !== undefined) {
    if (!override || !require('fs').existsSync(override)) throw new LibEdgeTpuError(`${LIBRARY_ENV}=${JSON.stringify(override)}: no such file`);
    return { path: path.resolve(override), source: LIBRARY_ENV, tensorflow: null };
  }
  let file;
  try {
    file = platformFile(table, platform, manifest.name, platform, require.resolve);
  } catch (err) {
    throw new LibEdgeTpuError(`libedgetpu is not installed: ${err.message} Or set ${LIBRARY_ENV} to a libedgetpu.so.1.`);
  }
  const info = require(path.join(path.dirname(path.dirname(file)), 'package.json')).tfliteEdge.buildInfo || {};
  return { path: file, source: `${info.distribution || 'libedgetpu'} ${info.libedgetpu || ''} (${info.variant || 'unknown variant'})`, tensorflow: info.tensorflow || null };
}

function checkTfVersion(choice, runtime) {
  if (choice.tensorflow === null) {
    process.emitWarning(`${LIBRARY_ENV} is set: the TensorFlow version ${choice.path} was built for is unknown, so it is not checked against the runtime's (${runtime.version})`);
    return;
  }
  if (majorMinor(choice.tensorflow) === majorMinor(runtime.version)) return;
  const message = `TensorFlow version mismatch: libedgetpu (${choice.source}, ${choice.path}) was built for TensorFlow ` +
    `${choice.tensorflow}, but the TensorFlow Lite runtime (${runtime.library}) is TensorFlow ${runtime.version}.\n` +
    'libedgetpu only works with the TensorFlow version it was compiled against; with another one the delegate ' +
    'fails to load, the edgetpu-custom-op fails, or the process crashes. Either build libedgetpu for TensorFlow ' +
    `${majorMinor(runtime.version)} (\`edgeforge build libedgetpu-source\`, docs/coral.md) or use a runtime of ` +
    `TensorFlow ${majorMinor(choice.tensorflow)}. To load it anyway (at your own risk), set ${ALLOW_MISMATCH_ENV}=1.`;
  if (process.env[ALLOW_MISMATCH_ENV] === '1') {
    process.emitWarning(message);
    return;
  }
  throw new TFVersionMismatchError(message, choice.tensorflow, runtime.version);
}

const EdgeTpuDevice = koffi.struct('edgetpu_device', { type: 'int', path: 'const char *' });
const native = new Map();

function load(file) {
  if (!native.has(file)) {
    let lib;
    try {
      lib = loadPinned(file);
    } catch (err) {
      const hint = /libusb/.test(err.message) ? ' libedgetpu needs the system\'s libusb-1.0: `sudo apt-get install libusb-1.0-0`.' : '';
      throw new LibEdgeTpuError(`cannot load libedgetpu from ${file}: ${err.message}.${hint}`);
    }
    try {
      native.set(file, {
        list: lib.func('edgetpu_device *edgetpu_list_devices(_Out_ size_t *n)'),
        free: lib.func('void edgetpu_free_devices(edgetpu_device *devices)'),
        version: lib.func('const char *edgetpu_version()'),
      });
    } catch (err) {
      throw new LibEdgeTpuError(`${file} is not libedgetpu: it lacks the edgetpu_c.h functions (${err.message})`);
    }
  }
  return native.get(file);
}

/** [{type: 'usb'|'pci', path, index, name: 'usb:0'}] as edgetpu_list_devices() reports. */
function listDevicesOf(file) {
  const api = load(file);
  const count = [0];
  const array = api.list(count);
  if (!array) return [];
  try {
    const seen = {};
    return koffi.decode(array, EdgeTpuDevice, Number(count[0])).map((raw) => {
      const type = TYPE_NAMES[raw.type] || `type${raw.type}`;
      const index = seen[type] || 0;
      seen[type] = index + 1;
      return { type, path: raw.path || '', index, name: `${type}:${index}` };
    });
  } finally {
    api.free(array);
  }
}

function currentPlatform() {
  const entry = require('tflite-edge').platformFor();
  if (entry === null) throw new LibEdgeTpuError('no tflite-edge platform matches this machine');
  return entry.name;
}

/** The Edge TPUs the libedgetpu of this machine sees; [] when none. */
function listDevices(platform = currentPlatform()) {
  return listDevicesOf(findLibrary(platform).path);
}

function parseDevice(text) {
  const m = /^(usb|pci)?(?::(\d+))?$/.exec(String(text).trim());
  if (!m) {
    throw new CoralError(`invalid Edge TPU device ${JSON.stringify(text)}: use "usb" or "pci" (the first of that type), ` +
      '"usb:N" or "pci:N" (the N-th of that type, from 0), ":N" (the N-th of any type), or leave it out for any Edge TPU');
  }
  return { type: m[1] || null, index: m[2] === undefined ? null : Number(m[2]) };
}

function noDeviceHelp() {
  const rules = path.join(__dirname, UDEV_RULES);
  return 'Check:\n' +
    '  - USB Accelerator: the USB cable and port (plug it in directly, preferably a USB 3 port, with the cable that came with it); `lsusb` should list 1a6e:089a or 18d1:9302.\n' +
    `  - udev rules: without them only root may open the device. Install the rules this package ships:\n    sudo cp ${rules} /etc/udev/rules.d/${UDEV_RULES}\n    sudo udevadm control --reload-rules && sudo udevadm trigger\n` +
    '  - the plugdev group: your user must be in it (`sudo usermod -aG plugdev "$USER"`, `id -nG` lists your groups); log out and back in after adding it.\n' +
    '  - M.2 / Mini PCIe card: the gasket/apex kernel driver must be loaded (`ls /dev/apex_0`).';
}

function checkDevice(device, file) {
  const spec = parseDevice(device);
  const devices = listDevicesOf(file);
  const pool = devices.filter((d) => spec.type === null || d.type === spec.type);
  const chosen = spec.index === null ? pool[0] : pool[spec.index];
  if (chosen) return chosen;
  const wanted = device ? `device ${JSON.stringify(device)}` : 'any device';
  if (!devices.length) throw new NoEdgeTpuError(`No Edge TPU found (${wanted}): libedgetpu (${file}) sees no USB or PCIe Edge TPU.\n${noDeviceHelp()}`);
  throw new NoEdgeTpuError(`No Edge TPU matches ${wanted}: libedgetpu sees ${devices.map((d) => `${d.name} (${d.path})`).join(', ')}. ` +
    'Device strings: "usb", "pci", "usb:N", "pci:N" (N counts from 0 per type), ":N" (any type).');
}

function optionValue(name, value) {
  if (name === 'Performance') {
    const level = PERFORMANCE.find((l) => l.toLowerCase() === String(value).toLowerCase());
    if (!level) throw new CoralError(`performance must be one of ${PERFORMANCE.join(', ')}, got ${JSON.stringify(value)}`);
    return level;
  }
  if (name === 'Usb.AlwaysDfu') {
    if (![true, false, 'true', 'false', '1', '0', 1, 0].includes(value)) throw new CoralError(`usbAlwaysDfu must be true or false, got ${JSON.stringify(value)}`);
    return [true, 'true', '1', 1].includes(value) ? 'True' : 'False';
  }
  if (name === 'Usb.MaxBulkInQueueLength') {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0 || n > 255) throw new CoralError(`usbMaxBulkInQueueLength must be 0..255, got ${JSON.stringify(value)}`);
    return String(n);
  }
  return value === null || value === undefined ? '' : String(value);
}

let chosen = null; // the library path() picked, for serializeOptions()

module.exports = {
  name: manifest.tfliteEdge.delegate,
  aliases: manifest.tfliteEdge.aliases || [],
  /** libedgetpu for `platform`, after the TensorFlow-version check against `runtime`. */
  path(platform, runtime) {
    const choice = findLibrary(platform);
    checkTfVersion(choice, runtime);
    chosen = choice.path;
    return choice.path;
  },
  /** Validate the options and check that the requested Edge TPU exists. */
  serializeOptions(options = {}) {
    const strings = {};
    for (const [key, value] of Object.entries(options)) {
      const name = OPTION_NAMES[key] || Object.values(OPTION_NAMES).find((v) => v === key);
      if (!name) throw new CoralError(`unknown Edge TPU option ${JSON.stringify(key)}; known: ${Object.keys(OPTION_NAMES).join(', ')}`);
      strings[name] = optionValue(name, value);
    }
    checkDevice(strings.device || '', chosen || findLibrary(currentPlatform()).path);
    return strings;
  },
  listDevices,
  parseDevice,
  version(platform = currentPlatform()) { return load(findLibrary(platform).path).version(); },
  udevRulesPath: () => path.join(__dirname, UDEV_RULES),
  CoralError, NoEdgeTpuError, LibEdgeTpuError, TFVersionMismatchError, LIBRARY_ENV, ALLOW_MISMATCH_ENV,
};
