'use strict';
// A tflite-edge delegate plugin over one external-delegate library per platform (generated
// by `edgeforge npm` from a delegate plugin wheel): {name, path(platform), serializeOptions}.

const { platformFile } = require('tflite-edge/platform');
const table = require('./platforms.json');
const manifest = require('./package.json');

module.exports = {
  name: manifest.tfliteEdge.delegate,
  aliases: manifest.tfliteEdge.aliases || [],
  /** The delegate library in this plugin's package for `platform` ("linux-x64", ...). */
  path(platform) {
    return platformFile(table, platform, manifest.name, platform, require.resolve);
  },
  /** Options as the library's key/value strings (values are stringified); names outside
   *  the package's tfliteEdge.options list, where it has one, are refused. */
  serializeOptions(options = {}) {
    const known = manifest.tfliteEdge.options;
    const unknown = known ? Object.keys(options).filter((k) => !known.includes(k)) : [];
    if (unknown.length) {
      throw new Error(`unknown option(s) ${unknown.join(', ')}; ${manifest.tfliteEdge.delegate} knows ${known.join(', ')}`);
    }
    const out = {};
    for (const [key, value] of Object.entries(options)) out[key] = String(value);
    return out;
  },
};
