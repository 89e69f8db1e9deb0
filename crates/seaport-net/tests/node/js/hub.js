// A node seaport hub, as `seaport listen` runs one, on a free port of every address.
//
// usage: node hub.js SEAPORT_MODULE_DIR
// prints {"event": "listening", "port": PORT} once listening; exits when stdin closes.
'use strict';
var seaport = require(process.argv[2]);

var server = seaport.createServer();
server.listen(0, function () {
    process.stdout.write(JSON.stringify({ event: 'listening', port: server.address().port }) + '\n');
});
process.stdin.resume();
process.stdin.on('end', function () { process.exit(0); });
