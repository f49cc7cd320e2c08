'use strict';
// Calls one particle-api-js method and prints the outcome as one line of JSON.
//
//   API_JS_ARGS='{"username": "...", "password": "..."}' node api_js_call.js <baseUrl> <method>
//
// Success: {"ok": true, "version", "statusCode", "body"}; a download's body is {"base64"}.
// Rejection: {"ok": false, "version", "statusCode", "errorDescription", "shortErrorDescription", "body", "message"}.
// The exit code is 0 either way; it is non-zero only when the call could not be made at all.

const fs = require('fs');
const path = require('path');
const Particle = require('particle-api-js');

const [baseUrl, method] = process.argv.slice(2);
const args = JSON.parse(process.env.API_JS_ARGS || '{}');
const entry = require.resolve('particle-api-js');
const manifest = path.join(entry.slice(0, entry.lastIndexOf(`${path.sep}lib${path.sep}`)), 'package.json');
const version = JSON.parse(fs.readFileSync(manifest, 'utf8')).version;

// api-js attaches its fetch Response to the parsed error body as `response`; keep what the server sent.
function serverBody(body) {
    if (body === undefined || body === null || typeof body !== 'object') {
        return body === undefined ? null : body;
    }
    const { response, ...rest } = body;
    return rest;
}

async function main() {
    const particle = new Particle({ baseUrl });
    if (typeof particle[method] !== 'function') {
        throw new Error(`particle-api-js ${version} has no method ${method}`);
    }
    let outcome;
    try {
        const response = await particle[method](args);
        // Downloads resolve to the bytes themselves (a Buffer), not to {statusCode, body}.
        outcome = Buffer.isBuffer(response)
            ? { ok: true, version, statusCode: null, body: { base64: response.toString('base64') } }
            : { ok: true, version, statusCode: response.statusCode, body: response.body };
    } catch (error) {
        outcome = {
            ok: false,
            version,
            statusCode: error.statusCode === undefined ? null : error.statusCode,
            errorDescription: error.errorDescription === undefined ? null : error.errorDescription,
            shortErrorDescription: error.shortErrorDescription === undefined ? null : error.shortErrorDescription,
            body: serverBody(error.body),
            message: String(error.message),
        };
    }
    process.stdout.write(`${JSON.stringify(outcome)}\n`);
}

main().catch((error) => {
    process.stderr.write(`${error.stack || error}\n`);
    process.exit(2);
});
