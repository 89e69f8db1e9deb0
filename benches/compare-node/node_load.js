// Node seaport clients (the npm package's own client) loading a hub, for
// `just compare-node`: the same clients against node's hub and against seaport-rs's
// (which speaks node's protocol on its port).
//
// usage: node node_load.js SEAPORT_MODULE_DIR MODE CLIENTS SERVICES BOUND_S HOLD_S LABEL -- HUB_COMMAND...
//   MODE     load: CLIENTS clients register SERVICES records each, all at once, and a
//            watcher (another client) waits until it has seen every record. Then the
//            run holds HOLD_S seconds and counts disconnects and frees (node clients
//            heartbeat every 15 s and are timed out after 45 s). The hub's RSS over idle
//            per registration is also given split in two: per connection (connected,
//            nothing registered yet) and per registration on top of that.
//            restart: CLIENTS clients with one record each; once the clients have taken
//            in every record they were sent, SIGKILL the hub, start it again on the same
//            port, and time until a fresh watcher there has every record with its port.
//            leave: as load, then every registering client leaves at once (their
//            process SIGKILLed); time until the watcher has seen every record freed,
//            and the hub's peak and RSS after.
//            join: as load, then as many clients again, registering nothing, connect
//            at once (each is sent every record); time until every one has had the
//            hub's `synced`, and the hub's peak and RSS after.
//   BOUND_S  bound on the run: past it, the report says what was reached.
//   HUB_COMMAND  the hub to start; `{PORT}` is replaced by the port (0 the first time).
//            It must print `seaport listening on HOST:PORT`.
// Prints one JSON object on stdout.
//
// Three kinds of process, so that the figures are not the event loop's backlog: this
// one (starts and measures the hub from /proc, keeps time), one holding every client
// (`--clients`), and the watcher (`--watch`). Node clients replicate the whole registry,
// so the clients' process has CLIENTS x CLIENTS x SERVICES records to digest; the
// watcher in its own process sees the hub's pace.
'use strict';
var seaport = require(process.argv[2]);
var childProcess = require('child_process');
var fs = require('fs');
var readline = require('readline');

function now() { return Number(process.hrtime.bigint()) / 1e6; }
function out(event) { process.stdout.write(JSON.stringify(event) + '\n'); }
// Ports are given, one per record, so that no two records collide (seaport-rs's hub
// warns of every shared host:port) and a watcher can check them. The host is the
// clients' own address: after a reconnect seaport-rs's hub takes back the records a node
// client re-announces for its own host, and ignores those for other hosts (records of
// other processes it merely remembers).
var SERVICES = 0;
function portOf(i, j) { return 10000 + (i * SERVICES + j) % 50000; }
function clientOf(id) { var m = /^c(\d+)s(\d+)$/.exec(id); return m ? [Number(m[1]), Number(m[2])] : null; }

var role = process.argv[3];
if (role === '--clients') clients(Number(process.argv[4]), Number(process.argv[5]), Number(process.argv[6]));
else if (role === '--watch') watch(Number(process.argv[4]), Number(process.argv[5]), Number(process.argv[6]));
else if (role === '--join') join(Number(process.argv[4]), Number(process.argv[5]));
else if (role === '--warm') warm(Number(process.argv[4]));
else orchestrate();

// --clients PORT CLIENTS SERVICES: connect, say `connected`, register everything on `go`
// (stdin), report each disconnect, and say `digested` once the clients together have
// taken in every other client's records (the hub has sent them, and this process, which
// holds every client, has read them all).
function clients(port, n, services) {
    SERVICES = services;
    var all = [], connected = 0, ready = false, seen = 0, digested = false;
    var expected = n * (n - 1) * services;
    function onRegister() {
        if (++seen >= expected && !digested) { digested = true; out({ event: 'digested' }); }
    }
    for (var i = 0; i < n; i++) {
        var c = seaport.connect('127.0.0.1', port);
        c.once('connect', function () { if (++connected === n) { ready = true; out({ event: 'connected' }); } });
        c.on('disconnect', function () { if (ready) out({ event: 'disconnect' }); });
        c.on('register', onRegister);
        all.push(c);
    }
    readline.createInterface({ input: process.stdin }).on('line', function () {
        var t = Date.now();
        for (var i = 0; i < n; i++) {
            for (var j = 0; j < services; j++) {
                all[i].registerMeta({ role: 'load@1.0.0', host: '127.0.0.1', id: 'c' + i + 's' + j, t: t }, portOf(i, j));
            }
        }
        out({ event: 'sent' });
    });
    process.stdin.on('end', function () { process.exit(0); });
}

// --watch PORT TOTAL SERVICES: one client; says `all` (with latencies from each record's `t`)
// once it holds TOTAL records with their ports, `progress` every second, `free` for each
// free of a record it held.
function watch(port, total, services) {
    SERVICES = services;
    var w = seaport.connect('127.0.0.1', port), seen = new Set(), latency = [], done = false;
    w.once('connect', function () { out({ event: 'connected' }); });
    w.on('register', function (meta, id) {
        var ij = clientOf(id);
        if (!meta || meta.role !== 'load' || !ij || seen.has(id) || Number(meta.port) !== portOf(ij[0], ij[1])) return;
        seen.add(id);
        if (meta.t) latency.push(Date.now() - Number(meta.t));
        if (seen.size === total && !done) {
            done = true;
            latency.sort(function (a, b) { return a - b; });
            var at = function (p) { return latency[Math.min(latency.length - 1, Math.round((latency.length - 1) * p))] || 0; };
            out({ event: 'all', p50_ms: at(0.5), p99_ms: at(0.99), max_ms: at(1) });
        }
    });
    w.on('free', function (meta, id) { if (seen.delete(id)) out({ event: 'free' }); });
    // A client whose connection ends drops (and emits `free` for) what it learned from it.
    w.on('disconnect', function () { out({ event: 'disconnect' }); });
    setInterval(function () { out({ event: 'progress', seen: seen.size }); }, 1000);
    process.stdin.resume();
    process.stdin.on('end', function () { process.exit(0); });
}

// --warm PORT: a client registers a record and leaves while another watches it come and
// go; says `warm` once the watcher has seen its free, then exits.
function warm(port) {
    var a = seaport.connect('127.0.0.1', port), b = seaport.connect('127.0.0.1', port);
    b.on('register', function (meta, id) { if (id === 'warm') a.close(); });
    b.on('free', function (meta, id) {
        if (id !== 'warm') return;
        out({ event: 'warm' });
        b.close();
        setTimeout(function () { process.exit(0); }, 100);
    });
    b.once('synced', function () { a.registerMeta({ role: 'warm@1.0.0', host: '127.0.0.1', id: 'warm' }, 9999); });
    setTimeout(function () { process.exit(0); }, 10000);
}

// --join PORT CLIENTS: connect, say `joined` once every client has had the hub's `synced`
// (so every record it holds).
function join(port, n) {
    var synced = 0;
    for (var i = 0; i < n; i++) {
        seaport.connect('127.0.0.1', port).once('synced', function () {
            if (++synced === n) out({ event: 'joined' });
        });
    }
    process.stdin.resume();
    process.stdin.on('end', function () { process.exit(0); });
}

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

function orchestrate() {
    var module = process.argv[2], mode = process.argv[3];
    var C = Number(process.argv[4]), S = mode === 'restart' ? 1 : Number(process.argv[5]);
    var BOUND = Number(process.argv[6]) * 1000, HOLD = Number(process.argv[7]) * 1000, label = process.argv[8];
    var hubCommand = process.argv.slice(process.argv.indexOf('--') + 1);
    var total = C * S, started = now(), hub = null, children = [];
    var result = { label: label, mode: mode, clients: C, services: S, total: total, converged: false, reached: 0 };

    function finish() {
        if (hub) hub.kill('SIGKILL');
        children.forEach(function (c) { c.kill('SIGKILL'); });
        console.log(JSON.stringify(result));
        process.exit(0);
    }
    var idle, connected, clientsChild, digested = false, onDigested = null;
    setTimeout(function () {
        result.error = 'bound of ' + BOUND / 1000 + ' s hit';
        // What the hub spent to get as far as it did.
        if (hub && connected && !result.converged) {
            var s = stats(hub.pid);
            result.hub_cpu_s = s.cpu - connected.cpu;
            result.hub_rss_kib = s.rss;
            result.hub_peak_kib = s.peak;
            if (clientsChild) result.clients_cpu_s = stats(clientsChild.pid).cpu;
        }
        finish();
    }, BOUND);

    function startHub(port, cb) {
        var args = hubCommand.map(function (a) { return a.replace('{PORT}', String(port)); });
        var h = childProcess.spawn(args[0], args.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
        var done = false;
        var timer = setTimeout(function () { if (!done) { done = true; h.kill('SIGKILL'); cb(null); } }, 10000);
        h.on('exit', function () { if (!done) { done = true; clearTimeout(timer); cb(null); } });
        readline.createInterface({ input: h.stdout }).on('line', function (line) {
            var m = line.match(/^seaport listening on .*:(\d+)$/);
            if (m && !done) { done = true; clearTimeout(timer); cb(h, Number(m[1])); }
        });
    }
    // A child in role `args[0]`; `on(event)` for each line it prints.
    function child(args, on) {
        var c = childProcess.spawn(process.execPath, ['--max-old-space-size=8192', __filename, module].concat(args),
            { stdio: ['pipe', 'pipe', 'inherit'] });
        readline.createInterface({ input: c.stdout }).on('line', function (line) {
            try { on(JSON.parse(line)); } catch (e) { /* not ours */ }
        });
        children.push(c);
        return c;
    }

    // Idle is the hub's RSS at rest after one client has registered a record and left while
    // another watched (`--warm`), once it has stopped changing: unchanged over three
    // readings 100 ms apart (at most 3 s). Read the moment a hub says it listens, it left
    // out what any first client costs once (its threads' buffers, the code of the paths a
    // client takes paged in: some 0.4 MiB for seaport-rs, 38 bytes of each of 10 000
    // registrations), and counted it as the workload's. That first reading is reported
    // too (`hub_rss_start_kib`, `bytes_per_registration_cold`).
    function settle(pid, cb) {
        var last = -1, same = 0, tries = 0;
        (function poll() {
            var s = stats(pid);
            same = s.rss === last ? same + 1 : 0;
            last = s.rss;
            if (same >= 2 || ++tries >= 30) return cb(s);
            setTimeout(poll, 100);
        })();
    }

    startHub(0, function (h, port) {
        if (!h) { result.error = 'the hub did not start'; return finish(); }
        hub = h;
        var start = stats(hub.pid), warmed = false;
        result.hub_rss_start_kib = start.rss;
        function go() {
            if (warmed) return;
            warmed = true;
            settle(hub.pid, function (settled) { run(port, settled, start); });
        }
        child(['--warm', String(port)], function (e) { if (e.event === 'warm') go(); })
            .on('exit', function () { if (!warmed) { result.warm_failed = true; go(); } });
    });

    function run(port, settled, start) {
        idle = settled;
        var t0, disconnects = 0, frees = 0;
        result.hub_rss_idle_kib = idle.rss;
        var watcher = child(['--watch', String(port), String(total), String(S)], function (e) {
            if (e.event === 'connected') {
                clientsChild = child(['--clients', String(port), String(C), String(S)], function (e) {
                    if (e.event === 'connected') {
                        connected = stats(hub.pid);
                        result.connect_s = (now() - started) / 1000;
                        t0 = now();
                        clientsChild.stdin.write('go\n');
                    } else if (e.event === 'disconnect') disconnects++;
                    else if (e.event === 'digested') {
                        digested = true;
                        if (onDigested) onDigested();
                    }
                    result.disconnects = disconnects;
                });
            } else if (e.event === 'progress') {
                result.reached = Math.max(result.reached, e.seen);
                if (t0 !== undefined && !result.converged) result.seconds = (now() - t0) / 1000;
            } else if (e.event === 'disconnect') {
                result.watcher_disconnects = (result.watcher_disconnects || 0) + 1;
            } else if (e.event === 'free') {
                result.frees_seen = ++frees;
            } else if (e.event === 'all') {
                var s = stats(hub.pid);
                result.converged = true;
                result.reached = total;
                result.seconds = (now() - t0) / 1000;
                result.rate = total / result.seconds;
                result.p50_ms = e.p50_ms; result.p99_ms = e.p99_ms; result.max_ms = e.max_ms;
                result.hub_cpu_s = s.cpu - connected.cpu;
                // The node clients' own process: it digests CLIENTS x CLIENTS x SERVICES records.
                if (clientsChild) result.clients_cpu_s = stats(clientsChild.pid).cpu;
                result.hub_rss_kib = s.rss;
                result.bytes_per_registration = (s.rss - idle.rss) * 1024 / total;
                result.bytes_per_registration_cold = (s.rss - start.rss) * 1024 / total;
                // The same figure split in two: what the connections took before anything
                // was registered, and what the registrations added on top.
                result.hub_rss_connected_kib = connected.rss;
                result.bytes_per_connection = (connected.rss - idle.rss) * 1024 / C;
                result.bytes_per_registration_alone = (s.rss - connected.rss) * 1024 / total;
                result.disconnects = disconnects;
                result.frees_seen = frees;
                if (mode === 'load') {
                    setTimeout(function () {
                        result.held_s = HOLD / 1000;
                        result.after_hold = total - frees;
                        result.hub_peak_kib = stats(hub.pid).peak;
                        finish();
                    }, HOLD);
                } else if (mode === 'join') {
                    // As many clients again, registering nothing, connect at once: each is
                    // sent every record. Time until all have them, and the hub's peak.
                    var joining = now();
                    child(['--join', String(port), String(C)], function (e) {
                        if (e.event !== 'joined') return;
                        var after = stats(hub.pid);
                        result.joined_s = (now() - joining) / 1000;
                        result.hub_peak_kib = after.peak;
                        result.hub_rss_after_join_kib = after.rss;
                        finish();
                    });
                } else if (mode === 'leave') {
                    // Every registering client gone at once (their process killed): time
                    // until the watcher has seen every record freed, and the hub's peak.
                    result.hub_peak_before_leave_kib = stats(hub.pid).peak;
                    var killed = now();
                    clientsChild.kill('SIGKILL');
                    var poll = setInterval(function () {
                        if (frees < total) return;
                        clearInterval(poll);
                        var after = stats(hub.pid);
                        result.left_s = (now() - killed) / 1000;
                        result.hub_peak_kib = after.peak;
                        result.hub_rss_after_leave_kib = after.rss;
                        finish();
                    }, 20);
                } else {
                    // The hub is killed at rest, not while the clients still read what it
                    // sent: a node client notices its hub is gone only once it has read
                    // everything before the end of the stream, and this one process holds
                    // every client (a thousand processes would each read their own share).
                    // At most 30 s: a client that lost records (a node hub timing it out)
                    // never says it has them all (then `settled_s` is absent).
                    var converged = now();
                    var giveUp = setTimeout(function () { if (onDigested) { onDigested = null; restart(port, watcher); } }, 30000);
                    onDigested = function () {
                        onDigested = null;
                        clearTimeout(giveUp);
                        result.settled_s = (now() - converged) / 1000;
                        restart(port, watcher);
                    };
                    if (digested) onDigested();
                }
            }
        });
    }

    function restart(port, watcher) {
        watcher.kill('SIGKILL');
        var killed = now();
        hub.once('exit', function again() {
            startHub(port, function (h) {
                if (!h) return setTimeout(again, 20);
                hub = h;
                result.ready_ms = now() - killed;
                child(['--watch', String(port), String(total), String(S)], function (e) {
                    if (e.event === 'progress') result.back = e.seen;
                    if (e.event === 'all') { result.healed_s = (now() - killed) / 1000; finish(); }
                });
            });
        });
        hub.kill('SIGKILL');
    }
}
