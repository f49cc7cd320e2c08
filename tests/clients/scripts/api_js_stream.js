'use strict';
// Opens one particle-api-js event stream and prints what it receives, one line of JSON each.
//
//   API_JS_ARGS='{"deviceId": "mine", "name": "temp", "auth": "..."}' node api_js_stream.js <baseUrl> <count> <seconds>
//
// Connected: {"connected": true, "version"}, printed once getEventStream resolves, so the caller
// can publish after it. Then {"event": <the event object api-js emits>} for each event, and at the
// end {"done": true, "received"} after <count> events, or {"done": false, "received"} when
// <seconds> passed first. Rejected: {"ok": false, "version", "statusCode", "errorDescription",
// "body"}, as api_js_call.js prints it. The exit code is 0 in each case; it is non-zero only when
// the stream could not be tried at all.

const fs = require('fs');
const path = require('path');
const Particle = require('particle-api-js');

const [baseUrl, countArg, secondsArg] = process.argv.slice(2);
const args = JSON.parse(process.env.API_JS_ARGS || '{}');
const count = Number(countArg);
const seconds = Number(secondsArg);
const entry = require.resolve('particle-api-js');
const manifest = path.join(entry.slice(0, entry.lastIndexOf(`${path.sep}lib${path.sep}`)), 'package.json');
const version = JSON.parse(fs.readFileSync(manifest, 'utf8')).version;

function print(line) {
    process.stdout.write(`${JSON.stringify(line)}\n`);
}

function finish(stream, line) {
    print(line);
    if (stream) {
        stream.abort();
    }
    process.exit(0);
}

async function main() {
    if (!Number.isInteger(count) || count < 0 || !(seconds > 0)) {
        throw new Error('usage: api_js_stream.js <baseUrl> <count> <seconds>');
    }
    const particle = new Particle({ baseUrl });
    let stream;
    try {
        stream = await particle.getEventStream(args);
    } catch (error) {
        const body = error.body === undefined ? null : error.body;
        finish(null, {
            ok: false,
            version,
            statusCode: error.statusCode === undefined ? null : error.statusCode,
            errorDescription: error.errorDescription === undefined ? null : error.errorDescription,
            body,
        });
        return;
    }
    let received = 0;
    const timer = setTimeout(() => finish(stream, { done: false, received }), seconds * 1000);
    // A dropped stream is reconnected by api-js; a test must see that, not a silent gap.
    stream.on('disconnect', () => print({ disconnected: true }));
    stream.on('event', (event) => {
        received += 1;
        print({ event });
        if (received === count) {
            clearTimeout(timer);
            finish(stream, { done: true, received });
        }
    });
    print({ connected: true, version });
    if (count === 0) {
        clearTimeout(timer);
        finish(stream, { done: true, received });
    }
}

main().catch((error) => {
    process.stderr.write(`${error.stack || error}\n`);
    process.exit(2);
});
