// Node seaport clients (the npm package's own client) loading a hub, for
// `just compare-node`: the same clients against node's hub and against seaport-rs's
// (which speaks node's protocol on its port). Starts the hub itself, so that it can
// read the hub's memory and CPU from /proc and kill and restart it.
//
// usage: node node_load.js SEAPORT_MODULE_DIR MODE CLIENTS SERVICES BOUND_S HOLD_S LABEL -- HUB_COMMAND...
//   MODE     load: CLIENTS clients register SERVICES records each, all at once; one more
//            client watches. Reports the time until the watcher has seen every record,
//            then holds HOLD_S seconds and reports what is still there (node's clients
//            heartbeat every 15 s and time out after 45 s).
//            restart: CLIENTS clients with one record each; SIGKILL the hub, start it
//            again on the same port, and time until a fresh watcher there sees every
//            record with its port.
//   BOUND_S  bound on the run: past it, the report says what was reached.
//   HUB_COMMAND  the hub to start; `{PORT}` is replaced by the port (0 the first
//            time). It must print `seaport listening on HOST:PORT`.
// prints one JSON object on stdout.
'use strict';
var seaport = require(process.argv[2]);
var childProcess = require('child_process');
var fs = require('fs');
var readline = require('readline');

var mode = process.argv[3];
var C = Number(process.argv[4]), S = Number(process.argv[5]);
var BOUND = Number(process.argv[6]) * 1000, HOLD = Number(process.argv[7]) * 1000;
var label = process.argv[8];
var hubCommand = process.argv.slice(process.argv.indexOf('--') + 1);
if (mode === 'restart') S = 1;
var total = C * S;
var started = Date.now();

function now() { return Number(process.hrtime.bigint()) / 1e6; }

// VmRSS, VmHWM (KiB) and user+system CPU seconds of a process, from /proc.
function stats(pid) {
    try {
        var status = fs.readFileSync('/proc/' + pid + '/status', 'utf8');
        var stat = fs.readFileSync('/proc/' + pid + '/stat', 'utf8');
        var kib = function (key) { var m = status.match(new RegExp(key + ':\\s*(\\d+)')); return m ? Number(m[1]) : 0; };
        var fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        return { rss: kib('VmRSS'), peak: kib('VmHWM'), cpu: (Number(fields[11]) + Number(fields[12])) / 100 };
    } catch (e) { return { rss: 0, peak: 0, cpu: 0 }; }
}

function startHub(port, cb) {
    var args = hubCommand.map(function (a) { return a.replace('{PORT}', String(port)); });
    var hub = childProcess.spawn(args[0], args.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
    var done = false;
    var timer = setTimeout(function () { if (!done) { done = true; hub.kill('SIGKILL'); cb(null); } }, 10000);
    hub.on('exit', function () { if (!done) { done = true; clearTimeout(timer); cb(null); } });
    readline.createInterface({ input: hub.stdout }).on('line', function (line) {
        var m = line.match(/^seaport listening on .*:(\d+)$/);
        if (m && !done) { done = true; clearTimeout(timer); cb(hub, Number(m[1])); }
    });
}

function percentile(sorted, p) {
    if (sorted.length === 0) return 0;
    return sorted[Math.min(sorted.length - 1, Math.round((sorted.length - 1) * p))];
}

var hub = null;
function finish(result) {
    result.label = label;
    result.mode = mode;
    result.clients = C;
    result.services = S;
    result.total = total;
    result.driver_cpu_s = (process.cpuUsage().user + process.cpuUsage().system) / 1e6;
    console.log(JSON.stringify(result));
    if (hub) hub.kill('SIGKILL');
    process.exit(0);
}

function clientOf(id) { var m = /^c(\d+)s/.exec(id); return m ? Number(m[1]) : -1; }

// Connects n clients; calls cb once all emitted `connect` (or the bound hit).
function connectAll(port, n, cb) {
    var clients = [], connected = 0;
    for (var i = 0; i < n; i++) {
        var c = seaport.connect('127.0.0.1', port);
        c.once('connect', function () { if (++connected === n) cb(clients); });
        clients.push(c);
    }
    return clients;
}

startHub(0, function (h, port) {
    if (!h) return finish({ error: 'the hub did not start' });
    hub = h;
    var idle = stats(hub.pid);
    setTimeout(function () {
        finish({ error: 'bound of ' + BOUND / 1000 + ' s hit while connecting', reached: 0 });
    }, BOUND).unref();
    var watcher = seaport.connect('127.0.0.1', port);
    watcher.once('connect', function () {
        connectAll(port, C, function (clients) {
            (mode === 'load' ? load : restart)(port, idle, watcher, clients);
        });
    });
});

function load(port, idle, watcher, clients) {
    var connected = stats(hub.pid);
    var seen = new Set(), latency = [], sent = new Array(C);
    var disconnects = 0, frees = 0, converged = null, atConvergence = null;
    clients.forEach(function (c) { c.on('disconnect', function () { disconnects++; }); });
    watcher.on('disconnect', function () { disconnects++; });
    watcher.on('free', function (meta, id) { if (seen.delete(id)) frees++; });
    var t0 = now();
    watcher.on('register', function (meta, id) {
        if (!meta || meta.role !== 'load' || seen.has(id)) return;
        seen.add(id);
        var c = clientOf(id);
        if (c >= 0 && sent[c] !== undefined) latency.push(now() - sent[c]);
        if (seen.size === total && converged === null) {
            converged = now() - t0;
            atConvergence = stats(hub.pid);
            setTimeout(report, HOLD);
        }
    });
    for (var i = 0; i < C; i++) {
        sent[i] = now();
        for (var j = 0; j < S; j++) {
            clients[i].registerMeta({ role: 'load@1.0.0', host: '127.0.0.1', id: 'c' + i + 's' + j });
        }
    }
    var bound = setTimeout(report, Math.max(0, BOUND - (Date.now() - started)));
    function report() {
        clearTimeout(bound);
        var end = stats(hub.pid);
        var at = atConvergence || end;
        latency.sort(function (a, b) { return a - b; });
        finish({
            converged: converged !== null,
            seconds: converged !== null ? converged / 1000 : (now() - t0) / 1000,
            reached: converged !== null ? total : seen.size,
            rate: (converged !== null ? total / (converged / 1000) : seen.size / ((now() - t0) / 1000)),
            p50_ms: percentile(latency, 0.5), p99_ms: percentile(latency, 0.99), max_ms: percentile(latency, 1),
            hub_cpu_s: at.cpu - connected.cpu,
            hub_rss_idle_kib: idle.rss, hub_rss_kib: at.rss, hub_peak_kib: end.peak,
            bytes_per_registration: (at.rss - idle.rss) * 1024 / total,
            held_s: converged !== null ? HOLD / 1000 : 0,
            after_hold: seen.size, frees_seen: frees, disconnects: disconnects,
        });
    }
}

function restart(port, idle, watcher, clients) {
    var seen = new Set(), ports = {};
    watcher.on('register', function (meta, id) {
        if (!meta || meta.role !== 'load' || seen.has(id)) return;
        seen.add(id);
        if (seen.size === total) kill();
    });
    var t0 = now();
    for (var i = 0; i < C; i++) {
        var meta = clients[i].registerMeta({ role: 'load@1.0.0', host: '127.0.0.1', id: 'c' + i + 's0' });
        ports[meta.id] = meta.port;
    }
    var registered, killed, ready;
    function kill() {
        registered = (now() - t0) / 1000;
        var before = stats(hub.pid);
        hub.once('exit', function () { again(before); });
        killed = now();
        hub.kill('SIGKILL');
    }
    function again(before) {
        startHub(port, function (h) {
            if (!h) return setTimeout(function () { again(before); }, 20);
            hub = h;
            ready = now() - killed;
            var fresh = seaport.connect('127.0.0.1', port), back = new Set();
            fresh.on('register', function (meta, id) {
                if (!meta || meta.role !== 'load' || ports[id] !== meta.port) return;
                back.add(id);
                if (back.size === total) {
                    finish({
                        converged: true, registered_s: registered, ready_ms: ready,
                        healed_s: (now() - killed) / 1000, reached: total,
                        hub_rss_before_kib: before.rss, hub_cpu_before_s: before.cpu,
                    });
                }
            });
            setTimeout(function () {
                finish({ converged: false, registered_s: registered, ready_ms: ready, reached: back.size });
            }, Math.max(0, BOUND - (Date.now() - started))).unref();
        });
    }
}
