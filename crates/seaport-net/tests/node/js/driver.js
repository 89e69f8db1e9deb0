// A client of the real npm `seaport` package, driven by a Rust test: commands arrive on
// stdin and events leave on stdout, one JSON object per line.
//
// usage: node driver.js SEAPORT_MODULE_DIR HUB_PORT [OPTIONS_JSON]
//
// commands: {"cmd": "register", "role": "web@1.2.3", "meta": {...}, "listen": true, "tag": "t"}
//           {"cmd": "free", "id": "..."}
//           {"cmd": "query", "pattern": "web@1.x", "tag": "t"}
//           {"cmd": "get", "pattern": "web@1.x", "tag": "t"}
//           {"cmd": "close"}
// events:   connect, disconnect, address, synced, register, free (from seaport's own
//           events), registered, freed, query, got, closed (answers to commands).
'use strict';
var seaport = require(process.argv[2]);
var net = require('net');
var readline = require('readline');

var options = JSON.parse(process.argv[4] || '{}');
var ports = seaport.connect('127.0.0.1', Number(process.argv[3]), options);

function out(event) {
    process.stdout.write(JSON.stringify(event) + '\n');
}

ports.on('connect', function () { out({ event: 'connect' }); });
ports.on('disconnect', function () { out({ event: 'disconnect' }); });
ports.on('address', function (host) { out({ event: 'address', host: host }); });
ports.on('synced', function () { out({ event: 'synced' }); });
ports.on('register', function (meta, id) { out({ event: 'register', id: id, meta: meta }); });
// Ids given up because their port was taken (see `register`): not the test's business.
var abandoned = {};
ports.on('free', function (meta, id) {
    if (!abandoned[id]) out({ event: 'free', id: id, meta: meta || null });
});

var servers = [];

readline.createInterface({ input: process.stdin }).on('line', function (line) {
    var c = JSON.parse(line);
    if (c.cmd === 'register') {
        // seaport's documented flow: take the port it picks, then listen on it. seaport
        // picks at random without looking, so the port can be one the machine already
        // uses (another test's connection): then the service frees it and registers
        // again, as a careful node service would, up to a few times.
        var attempt = function (left) {
            var meta = ports.registerMeta(c.role, JSON.parse(JSON.stringify(c.meta || {})));
            var done = function () {
                out({ event: 'registered', tag: c.tag, id: meta.id, port: meta.port });
            };
            if (!c.listen) return done();
            var server = net.createServer(function (socket) {
                socket.end('hello from ' + c.role + '\n');
            });
            server.on('error', function (e) {
                if (e.code === 'EADDRINUSE' && left > 0) {
                    abandoned[meta.id] = true;
                    ports.free(meta.id);
                    return attempt(left - 1);
                }
                out({ event: 'error', message: String(e) });
            });
            server.listen(meta.port, function () {
                servers.push(server);
                done();
            });
        };
        // Until the hub has told seaport this host's address, registerMeta holds the
        // register back while a free goes out at once: a port given up then would be
        // registered after its free and stay. Start once the address is known.
        if (ports._host) attempt(5);
        else ports.once('address', function () { attempt(5); });
    }
    else if (c.cmd === 'free') {
        ports.free(c.id);
        out({ event: 'freed', id: c.id });
    }
    else if (c.cmd === 'query') {
        out({ event: 'query', tag: c.tag, rows: ports.query(c.pattern) });
    }
    else if (c.cmd === 'get') {
        ports.get(c.pattern, function (rows) {
            out({ event: 'got', tag: c.tag, rows: rows });
        });
    }
    else if (c.cmd === 'close') {
        ports.close();
        servers.forEach(function (s) { s.close(); });
        out({ event: 'closed' });
    }
});

// The test went away: so do we.
process.stdin.on('end', function () { process.exit(0); });
