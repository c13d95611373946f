'use strict';
// Which @tflite-edge/<platform> package serves this machine, and where its library is.
// platforms.json (written by `edgeforge npm` from edgeforge's targets) is the only table: one
// entry per target, with npm's os/cpu/libc and, on 32-bit ARM, the arm_version it needs.

const fs = require('fs');
const path = require('path');

const LIBRARY_ENV = 'TFLITE_EDGE_LIBRARY';
const TABLE = require('./platforms.json');

/** 'glibc' or 'musl' on Linux (glibc reports its version in process.report), else null. */
function detectLibc(report) {
  if (process.platform !== 'linux') return null;
  const header = (report || process.report.getReport()).header || {};
  return header.glibcVersionRuntime ? 'glibc' : 'musl';
}

/** The running machine as the table describes machines. */
function currentMachine() {
  const variables = (process.config && process.config.variables) || {};
  const arm = variables.arm_version !== undefined ? Number(variables.arm_version) : null;
  return {
    os: process.platform,
    cpu: process.arch,
    libc: detectLibc(),
    armVersion: process.arch === 'arm' ? arm : null,
  };
}

function describe(machine) {
  let text = `${machine.os}-${machine.cpu}`;
  if (machine.libc) text += ` (${machine.libc})`;
  if (machine.armVersion) text += `, ARMv${machine.armVersion}`;
  return text;
}

/**
 * The table entry for `machine` (default: this one), or null. On 32-bit ARM, the entry
 * needing the newest ARM version the machine has (ARMv7 before ARMv6).
 */
function platformFor(machine = currentMachine(), table = TABLE.platforms) {
  const matches = table.filter((p) =>
    p.os === machine.os && p.cpu === machine.cpu && (p.libc === null || p.libc === machine.libc)
    && (p.armVersion === null || machine.armVersion === null || p.armVersion <= machine.armVersion));
  matches.sort((a, b) => (b.armVersion || 0) - (a.armVersion || 0));
  return matches[0] || null;
}

class PlatformError extends Error {
  constructor(message) { super(message); this.name = 'PlatformError'; }
}

function resolveFrom(request, resolve = require.resolve) {
  try {
    return resolve(request);
  } catch (err) {
    if (err.code === 'MODULE_NOT_FOUND') return null;
    throw err;
  }
}

/**
 * The libtensorflowlite_c this package uses: $TFLITE_EDGE_LIBRARY, else the library of the
 * platform package npm installed for this machine. Returns {path, source, platform}.
 */
function findLibrary(env = process.env, machine = currentMachine()) {
  const override = env[LIBRARY_ENV];
  if (override !== undefined) {
    if (!override || !fs.existsSync(override)) {
      throw new PlatformError(`${LIBRARY_ENV}=${JSON.stringify(override)}: no such file`);
    }
    return { path: path.resolve(override), source: LIBRARY_ENV, platform: platformFor(machine) };
  }
  const entry = platformFor(machine);
  const known = TABLE.platforms.map((p) => p.name).join(', ');
  if (entry === null) {
    throw new PlatformError(
      `tflite-edge has no binary for this machine, ${describe(machine)}: the platforms are ` +
      `${known}. Build libtensorflowlite_c for it (edgeforge build tflite --target ...) and ` +
      `set ${LIBRARY_ENV} to it.`);
  }
  return { path: platformFile(TABLE, entry.name, 'tflite-edge', describe(machine)), source: entry.package, platform: entry };
}

/**
 * The library (`entry.library`) in the platform package of `platformName`, for the main package
 * or a plugin (`owner`, passing its own require.resolve), resolved as require() would; an
 * error that says what to install.
 */
function platformFile(table, platformName, owner, machineText = platformName, resolve = require.resolve) {
  const entry = table.platforms.find((p) => p.name === platformName);
  if (!entry) {
    throw new PlatformError(`${owner} has no package for ${machineText} (platforms: ` +
      `${table.platforms.map((p) => p.name).join(', ')})`);
  }
  if (!entry.published) {
    throw new PlatformError(
      `${owner} ${table.version} was released without a binary for ${machineText} ` +
      `(edgeforge target ${entry.target}); the release has ` +
      `${table.platforms.filter((p) => p.published).map((p) => p.name).join(', ')}. Build it ` +
      `with edgeforge (--target ${entry.target}) and set ${owner === 'tflite-edge' ? LIBRARY_ENV : 'the override variable'} to it.`);
  }
  const file = resolveFrom(`${entry.package}/${entry.library}`, resolve);
  if (file === null) {
    const how = entry.optional
      ? 'npm skipped it (installed with --omit=optional, or from another machine\'s ' +
        'lockfile?); reinstall, or'
      : 'npm cannot choose it by os/cpu alone, so install it yourself:';
    throw new PlatformError(
      `${owner}: the package for this machine (${machineText}), ${entry.package}` +
      `@${table.version}, is not installed. ${how} \`npm install ${entry.package}@` +
      `${table.version}\`.`);
  }
  return file;
}

module.exports = {
  LIBRARY_ENV, TABLE, PlatformError, currentMachine, describe, detectLibc, findLibrary,
  platformFile, platformFor,
};
