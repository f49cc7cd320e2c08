'use strict';
// Particle's binary-version-reader on module binaries, for comparison with firmware.binary.
//
//   node binary_version_reader.js parse  < ["a.bin", ...]
//       prints [{version, crc, prefixInfo, suffixInfo}, ...] as HalModuleParser returns them
//   node binary_version_reader.js create < [{"path": "a.bin", "options": {...}}, ...]
//       writes firmwareTestHelper.createFirmwareBinary(options) to each path
//
// Buffers (extension records) are printed as hex strings. A non-zero exit code means the command
// itself failed; the error is on stderr.

const fs = require('fs');
const path = require('path');
const { HalModuleParser, firmwareTestHelper } = require('binary-version-reader');

const entry = require.resolve('binary-version-reader');
const version = JSON.parse(fs.readFileSync(path.join(path.dirname(entry), 'package.json'), 'utf8')).version;

function hexBuffers(key, value) {
    if (value && value.type === 'Buffer' && Array.isArray(value.data)) {
        return Buffer.from(value.data).toString('hex');
    }
    return value;
}

async function parse(files) {
    const parser = new HalModuleParser();
    const results = [];
    for (const file of files) {
        const { crc, prefixInfo, suffixInfo } = await parser.parseFile(file);
        results.push({ version, crc, prefixInfo, suffixInfo });
    }
    return results;
}

function create(requests) {
    for (const { path: file, options } of requests) {
        fs.writeFileSync(file, firmwareTestHelper.createFirmwareBinary(options));
    }
    return requests.map((request) => request.path);
}

async function main() {
    const [command] = process.argv.slice(2);
    const input = JSON.parse(fs.readFileSync(0, 'utf8'));
    let output;
    if (command === 'parse') {
        output = await parse(input);
    } else if (command === 'create') {
        output = create(input);
    } else {
        throw new Error(`unknown command ${command}: use parse or create`);
    }
    process.stdout.write(JSON.stringify(output, hexBuffers) + '\n');
}

main().catch((error) => {
    process.stderr.write(`${error.stack || error}\n`);
    process.exit(1);
});
