// Prints the tables of `just compare-node` from the results file run.sh wrote:
//   node|rs query records=N kind=K matches=M ns_per_query=T   (query.js, query_bench)
//   {...}                                                     (node_load.js, one JSON per run)
//   load LABEL {...}                                          (the load tool's result line)
// usage: node table.js RESULTS
'use strict';
var fs = require('fs');

var query = {}, node = [], load = {};
fs.readFileSync(process.argv[2], 'utf8').split('\n').forEach(function (line) {
    var m = /^(node|rs) query records=(\d+) kind=(\w+) matches=(\d+) ns_per_query=(\d+)/.exec(line);
    if (m) { query[m[2] + ' ' + m[3]] = query[m[2] + ' ' + m[3]] || {}; query[m[2] + ' ' + m[3]][m[1]] = Number(m[5]); return; }
    m = /^load (\S+) (\{.*\})$/.exec(line);
    if (m) { load[m[1]] = JSON.parse(m[2]); return; }
    if (line.charAt(0) === '{') node.push(JSON.parse(line));
});

function f(x, digits) { return x === undefined || x === null || isNaN(x) ? 'n/a' : Number(x).toFixed(digits); }
function time(ns) { return ns >= 1e6 ? f(ns / 1e6, 1) + ' ms' : ns >= 1e3 ? f(ns / 1e3, 2) + ' µs' : f(ns, 0) + ' ns'; }
function ratio(a, b) { return a > 0 && b > 0 ? f(a / b, a / b >= 100 ? 0 : 1) + 'x' : 'n/a'; }
var bars = [];
function bar(name, met, detail) { bars.push('| ' + name + ' | ' + (met ? 'met' : 'MISSED') + ' | ' + detail + ' |'); }

console.log('### (a) In-process query (records over N/100 roles; role: 100 matches, range `>=1.2.0 <2.0.0`: 40)\n');
console.log('| records | pattern | node `query()` | seaport-rs `Registry::query` | node / seaport-rs |');
console.log('|---|---|---|---|---|');
Object.keys(query).forEach(function (k) {
    var q = query[k], parts = k.split(' ');
    console.log('| ' + parts[0] + ' | ' + parts[1] + ' | ' + time(q.node) + ' | ' + time(q.rs) + ' | ' + ratio(q.node, q.rs) + ' |');
    if (parts[0] === '100000') bar('query at 10^5 records (' + parts[1] + ') >= 1 000x node', q.node / q.rs >= 1000, ratio(q.node, q.rs));
});

console.log('\n### (b) The same node seaport clients against both hubs\n');
console.log('| workload | hub | converged | reached | time | registrations/s | register→watcher p50 / p99 | hub CPU | CPU per registration | hub RSS | bytes per registration | (over the RSS at start) | disconnects | after hold |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
var byKey = {};
node.filter(function (r) { return r.mode === 'load'; }).forEach(function (r) {
    var w = r.clients + ' x ' + r.services;
    byKey[w] = byKey[w] || {};
    byKey[w][r.label] = r;
    console.log('| ' + w + ' | ' + r.label + ' | ' + (r.converged ? 'yes' : 'no') + ' | ' + r.reached + ' / ' + r.total + ' | ' +
        f(r.seconds, 2) + ' s | ' + f(r.rate, 0) + ' | ' + f(r.p50_ms, 0) + ' / ' + f(r.p99_ms, 0) + ' ms | ' +
        f(r.hub_cpu_s, 2) + ' s | ' + f(r.hub_cpu_s * 1e6 / r.reached, 1) + ' µs | ' + f(r.hub_rss_kib / 1024, 1) + ' MiB | ' +
        f(r.bytes_per_registration, 0) + ' | ' + f(r.bytes_per_registration_cold, 0) + ' | ' + r.disconnects + ' | ' + (r.held_s ? r.after_hold + ' after ' + r.held_s + ' s' : '-') + ' |');
});
console.log('\n| workload | CPU per registration, node / seaport-rs | wall time, node / seaport-rs | memory per registration, node / seaport-rs | (over the RSS at start) |');
console.log('|---|---|---|---|---|');
Object.keys(byKey).forEach(function (w) {
    var n = byKey[w].node, r = byKey[w].rs;
    if (!n || !r) return;
    var cpu = (n.hub_cpu_s / n.reached) / (r.hub_cpu_s / r.reached);
    var wall = n.seconds / r.seconds;
    var mem = n.bytes_per_registration / r.bytes_per_registration;
    console.log('| ' + w + ' | ' + ratio(n.hub_cpu_s / n.reached, r.hub_cpu_s / r.reached) + ' | ' +
        (n.converged ? ratio(n.seconds, r.seconds) : '> ' + ratio(n.seconds, r.seconds) + ' (node did not converge)') + ' | ' +
        ratio(n.bytes_per_registration, r.bytes_per_registration) + ' | ' +
        ratio(n.bytes_per_registration_cold, r.bytes_per_registration_cold) + ' |');
    bar(w + ' node clients: our hub >= 10x less CPU per registration', r.converged && (cpu >= 10 || r.hub_cpu_s === 0), ratio(n.hub_cpu_s / n.reached, r.hub_cpu_s / r.reached));
    bar(w + ' node clients: our hub at least as fast (wall)', r.converged && (!n.converged || wall >= 1), ratio(n.seconds, r.seconds));
    bar(w + ' node clients: our hub >= 10x less memory per registration', r.converged && mem >= 10, ratio(n.bytes_per_registration, r.bytes_per_registration));
    if (w === '1000 x 10') {
        bar('1 000 x 10 node clients against our hub converge in seconds and stay, no client timing out',
            r.converged && r.seconds < 10 && r.after_hold === r.total && r.disconnects === 0,
            f(r.seconds, 2) + ' s, ' + r.after_hold + ' left after ' + r.held_s + ' s, ' + r.disconnects + ' disconnects');
    }
});
console.log('\nThe bytes per registration above, split: what each connection took before anything was');
console.log('registered, and what each registration added on top (the bar is on the whole figure).\n');
console.log('| workload | hub | RSS connected | bytes per connection | bytes per registration, registrations alone |');
console.log('|---|---|---|---|---|');
Object.keys(byKey).forEach(function (w) {
    ['node', 'rs'].forEach(function (label) {
        var r = byKey[w][label];
        if (!r || r.bytes_per_connection === undefined) return;
        console.log('| ' + w + ' | ' + label + ' | ' + f(r.hub_rss_connected_kib / 1024, 1) + ' MiB | ' + f(r.bytes_per_connection, 0) + ' | ' +
            f(r.bytes_per_registration_alone, 0) + ' |');
    });
    var n = byKey[w].node, r = byKey[w].rs;
    if (n && r && n.bytes_per_connection !== undefined && r.bytes_per_connection !== undefined) {
        console.log('| ' + w + ' | node / seaport-rs | | ' + ratio(n.bytes_per_connection, r.bytes_per_connection) + ' | ' +
            ratio(n.bytes_per_registration_alone, r.bytes_per_registration_alone) + ' |');
    }
});
console.log('\n| restart under 1 000 node clients | hub | clients done reading, after the watcher had all | new hub ready | every record back with its port |');
console.log('|---|---|---|---|---|');
node.filter(function (r) { return r.mode === 'restart'; }).forEach(function (r) {
    console.log('| ' + r.clients + ' clients | ' + r.label + ' | ' + (r.settled_s !== undefined ? f(r.settled_s, 2) + ' s' : 'not all within 30 s') + ' | ' + f(r.ready_ms, 0) + ' ms | ' +
        (r.healed_s !== undefined ? f(r.healed_s, 2) + ' s' : 'not within the bound (' + (r.back || 0) + ' of ' + r.total + ' back)') + ' |');
});

console.log('\n### (c) seaport-rs clients against the seaport-rs hub (load tool)\n');
console.log('| run | converged | registrations/s | register→watcher p50 / p99 / max | hub CPU per registration | bytes per registration | hub peak RSS |');
console.log('|---|---|---|---|---|---|---|');
Object.keys(load).forEach(function (label) {
    var r = load[label];
    if (r.mode === 'restart') {
        console.log('| ' + label + ' | ' + r.converged + ' | hub ready in ' + f(r.ready_ms, 0) + ' ms, all ' + r.clients + ' back in ' + f(r.healed_s, 2) + ' s | | | | |');
        bar('SIGKILLed hub restarted under 10 000 clients healed in a few seconds', r.converged && r.healed_s < 5, f(r.healed_s, 2) + ' s');
        return;
    }
    console.log('| ' + label + ' | ' + r.converged + ' | ' + f(r.rate, 0) + ' | ' + f(r.p50_ms, 1) + ' / ' + f(r.p99_ms, 1) + ' / ' + f(r.max_ms, 1) + ' ms | ' +
        f(r.hub_cpu_s * 1e6 / r.reached, 2) + ' µs | ' + f(r.bytes_per_registration, 0) + ' | ' + f(r.hub_peak_kib / 1024, 1) + ' MiB |');
    if (r.clients === 10000 && r.services === 1 && !r.client) bar('10 000 connections, one registration each, all seen by a watcher', r.converged, r.reached + ' seen');
});
var best = Object.keys(load).map(function (k) { return load[k]; }).filter(function (r) { return r.mode === 'load' && !r.signed; })
    .reduce(function (a, r) { return !a || r.rate > a.rate ? r : a; }, null);
if (best) bar('our clients against our hub: >= 100 000 registrations/s, signing off', best.rate >= 100000, f(best.rate, 0) + '/s (' + best.clients + ' x ' + best.services + ')');
var signed = Object.keys(load).map(function (k) { return load[k]; }).filter(function (r) { return r.signed && r.mode === 'load'; });
signed.forEach(function (r) { bars.push('| signed rate (' + r.clients + ' x ' + r.services + ') | measured | ' + f(r.rate, 0) + '/s |'); });

console.log('\n### Bars (issue #9)\n');
console.log('| bar | status | figure |');
console.log('|---|---|---|');
bars.forEach(function (b) { console.log(b); });
